"""Folders the user names (`--cache`, `--out`, `--data`, their variables): expanded and checked up front.

Each check turns what the operating system would raise later (an empty name, an unknown `~user`, a
name too long, a link to nowhere, a file where a folder should be, a place that cannot be written)
into one line before work starts.
"""

import os
import tempfile
from pathlib import Path

from .errors import UserError

DATA_ENV = "MNIST_DATA"  # the mnist_png folder, when not fastai's


def expand(text: str | Path, what: str) -> Path:
    """`text` as a path with `~` expanded; a one-line error for an empty or impossible name, an
    unknown home, or a link to nowhere."""
    if not str(text).strip():
        raise UserError(f"{what} is empty: name a folder (or leave the option out for the default)")
    try:
        path = Path(text).expanduser()
    except RuntimeError:  # `~nosuchuser/...`
        raise UserError(f"{what} {text}: no such user, so no home folder to expand '~' to") from None
    try:
        path.stat()
    except (FileNotFoundError, NotADirectoryError):
        if path.is_symlink():
            raise UserError(f"{what} {path} is a link to {os.readlink(path)}, which does not exist") from None
        # else not there (yet), or under a file: `folder` and `writable` say which
    except OSError as e:  # a name too long, a loop of links, ...
        raise UserError(f"{what} {text}: {e.strerror}") from None
    return path


def folder(text: str | Path, what: str) -> Path:
    """`expand`, and an error when the path is an existing file."""
    path = expand(text, what)
    if path.exists() and not path.is_dir():
        raise UserError(f"{what} {path} is a file, not a folder")
    return path


def writable(path: Path, what: str) -> Path:
    """Create `path` if needed and write a file in it, or fail in one line (exit code 1)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except FileExistsError:
        raise UserError(f"{what} {path} is a file, not a folder") from None
    except OSError as e:
        raise UserError(f"cannot write to {what} {path}: {e.strerror or e}", exit_code=1) from None
    return path
