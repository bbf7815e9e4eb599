"""The one exception type the command line turns into a message instead of a traceback."""


class UserError(Exception):
    """A problem the user can fix (bad name or value, missing data); `exit_code` is the CLI's."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code
