"""Where caches live, and atomic writes so an interrupted run never leaves half a file."""

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

CACHE_ENV = "MNIST_SCRATCH_CACHE"
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def cache_root() -> Path:
    """`$MNIST_SCRATCH_CACHE`, else `.cache/` in the project checkout, else `~/.cache/mnist_scratch`."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    if (PROJECT_ROOT / "pyproject.toml").exists():
        return PROJECT_ROOT / ".cache"
    return Path.home() / ".cache" / "mnist_scratch"


def atomic_write(path: Path, write) -> None:
    """Call `write(file)` on a temporary file beside `path`, then rename it into place (replacing a
    folder that stands in its way: a damaged cache entry)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sha256(*chunks: bytes) -> str:
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(chunk)
    return h.hexdigest()
