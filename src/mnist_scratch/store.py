"""Where caches live; atomic writes, so an interrupted or failed write never leaves half a file; and
reads of regular files only, so a FIFO or a link to a device never hangs a command."""

import errno
import hashlib
import os
import shutil
import stat
import tempfile
from pathlib import Path

CACHE_ENV = "MNIST_SCRATCH_CACHE"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
_UMASK = os.umask(0)  # read once (at import, single-threaded): the mode a new file would get
os.umask(_UMASK)


def cache_root() -> Path:
    """`$MNIST_SCRATCH_CACHE`, else `.cache/` in the project checkout, else `~/.cache/mnist_scratch`."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    if (PROJECT_ROOT / "pyproject.toml").exists():
        return PROJECT_ROOT / ".cache"
    return Path.home() / ".cache" / "mnist_scratch"


def atomic_write(path: Path, write) -> None:
    """Call `write(file)` on a temporary file beside `path`, then rename it into place (replacing a
    folder that stands in its way: a damaged cache entry).

    Whatever fails (a full disk, Ctrl-C), the temporary file is removed and the old `path`, if any,
    is left as it was. The new file gets the mode a plainly created one would (0666 less the umask).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and e.errno is not None and e.filename is None:  # say which file failed
            raise OSError(e.errno, e.strerror, str(path)) from None
        raise


def open_regular(path: str | os.PathLike, limit: int):
    """`path` opened for reading in binary, if it is a regular file (after links) of at most `limit`
    bytes; else OSError. A FIFO, socket or device (a link to /dev/zero) is refused without reading
    from it or waiting for a writer."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        if st.st_size > limit:
            raise OSError(errno.EFBIG, f"larger than {limit:,} bytes", str(path))
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | os.PathLike, limit: int) -> bytes:
    """The bytes of `path` (see `open_regular`); a file that grows past `limit` while read is refused too."""
    with open_regular(path, limit) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise OSError(errno.EFBIG, f"larger than {limit:,} bytes", str(path))
    return data


def sha256(*chunks: bytes) -> str:
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(chunk)
    return h.hexdigest()
