"""test-python: a Python plugin that exists to test the host (cmds `pyhostile:WHAT`).

Each WHAT ends a run one way: `ok`, `fail` (ran and failed), `declare` (a declared failure,
`raise Err`), `raise` (an exception), `print` (stdout and stderr, then success), `abort` (a trap:
`os.abort()`), `alloc` (the memory limit).
"""

import os
import sys

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import host, types

PREFIX = "pyhostile:"
VERBS = ("ok", "fail", "declare", "raise", "print", "abort", "alloc")


class Executor(exports.Executor):
    def describe(self) -> types.PluginInfo:
        return types.PluginInfo(name="pyhostile", version="0.1.0", prefixes=[PREFIX])

    def validate(self, cmd: str) -> None:
        what = cmd.removeprefix(PREFIX)
        if what not in VERBS:
            raise Err(f"pyhostile does not know {what!r}")

    def execute(self, run: types.RunRequest) -> types.RunOutcome:
        what = run.cmd.removeprefix(PREFIX)
        if what == "fail":
            return types.RunOutcome(success=False, output="ran and failed")
        if what == "declare":
            raise Err("declared failure from python")
        if what == "raise":
            raise ValueError("a bug in execute")
        if what == "print":
            print(f"python stdout for {run.job_id}")
            print(f"python stderr for {run.job_id}", file=sys.stderr)
            host.log(host.LogLevel.INFO, f"python host log for {run.job_id}")
            return types.RunOutcome(success=True, output="printed")
        if what == "abort":
            os.abort()
        if what == "alloc":
            hog = []
            while True:
                hog.append(bytearray(1 << 20))
        return types.RunOutcome(success=True, output=f"python ran {run.job_id}")
