"""What the command line turns into one line instead of a traceback: user errors, interrupts, notes."""

import sys

PREFIX = "mnist-scratch"


class UserError(Exception):
    """A problem the user can fix (bad name or value, missing data); `exit_code` is the CLI's."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code

    def _render_traceback_(self) -> list[str]:
        """What IPython (a Jupyter kernel: the report's execution) shows instead of the traceback."""
        return [f"{PREFIX}: error: {self}"]


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with a word on what was kept (the message); still a KeyboardInterrupt for every caller."""


def out_of_memory(e: BaseException) -> bool:
    """Whether `e` is an allocation that failed: a MemoryError, or torch's RuntimeError saying so
    (what it raises when the process's address space is limited, `ulimit -v`)."""
    return isinstance(e, MemoryError) or (isinstance(e, RuntimeError) and "allocate" in str(e) and "memory" in str(e))


def reason(e: Exception) -> str:
    """Why `e` happened, in one line: an OSError's own words ("No space left on device"), else its type and message."""
    text = e.strerror if isinstance(e, OSError) and e.strerror else f"{type(e).__name__}: {e}"
    return " ".join(text.split())


def note(message: str) -> None:
    """One line on stderr for something the user should know that is not an error."""
    print(f"{PREFIX}: note: {message}", file=sys.stderr, flush=True)
