"""MNIST loaded with the assignment's fastai `DataBlock`, selected deterministically, cached as arrays.

Splits (names used everywhere else):
- `train`: 500 random training images of each digit (5,000), as in the assignment;
- `valid`: 500 random testing images of each digit (5,000): the assignment's validation set;
- `test`: the other 5,000 testing images, held out: evaluated, never used to choose anything;
- `full-train` / `full-valid` / `full-test`: the first 50,000 training images (by MNIST index), the
  last 10,000, and all 10,000 testing images: Nielsen's split, so that full MNIST is tuned on
  `full-valid` and `full-test` is held out.

Decoding 10,000 PNGs takes seconds; the decoded images are cached as `.npz` (uint8 pixels, labels,
file names, the split's name, the fingerprint of the folder they came from and a checksum; no
pickles) and a warm load takes milliseconds. The fingerprint (every image's name and size) is also
part of every run's cache key: another or a changed MNIST folder means a new decode and new runs.
"""

import json
import os
import stat
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .errors import UserError, note
from .paths import DATA_ENV, expand
from .store import CACHE_ENV, atomic_write, cache_root, sha256

SEED = 0
PER_DIGIT = 500
SPLITS = ("train", "valid", "test", "full-train", "full-valid", "full-test")
FULL_VALID_FROM = 50_000  # training images from this MNIST index on are full MNIST's validation split
FORMAT = 3  # bump when the cached layout or a split changes: old files then no longer match
# Images per digit folder in MNIST (LeCun et al.): a folder holding fewer is an incomplete copy.
MNIST_COUNTS = {
    "training": (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949),
    "testing": (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009),
}
FOLDERS = tuple(f"{split_dir}/{digit}" for split_dir in MNIST_COUNTS for digit in range(10))


@dataclass(frozen=True)
class Split:
    """Images as float32 rows of 784 pixels in [0, 1], int64 labels, and their files in mnist_png."""

    x: torch.Tensor
    y: torch.Tensor
    paths: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.y)


# --- finding the data ------------------------------------------------------------------------------

_found_by_fastai: Path | None = None  # where `untar_data` put MNIST, once asked in this process


def _is_mnist(root: Path) -> bool:
    """Whether `root` holds `training/` and `testing/` (os.path: this runs for every run key)."""
    return os.path.isdir(os.path.join(root, "training")) and os.path.isdir(os.path.join(root, "testing"))


@cache
def _expanded(text: str, what: str) -> Path:
    return expand(text, what)


def find(path: str | os.PathLike | None = None) -> Path | None:
    """The `mnist_png` folder where it is found without fastai, else None.

    `path`, else `$MNIST_DATA` (either may also name the folder holding `mnist_png`), else fastai's
    default `$FASTAI_HOME/data/mnist_png` (`~/.fastai` without the variable), else wherever fastai
    put it earlier in this process. A given path that holds no MNIST is an error, not None.
    """
    given = path or os.environ.get(DATA_ENV) or None
    if given is not None:
        where = _expanded(str(given), "--data" if path else f"${DATA_ENV}")
        for root in (where, where / "mnist_png"):
            if _is_mnist(root):
                return root
        raise UserError(_missing(f"{where} (from --data or ${DATA_ENV})"), exit_code=1)
    default = _expanded(os.environ.get("FASTAI_HOME") or "~/.fastai", "$FASTAI_HOME") / "data" / "mnist_png"
    return default if _is_mnist(default) else _found_by_fastai


def locate(path: str | os.PathLike | None = None) -> Path:
    """`find`, else fastai's `untar_data(URLs.MNIST)`, which downloads it when it is nowhere on disk."""
    global _found_by_fastai
    root = find(path)
    if root is not None:
        return root
    from fastai.data.external import URLs, fastai_path, untar_data

    try:
        _found_by_fastai = Path(untar_data(URLs.MNIST))
    except Exception as e:  # fastai raises whatever its download raised: report it in one line
        looked = fastai_path("data") / "mnist_png"
        raise UserError(_missing(f"{looked} (fastai's data folder; download failed: {e!r})"), 1) from None
    return _found_by_fastai


def _missing(where: str) -> str:
    return (
        f"MNIST not found: looked in {where}. Provide the mnist_png folder (training/ and testing/, "
        f"one folder per digit): unpack mnist_png.tgz into $FASTAI_HOME/data (default ~/.fastai/data), "
        f"or pass --data PATH or set {DATA_ENV}=PATH."
    )


# --- what the data is: its fingerprint ---------------------------------------------------------


@cache
def _folders(root: str) -> tuple[str, ...]:
    return (root, *(os.path.join(root, f) for f in ("training", "testing", *FOLDERS)))


def _stamp(root: Path) -> list[int]:
    """Inode, modification and change time of `root` and its 22 folders: adding, removing or
    renaming an image, or putting another copy in place, changes them."""
    stamp = []
    for folder in _folders(os.path.abspath(root)):
        try:
            st = os.stat(folder)
        except OSError:
            stamp.append(-1)
            continue
        stamp += [st.st_ino, st.st_mtime_ns, st.st_ctime_ns]
    return stamp


def _scan(root: Path) -> str:
    """sha256 over every image's path in `root` and size in bytes, after checking none is missing.

    Names and sizes catch what an interrupted copy or unpack leaves (missing or truncated files)
    without reading 70,000 files. Files not ending in `.png` are ignored.
    """
    lines, short = [], []
    for folder, expected in zip(FOLDERS, (n for counts in MNIST_COUNTS.values() for n in counts)):
        try:
            entries = list(os.scandir(root / folder))
        except FileNotFoundError:
            short.append(f"{folder}/ is missing")
            continue
        except OSError as e:
            raise UserError(f"cannot read the MNIST folder {root / folder}: {e.strerror}", 1) from None
        images = 0
        for entry in entries:
            if not entry.name.endswith(".png"):
                continue
            where = root / folder / entry.name
            if not (entry.name[:-4].isascii() and entry.name[:-4].isdigit()):
                raise UserError(f"unexpected file {where}: MNIST images are named by their index, like 123.png", 1)
            try:
                st = entry.stat()
            except OSError as e:
                raise UserError(f"cannot read the MNIST image {where}: {e.strerror}", 1) from None
            if not stat.S_ISREG(st.st_mode):
                raise UserError(f"{where} is not an image file (a folder, or another special file)", 1)
            lines.append(f"{folder}/{entry.name} {st.st_size}")
            images += 1
        if images < expected:
            short.append(f"{folder}/ holds {images:,} of its {expected:,} images")
    if short:
        more = f" and {len(short) - 4} more" if len(short) > 4 else ""
        raise UserError(
            f"MNIST in {root} is incomplete: {'; '.join(short[:4])}{more}. Unpack mnist_png.tgz again, "
            f"or point --data at a complete copy.", exit_code=1,
        )
    return sha256("\n".join(sorted(lines)).encode())


def _fingerprints_file() -> Path:
    return cache_root() / "data" / "folders.json"


_fingerprints: dict[str, tuple[list[int], str]] = {}  # this process's memo: folder -> (stamp, fingerprint)


def _remembered() -> dict:
    """The fingerprints earlier processes computed, by folder (an unreadable memo is no memo)."""
    try:
        known = json.loads(_fingerprints_file().read_text())
    except (OSError, ValueError, RecursionError):
        return {}
    return known if isinstance(known, dict) else {}


def fingerprint(root: Path) -> str:
    """The fingerprint of the MNIST images in `root` (see `_scan`), or a one-line error naming what
    is missing or damaged.

    Scanning 70,000 files takes about a second; the result is remembered (in the cache, as
    `data/folders.json`) with the folders' `_stamp`, and the folder is scanned again only when its
    stamp changes, which costs 23 `stat` calls to notice. An image rewritten in place keeps the
    stamp: it is noticed when anything else in its folder changes.
    """
    key, stamp = os.path.abspath(root), _stamp(root)
    if key not in _fingerprints:
        known = _remembered().get(key)
        if isinstance(known, dict) and isinstance(known.get("fingerprint"), str):
            _fingerprints[key] = (known.get("stamp"), known["fingerprint"])
    if key in _fingerprints and _fingerprints[key][0] == stamp:
        return _fingerprints[key][1]
    found = _scan(Path(root))
    _fingerprints[key] = (stamp, found)
    known = _remembered()
    known[key] = {"stamp": stamp, "fingerprint": found}
    try:
        atomic_write(_fingerprints_file(), lambda f: f.write(json.dumps(known).encode()))
    except OSError:
        pass  # a memo only: the next process scans again
    return found


RECHECK = 1.0  # seconds for which a process trusts a data version it has worked out
_versions: dict[tuple, tuple[float, str]] = {}


def version(dataset: str = "subset") -> str | None:
    """The fingerprint of the images a run on `dataset` trains on, part of every run's cache key.

    That of the folder `find` finds, else the one recorded in the image cache (the data is not at
    hand, but its decode is), else None: neither is known yet (`locate` then decode). A command
    computes hundreds of run keys, so a process works this out again at most once a second (for
    the same `$MNIST_DATA`, `$FASTAI_HOME` and cache folder).
    """
    key = (dataset, *map(os.environ.get, (DATA_ENV, "FASTAI_HOME", CACHE_ENV)), _found_by_fastai)
    if key in _versions and time.monotonic() - _versions[key][0] < RECHECK:
        return _versions[key][1]
    root = find()
    if root is not None:
        found = fingerprint(root)
    else:
        try:
            with np.load(cache_file("train" if dataset == "subset" else "full-train"), allow_pickle=False) as z:
                found = str(z["fingerprint"])
        except Exception:  # no image cache or a damaged one: unknown
            return None
    _versions[key] = (time.monotonic(), found)
    return found


# --- selecting and decoding --------------------------------------------------------------------


def _listing(folder: Path) -> list[Path]:
    """A digit folder's PNGs in the order of their MNIST index (training/5/0.png first)."""
    return sorted((p for p in folder.iterdir() if p.suffix == ".png"), key=lambda p: (int(p.stem), p.name))


def select(root: Path, seed: int = SEED, per_digit: int = PER_DIGIT) -> dict[str, list[Path]]:
    """The assignment's subset: `per_digit` random images of each digit from each split.

    The provided code shuffles `(path/split/str(digit)).ls()` after `set_seed(0)`, but `ls()` returns
    files in the order the file system lists them, which differs between machines, so the same seed
    can pick different images. Sorting by image index first, then drawing one seeded permutation
    per folder (split by split, digit by digit, from a single generator) picks the same images
    everywhere. The testing images left over form the held-out `test` split.
    """
    gen = torch.Generator().manual_seed(seed)
    chosen: dict[str, list[Path]] = {"train": [], "valid": [], "test": []}
    for split_dir, name in (("training", "train"), ("testing", "valid")):
        for digit in range(10):
            files = _listing(root / split_dir / str(digit))
            order = torch.randperm(len(files), generator=gen).tolist()
            chosen[name] += [files[i] for i in order[:per_digit]]
            if name == "valid":
                chosen["test"] += sorted((files[i] for i in order[per_digit:]), key=lambda p: int(p.stem))
    return chosen


def groups(root: Path, seed: int, per_digit: int, group: str) -> dict[str, list[Path]]:
    """The splits decoded together: `subset` (train, valid, test) or `full` (full-train, full-valid, full-test)."""
    if group == "subset":
        return select(root, seed, per_digit)
    training = [p for digit in range(10) for p in _listing(root / "training" / str(digit))]
    return {
        "full-train": [p for p in training if int(p.stem) < FULL_VALID_FROM],
        "full-valid": [p for p in training if int(p.stem) >= FULL_VALID_FROM],
        "full-test": [p for digit in range(10) for p in _listing(root / "testing" / str(digit))],
    }


def mnist_block():
    """The assignment's DataBlock: grayscale images, labelled by folder, split by grandparent folder."""
    from fastai.data.block import CategoryBlock, DataBlock
    from fastai.data.transforms import GrandparentSplitter, parent_label
    from fastai.vision.core import PILImageBW
    from fastai.vision.data import ImageBlock

    return DataBlock(
        blocks=(ImageBlock(PILImageBW), CategoryBlock),
        get_y=parent_label,
        splitter=GrandparentSplitter(train_name="training", valid_name="testing"),
    )


def _reason(e: Exception) -> str:
    text = e.strerror if isinstance(e, OSError) and e.strerror else f"{type(e).__name__}: {e}"
    return " ".join(text.split())


def decode(splits: dict[str, list[Path]]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Pixels (uint8, N x 784) and labels (int64) of each split, read through the assignment's DataBlock.

    `splits` starts with the training images; the block's splitter puts them in its training set,
    from which it learns the label vocabulary, and the testing images in its validation set. An
    image that cannot be decoded, or is not 28 x 28, is a one-line error naming its file.
    """
    items = [p for paths in splits.values() for p in paths]
    try:
        dsets = mnist_block().datasets(items)
    except Exception as e:  # setting up, the block reads the first image (and only it)
        raise UserError(f"cannot read the MNIST image {items[0]}: {_reason(e)}", 1) from None
    if list(dsets.vocab) != [str(d) for d in range(10)]:
        raise UserError(f"expected digit folders 0-9, found labels {list(dsets.vocab)}", exit_code=1)
    x = np.empty((len(items), 784), dtype=np.uint8)
    y = np.empty(len(items), dtype=np.int64)
    in_order = [(ds, i) for ds in (dsets.train, dsets.valid) for i in range(len(ds))]
    assert [ds.items[i] for ds, i in in_order] == items, "training images must come first"
    for n, (ds, i) in enumerate(tqdm(in_order, desc="decoding MNIST", mininterval=1)):
        try:
            img, label = ds[i]
            pixels = np.asarray(img, dtype=np.uint8)  # PIL decodes lazily: here
        except Exception as e:  # whatever the decoder raises, the file is damaged or unreadable
            raise UserError(f"cannot read the MNIST image {items[n]}: {_reason(e)}", 1) from None
        if pixels.shape != (28, 28):
            raise UserError(f"the MNIST image {items[n]} is {img.size[0]}x{img.size[1]} pixels, not 28x28", 1)
        x[n] = pixels.reshape(-1)
        y[n] = int(label)
    out, start = {}, 0
    for name, paths in splits.items():
        out[name] = x[start : start + len(paths)], y[start : start + len(paths)]
        start += len(paths)
    return out


# --- the image cache ---------------------------------------------------------------------------


def cache_file(split: str, seed: int = SEED, per_digit: int = PER_DIGIT) -> Path:
    key = split if split.startswith("full-") else f"{split}-seed{seed}-per{per_digit}"
    return cache_root() / "data" / f"mnist-{key}-v{FORMAT}.npz"


def _checksum(split: str, fingerprint: str, x: np.ndarray, y: np.ndarray, paths: np.ndarray) -> str:
    return sha256(split.encode(), fingerprint.encode(), x.tobytes(), y.tobytes(), "\n".join(paths.tolist()).encode())


Cached = tuple[np.ndarray, np.ndarray, np.ndarray, str]  # pixels, labels, files, fingerprint


def _read(file: Path, split: str) -> Cached | None:
    """The cached arrays of `split` and the fingerprint of the files they were decoded from, or None
    when the file is missing, damaged, of another format, or holds another split."""
    try:
        with np.load(file, allow_pickle=False) as z:
            x, y, paths = z["x"], z["y"], z["paths"]
            held, fp, checksum = str(z["split"]), str(z["fingerprint"]), str(z["checksum"])
    except Exception:  # missing, a folder, truncated zip, bad CRC, missing member: rebuild rather than trust it
        return None
    shapes_ok = (
        x.dtype == np.uint8 and x.ndim == 2 and x.shape[1] == 784
        and y.dtype == np.int64 and y.ndim == 1 and paths.dtype.kind == "U" and paths.ndim == 1
        and len(x) == len(y) == len(paths) > 0 and 0 <= y.min() and y.max() <= 9
    )
    if not shapes_ok or held != split or checksum != _checksum(split, fp, x, y, paths):
        return None
    return x, y, paths, fp


def _write(file: Path, split: str, fingerprint: str, x: np.ndarray, y: np.ndarray, paths: np.ndarray) -> None:
    checksum = np.array(_checksum(split, fingerprint, x, y, paths))
    atomic_write(file, lambda f: np.savez(
        f, x=x, y=y, paths=paths, split=np.array(split), fingerprint=np.array(fingerprint), checksum=checksum,
    ))


def _decode_group(root: Path, fp: str, split: str, seed: int, per_digit: int) -> Cached:
    """Decode `split` with the others of its group, cache them all, and return `split`'s arrays."""
    chosen = groups(root, seed, per_digit, "full" if split.startswith("full-") else "subset")
    failed = None
    for name, (x, y) in decode(chosen).items():
        files = np.array([p.relative_to(root).as_posix() for p in chosen[name]])
        try:
            _write(cache_file(name, seed, per_digit), name, fp, x, y, files)
        except OSError as e:
            failed = e
        if name == split:
            out = (x, y, files, fp)
    if failed is not None:
        note(f"the decoded images could not be cached ({_reason(failed)}): the next command decodes them again")
    return out


def load_split(split: str, *, seed: int = SEED, per_digit: int = PER_DIGIT, data=None) -> Split:
    """One split as tensors: read from the cache when it was decoded from the data at hand, else
    decoded (with the others of its group) and cached.

    Where the data folder is found (see `find`), its fingerprint must match the cache's: another
    or a changed folder means a new decode. Without it, the cache is used as it is.
    """
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    root = find(data)
    fp = fingerprint(root) if root is not None else None
    cached = _read(cache_file(split, seed, per_digit), split)
    if cached is None or (fp is not None and cached[3] != fp):
        root = root or locate(data)
        cached = _decode_group(root, fp or fingerprint(root), split, seed, per_digit)
    x, y, files, _ = cached
    return Split(torch.from_numpy(x).float().div_(255), torch.from_numpy(y), tuple(files.tolist()))


@dataclass(frozen=True)
class Splits:
    """What a run trains on (`train`), tunes and reports on (`valid`), and holds out (`test`, optional)."""

    train: Split
    valid: Split
    test: Split | None


def load(dataset: str = "subset", data=None) -> Splits:
    """`subset`: the assignment's 5,000/5,000 with 5,000 held out; `full`: 50,000/10,000 with 10,000 held out."""
    if dataset == "subset":
        return Splits(*(load_split(s, data=data) for s in ("train", "valid", "test")))
    if dataset == "full":
        return Splits(*(load_split(s, data=data) for s in ("full-train", "full-valid", "full-test")))
    raise UserError(f"unknown dataset {dataset!r}; choose subset or full")
