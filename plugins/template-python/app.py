"""template-python: the example RuQi executor plugin in Python.

It serves cmds `pyecho:TEXT`: it refuses an empty TEXT when the job is added, and each
run's output is TEXT. Copy this folder to start your own plugin (`ruqi plugin new NAME
--lang python` does it for you).

componentize-py generates the `wit_world` package from `wit/` (world `plugin`) at build
time: this module provides the class `Executor`, the implementation of the exported
`ruqi:executor/executor` interface.
"""

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import host, types

PREFIX = "pyecho:"


class Executor(exports.Executor):
    """The exported interface: describe, validate, execute."""

    def describe(self) -> types.PluginInfo:
        return types.PluginInfo(name="pyecho", version="0.1.0", prefixes=[PREFIX])

    def validate(self, cmd: str) -> None:
        # `raise Err(text)` is the WIT `err(text)`: the job is refused with `text` as x-reason.
        if not cmd.startswith(PREFIX) or cmd == PREFIX:
            raise Err(f"pyecho cmds look like {PREFIX}TEXT with a non-empty TEXT")

    def execute(self, run: types.RunRequest) -> types.RunOutcome:
        host.log(host.LogLevel.INFO, f"echoing for run {run.run_id}")
        # `raise Err(text)` here would be a declared failure; any other exception traps the
        # run, and its message (the traceback's last line) ends up in the history.
        return types.RunOutcome(success=True, output=run.cmd[len(PREFIX) :])
