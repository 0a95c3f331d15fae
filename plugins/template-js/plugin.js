// template-js: the example RuQi executor plugin in JavaScript.
//
// It serves cmds `jsecho:TEXT`: it refuses an empty TEXT when the job is added, and each
// run's output is TEXT. Copy this folder to start your own plugin (`ruqi plugin new NAME
// --lang js` does it for you).
//
// componentize-js builds this ES module against `wit/` (world `plugin`): the export
// `executor` implements the `ruqi:executor/executor` interface; the host interface is
// imported as `ruqi:executor/host@0.3.0`. WIT names become camelCase (`run.runId`).

import { log } from "ruqi:executor/host@0.3.0";

const PREFIX = "jsecho:";

export const executor = reportErrors({
  describe() {
    return { name: "jsecho", version: "0.1.0", prefixes: [PREFIX] };
  },

  // `throw "text"` is the WIT `err(text)`: the job is refused with `text` as x-reason.
  validate(cmd) {
    if (!cmd.startsWith(PREFIX) || cmd === PREFIX) {
      throw `jsecho cmds look like ${PREFIX}TEXT with a non-empty TEXT`;
    }
  },

  // `throw "text"` here would be a declared failure. Functions may be `async` (e.g. to await
  // `fetch`): componentize-js runs the event loop until the promise settles.
  execute(run) {
    log("info", `echoing for run ${run.runId}`);
    return { success: true, output: run.cmd.slice(PREFIX.length) };
  },
});

// componentize-js hands what a function throws to the host as the WIT `err`, which must be a
// string: anything else (an `Error` from a bug) traps with "expected a string, received
// [object]", and the error's message is lost. This prints such an error and its stack on
// stderr first (as SpiderMonkey reports errors), where the host shows it with the trap; a
// thrown string passes through.
function reportErrors(functions) {
  const report = (e) => {
    if (typeof e !== "string") {
      const frames = String(e?.stack ?? "").trimEnd().split("\n");
      console.error(`${e}\nStack:\n${frames.map((f) => `  ${f}`).join("\n")}`);
    }
    throw e;
  };
  const wrapped = {};
  for (const [name, f] of Object.entries(functions)) {
    wrapped[name] = (...args) => {
      try {
        const result = f(...args);
        return result instanceof Promise ? result.catch(report) : result;
      } catch (e) {
        return report(e);
      }
    };
  }
  return wrapped;
}
