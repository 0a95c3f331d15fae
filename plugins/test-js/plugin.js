// test-js: a JavaScript plugin that exists to test the host (cmds `jshostile:WHAT`).
//
// Each WHAT ends a run one way: `ok`, `fail` (ran and failed), `declare` (a declared failure,
// `throw "text"`), `raise` (an exception, `throw new Error`), `print` (console.log and
// console.error, then success), `reject` (an async function whose promise rejects with an
// Error), `alloc` (the memory limit; SpiderMonkey prints `out of memory`).

import { log } from "ruqi:executor/host@0.3.0";

const PREFIX = "jshostile:";
const VERBS = ["ok", "fail", "declare", "raise", "print", "reject", "alloc"];

export const executor = reportErrors({
  describe() {
    return { name: "jshostile", version: "0.1.0", prefixes: [PREFIX] };
  },

  validate(cmd) {
    const what = cmd.slice(PREFIX.length);
    if (!VERBS.includes(what)) {
      throw `jshostile does not know ${JSON.stringify(what)}`;
    }
  },

  execute(run) {
    const what = run.cmd.slice(PREFIX.length);
    switch (what) {
      case "fail":
        return { success: false, output: "ran and failed" };
      case "declare":
        throw "declared failure from js";
      case "raise":
        throw new Error("a bug in execute");
      case "print":
        console.log(`js stdout for ${run.jobId}`);
        console.error(`js stderr for ${run.jobId}`);
        log("info", `js host log for ${run.jobId}`);
        return { success: true, output: "printed" };
      case "reject":
        return (async () => {
          await null;
          throw new Error("a bug after await");
        })();
      case "alloc": {
        const hog = [];
        for (;;) hog.push(new Array(1 << 20).fill(7));
      }
      default:
        return { success: true, output: `js ran ${run.jobId}` };
    }
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
