"""Errors for people: one line that says what went wrong, where, and how to fix it."""

from __future__ import annotations

import sys
from collections.abc import Callable


class S2SFlowError(Exception):
    """A problem a user can fix: bad input, a missing file, a wrong parameter."""

    exit_code = 2

    def __init__(self, message: str, task: str | None = None):
        super().__init__(message)
        self.task = task

    def line(self) -> str:
        prefix = f"s2sflow: {self.task}: " if self.task else "s2sflow: "
        return prefix + " ".join(str(self).split())


class DataUnavailableError(S2SFlowError):
    """No source of a task's data could be reached; the pipeline skips such a task."""

    exit_code = 3


EXIT_DATA_UNAVAILABLE = DataUnavailableError.exit_code


def run_main(main: Callable[[], object], task: str | None = None) -> None:
    """Run a command-line entry point: user errors become one line on stderr and a non-zero exit."""
    try:
        main()
    except S2SFlowError as err:
        if err.task is None:
            err.task = task
        print(err.line(), file=sys.stderr)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        print(f"s2sflow: {task + ': ' if task else ''}interrupted", file=sys.stderr)
        sys.exit(130)
