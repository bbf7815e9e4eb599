"""What the command line turns into one line instead of a traceback: user errors, interrupts, notes."""

import sys

PREFIX = "mnist-scratch"


class UserError(Exception):
    """A problem the user can fix (bad name or value, missing data); `exit_code` is the CLI's."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with a word on what was kept (the message); still a KeyboardInterrupt for every caller."""


def note(message: str) -> None:
    """One line on stderr for something the user should know that is not an error."""
    print(f"{PREFIX}: note: {message}", file=sys.stderr, flush=True)
