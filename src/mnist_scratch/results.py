"""The result store: one file per run, keyed by the run's config and the code that computes it.

Change a learning rate, and only the runs with that learning rate get a new key; change the code of
the engine (any module listed in `CODE`; not its comments or docstrings), and every run does.
`load` reads each entry from disk at most once per process and returns a fresh copy each call
(`load(cfg, summary=True)`: without its number arrays, all that choosing a setting reads);
`save` returns the result exactly as a later `load` will, so a run prints the same numbers freshly
trained and read back.

**Entry format** (`.cache/runs/<key>.result`): a magic line with the format version, the SHA-256 of
everything after its own line, one line of JSON, then raw arrays:

    mnist-scratch result 1\\n
    <sha256 hex of the rest>\\n
    {"config": ..., "code": ..., "result": ..., "arrays": [[path, dtype, shape], ...]}\\n
    <array bytes, little-endian, in the order of "arrays">

The store knows no field names: any list (nested lists too: a 784 x 30 weight matrix) of at least
`MIN_ARRAY` numbers of one kind is stored as a raw array, with its place in the result as a path of
keys and indices, its numpy-style dtype and its shape. Floats become float32 when every value
survives the round trip exactly (losses and outputs computed in float32 do), else float64; ints
take the smallest of int8 to int64 that holds them; bools one byte each. The rest (config, scalars,
short or mixed lists) stays JSON. numpy reads an array as `np.frombuffer(buf, dtype).reshape(shape)`.
Nothing is ever pickled, and no value is rounded: the store is lossless.

An entry is trusted only if it is a regular file of at most `MAX_ENTRY` bytes and its magic,
checksum, config and code all match and every number is finite: a damaged, truncated, foreign or
stale entry (or a FIFO, a link to /dev/zero) reads as missing and is recomputed. Entries are
written whole to a temporary file and renamed into place (`store.atomic_write`), so an interrupted
or killed writer leaves the old entry or none, never half of one. A result that cannot be saved (a
full disk) is kept in memory: later loads in the same process return it, so nothing is trained twice.

**Why one file per run, not SQLite.** Each run is written once, whole, by whichever process
finished it; the rename gives that write the atomicity a transaction would, and concurrent writers
(worker pools, two builds at once) need no locks, busy timeouts, or the shared-memory file of
SQLite's WAL mode, which does not work over a network file system and usually needs write access
even to read. Damage stays local: a bad file costs one run, where a damaged database file can cost
every run at once. The folder works as it is with `make clean-cache`, CI's `actions/cache`, and
`rm` of a single run. Speed does not decide it: what made the old store slow was parsing 28 MB of
JSON number lists and re-serialising each entry to check it, 571 times for 167 runs. In this format
the 167 entries take 6.5 MB; reading their bytes took 9 ms from the files and 7 ms from one SQLite
table holding the same bytes, and checking and decoding them about 75 ms either way
(`benchmarks/bench_store.py`).
"""

import ast
import copy
import json
import math
import os
import sys
from array import array
from functools import cache
from pathlib import Path

import torch

from .data import version as data_version
from .store import atomic_write, cache_root, open_regular, sha256
from .train import RunConfig

CODE = ("data.py", "modules.py", "objectives.py", "sgd.py", "train.py", "stacked.py", "group.py")
MAGIC = b"mnist-scratch result 1\n"
SUFFIX = ".result"
MIN_ARRAY = 8  # shorter number lists stay JSON, readable in the header
MAX_ENTRY = 1 << 28  # bytes: the largest entry takes a few MB; a larger file is no entry


@cache
def code_version() -> str:
    """Hash of the code of every module that determines a run's numbers, and of torch's version.

    The code is each module's syntax tree without its docstrings: a change to what the code does
    changes the hash, while editing a comment or a docstring leaves every cached run valid.
    """
    here = Path(__file__).parent
    return sha256(torch.__version__.encode(), *(_code(here / name) for name in CODE))


DOCUMENTED = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def _code(path: Path) -> bytes:
    """A module's syntax tree without its docstrings (comments are never in it), as text."""
    tree = ast.parse(path.read_bytes())
    for node in ast.walk(tree):
        if isinstance(node, DOCUMENTED) and ast.get_docstring(node, clean=False) is not None:
            node.body = node.body[1:] or [ast.Pass()]
    return ast.dump(tree).encode()


def identity(cfg: RunConfig) -> dict:
    """Everything a run's numbers depend on (its config, the code, the fingerprint of the images it
    trains on): its key hashes this, and its entry must repeat it exactly."""
    return {"config": _config(cfg, repr(cfg)), "code": code_version(), "data": data_version(cfg.dataset)}


@cache
def _config(cfg: RunConfig, text: str) -> dict:
    """`cfg.as_dict()` once per config (dataclasses.asdict deep-copies every field). `text`, the
    config's repr, tells apart configs that are equal but unlike: epochs 10 and 10.0."""
    return cfg.as_dict()


def run_key(cfg: RunConfig) -> str:
    return sha256(json.dumps(identity(cfg), sort_keys=True).encode())[:20]


def entry_path(cfg: RunConfig) -> Path:
    return cache_root() / "runs" / f"{run_key(cfg)}{SUFFIX}"


# --- arrays: which lists become raw bytes, and back -----------------------------------------------


def _typecode(size: int) -> str:
    return next(c for c in "bhilq" if array(c).itemsize == size)


TYPECODES = {"<f4": "f", "<f8": "d", "<i1": "b", "<i2": "h", "<i4": _typecode(4), "<i8": _typecode(8), "|b1": "B"}
ITEMSIZES = {dtype: array(code).itemsize for dtype, code in TYPECODES.items()}
INT_RANGES = [("<i1", 2**7), ("<i2", 2**15), ("<i4", 2**31), ("<i8", 2**63)]


def _finite(values: list[float]) -> bool:
    # one C-speed sum is finite iff every value is (a NaN or inf propagates), unless it overflows
    return math.isfinite(sum(values)) or all(map(math.isfinite, values))


def _shape(x: list) -> tuple[list[int], list] | None:
    """The shape and flattened leaves of a rectangular nested list, or None if it is ragged or empty."""
    shape, rows = [], [x]
    while True:
        n = len(rows[0])
        if n == 0 or any(len(r) != n for r in rows):
            return None
        shape.append(n)
        leaves = [v for r in rows for v in r]
        if type(leaves[0]) not in (list, tuple):
            return shape, leaves
        if not all(type(v) in (list, tuple) for v in leaves):
            return None
        rows = leaves


def _pack(x: list) -> tuple[str, list[int], bytes] | None:
    """(dtype, shape, bytes) for a list of at least MIN_ARRAY numbers of one kind, else None."""
    found = _shape(x)
    if found is None or len(found[1]) < MIN_ARRAY:
        return None
    shape, leaves = found
    kind = type(leaves[0])
    if kind not in (float, int, bool) or not all(type(v) is kind for v in leaves):
        return None
    if kind is float:
        if not _finite(leaves):
            raise ValueError("a result holds a NaN or infinite number; the store keeps finite numbers only")
        dtype = "<f4" if array("f", leaves).tolist() == leaves else "<f8"
    elif kind is bool:
        dtype = "|b1"
    else:
        lo, hi = min(leaves), max(leaves)
        dtype = next((d for d, bound in INT_RANGES if -bound <= lo and hi < bound), None)
        if dtype is None:  # beyond int64: JSON holds any int
            return None
    packed = array(TYPECODES[dtype], leaves)
    if sys.byteorder == "big":
        packed.byteswap()
    return dtype, shape, packed.tobytes()


def _unpack(dtype: str, shape: list[int], buf: memoryview) -> list:
    values = array(TYPECODES[dtype])
    values.frombytes(buf)
    if sys.byteorder == "big":
        values.byteswap()
    flat = values.tolist()
    if dtype == "|b1":
        flat = [v != 0 for v in flat]
    elif dtype[1] == "f" and not _finite(flat):
        raise ValueError("non-finite number")
    for n in reversed(shape[1:]):
        flat = [flat[i : i + n] for i in range(0, len(flat), n)]
    return flat


def _size(dtype: str, shape: list[int]) -> int:
    return math.prod(shape) * ITEMSIZES[dtype]


# --- entries: encode, decode ----------------------------------------------------------------------


class _Entry:
    """A checked entry: the result with None where each array goes, and each array's place, dtype,
    shape and span of bytes in `data`. `checked` is False after a summary decode, which does not
    read the arrays' numbers."""

    def __init__(self, tree: dict, arrays: list[tuple], data: bytes, decoded: list[list] | None):
        self.tree, self.arrays, self.data = tree, arrays, data
        self.checked = decoded is not None
        self._fresh = decoded  # the arrays decoded while checking, handed to the first caller

    def summary(self) -> dict:
        """A fresh copy of the result with None in place of every array."""
        return _copy(self.tree)

    def result(self) -> dict:
        """A fresh, independent result (the caller may change it freely). The arrays decoded while
        checking go to the first caller as they are; later callers get them decoded again from the
        bytes, which is what the process keeps (a few bytes per number, not a Python float each)."""
        values, self._fresh = self._fresh, None
        if values is None:
            view = memoryview(self.data)
            values = [_unpack(dtype, shape, view[start:end]) for _, dtype, shape, start, end in self.arrays]
        result = _copy(self.tree)
        for (path, *_), value in zip(self.arrays, values):
            parent = result
            for step in path[:-1]:
                parent = parent[step]
            parent[path[-1]] = value
        return result


def _copy(x):
    if type(x) is dict:
        return {k: _copy(v) for k, v in x.items()}
    if type(x) is list:
        return [_copy(v) for v in x] if x and type(x[0]) in (list, dict) else x.copy()
    return x


def _encode(cfg: RunConfig, result: dict) -> bytes:
    arrays, chunks = [], []

    def walk(x, path):
        if isinstance(x, dict):
            if not all(type(k) is str for k in x):
                raise TypeError(f"result keys must be strings; at {path} found {list(x)}")
            return {k: walk(v, [*path, k]) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            packed = _pack(x)
            if packed is None:
                return [walk(v, [*path, i]) for i, v in enumerate(x)]
            arrays.append([path, packed[0], packed[1]])
            chunks.append(packed[2])
            return None
        return x

    if not isinstance(result, dict):
        raise TypeError(f"a result is a dict, got {type(result).__name__}")
    header = {**identity(cfg), "result": walk(result, []), "arrays": arrays}
    body = json.dumps(header, allow_nan=False, separators=(",", ":")).encode() + b"\n" + b"".join(chunks)
    return MAGIC + sha256(body).encode() + b"\n" + body


def _no_constants(name: str):
    raise ValueError(f"{name} in an entry")


def _decode(data: bytes, cfg: RunConfig, arrays: bool = True) -> _Entry | None:
    """The entry in `data` if it is whole, of this format, and of `cfg` under the current code;
    without `arrays`, its summary: the arrays' places and sizes are checked, their numbers not decoded."""
    try:
        if not data.startswith(MAGIC):
            return None
        start = len(MAGIC) + 65
        checksum, body = data[len(MAGIC) : start], memoryview(data)[start:]
        if checksum != sha256(body).encode() + b"\n":
            return None
        end = data.index(b"\n", start)
        header = json.loads(data[start:end], parse_constant=_no_constants)
        if any(header[k] != v for k, v in identity(cfg).items()):
            return None
        tree, offset, layout, decoded = header["result"], end + 1, [], []
        for path, dtype, shape in header["arrays"]:
            size = _size(dtype, shape)
            layout.append((path, dtype, shape, offset, offset + size))
            if arrays:
                decoded.append(_unpack(dtype, shape, memoryview(data)[offset : offset + size]))
            offset += size
        if offset != len(data) or not isinstance(tree, dict):
            return None
        for path, *_ in layout:  # every array has its empty place in the tree
            parent = tree
            for step in path[:-1]:
                parent = parent[step]
            if not path or parent[path[-1]] is not None:
                return None
    except (ValueError, KeyError, IndexError, TypeError, RecursionError):  # RecursionError: JSON nested too deep
        return None
    return _Entry(tree, layout, data, decoded if arrays else None)


# --- load and save --------------------------------------------------------------------------------

_read: dict[str, tuple[tuple, _Entry]] = {}  # entry path -> (its file's stamp when read, decoded entry)
_kept: dict[str, _Entry | dict] = {}  # entry path -> a result this process could not save (see `save`)


def _stamp(st: os.stat_result) -> tuple:
    """Which file, of which size, last written when: any rewrite or replacement changes it."""
    return st.st_ino, st.st_size, st.st_mtime_ns


def load(cfg: RunConfig, *, summary: bool = False) -> dict | None:
    """The cached result of `cfg`, or None if missing, damaged, or computed from other code or config.

    The file is read and checked once per process (again only if it changes on disk); every call
    returns a fresh copy. With `summary`, the result without its number arrays (None in their
    places): config, final metrics and other scalars, without decoding the bulk. A summary is
    checked as the whole entry is, except that the arrays' numbers are not decoded, so not checked
    for NaN; a full `load` of the same entry still checks them. Without a valid file, a result this
    process could not save is returned (whole, or as its summary).
    """
    path = str(entry_path(cfg))
    try:
        with open_regular(path, MAX_ENTRY) as f:
            stamp = _stamp(os.fstat(f.fileno()))
            seen = _read.get(path)
            if seen is not None and seen[0] == stamp and (summary or seen[1].checked):
                return seen[1].summary() if summary else seen[1].result()
            data = f.read(MAX_ENTRY + 1)
    except OSError:
        return _from_memory(path, summary)
    entry = _decode(data, cfg, arrays=not summary)
    if entry is None:
        _read.pop(path, None)
        return _from_memory(path, summary)
    _read[path] = (stamp, entry)
    return entry.summary() if summary else entry.result()


def _from_memory(path: str, summary: bool) -> dict | None:
    kept = _kept.get(path)
    if kept is None or isinstance(kept, dict):
        return copy.deepcopy(kept)
    return kept.summary() if summary else kept.result()


def exists(cfg: RunConfig) -> bool:
    """Whether something is stored under `cfg`'s key: an entry that then fails to `load` is damaged."""
    return os.path.lexists(entry_path(cfg))


def save(cfg: RunConfig, result: dict) -> dict:
    """Store `result` as the entry of `cfg`; returns it as `load` will (tuples as lists, and so on).

    Raises OSError if the cache cannot be written, ValueError or TypeError if `result` is not plain
    data with finite numbers; either way the result is kept in memory first, for every later `load`
    of this process.
    """
    path = entry_path(cfg)
    try:
        data = _encode(cfg, result)
    except (ValueError, TypeError):
        _kept[str(path)] = copy.deepcopy(result)
        raise
    entry = _decode(data, cfg)
    if entry is None:
        raise RuntimeError(f"the entry of {cfg} does not decode as it was encoded: a bug in the store")
    try:
        atomic_write(path, lambda f: f.write(data))
    except OSError:
        _kept[str(path)] = entry
        raise
    _kept.pop(str(path), None)
    try:
        _read[str(path)] = (_stamp(os.stat(path)), entry)
    except OSError:  # gone already (another process cleaning up): it is simply read again later
        _read.pop(str(path), None)
    return entry.result()


def forget() -> None:
    """Drop what this process has read or kept, so the next `load` of each entry reads its file again."""
    _read.clear()
    _kept.clear()
