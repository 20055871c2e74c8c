"""The ``augkit`` command line: run, resume, evaluate, data, generate, audit, locate, validate, plugins, reference.

Each module registers its commands on the one typer ``app`` (in the order ``augkit --help`` lists them).
"""

from augkit.cli import runs, data, generate, audit, info  # noqa: F401  (registers the commands)
from augkit.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    try:
        app()
    except SystemExit as exc:  # typer ends every command this way
        from augkit.compute import distributed

        if distributed.launched():  # one of several processes: skip the C++ teardown that can abort
            distributed.exit_now(exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1))
        raise
