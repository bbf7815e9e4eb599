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
pickles) and a warm load takes milliseconds. The fingerprint (every image's path and content, see
`provenance`) is also part of every run's cache key: another or a changed MNIST folder means a new
decode and new runs. Only regular files of a plausible size are read, from the data and the cache.
"""

import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import torch

from . import provenance
from .errors import UserError, note, reason
from .paths import DATA_ENV, expand
from .progress import tqdm
from .provenance import MAX_ARRAYS, MAX_IMAGE, fingerprint, recheck
from .store import CACHE_ENV, atomic_write, cache_root, open_regular, sha256

SEED = 0
PER_DIGIT = 500
SPLITS = ("train", "valid", "test", "full-train", "full-valid", "full-test")
FULL_VALID_FROM = 50_000  # training images from this MNIST index on are full MNIST's validation split
FORMAT = 3  # bump when the cached layout or a split changes: old files then no longer match


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
    home = _expanded(os.environ.get("FASTAI_HOME") or "~/.fastai", "$FASTAI_HOME")
    for folder in (home, home / "data"):  # where untar_data would unpack: it fails on a file there
        if os.path.lexists(folder) and not folder.is_dir():
            what = "$FASTAI_HOME" if folder == home else "$FASTAI_HOME/data"
            raise UserError(f"{what} {folder} is not a folder: fastai keeps MNIST in $FASTAI_HOME/data/mnist_png "
                            f"(set FASTAI_HOME to a folder, or pass --data PATH)")
    with _quiet_imports():
        from fastai.data.external import URLs, fastai_path, untar_data

    try:
        _found_by_fastai = Path(untar_data(URLs.MNIST))
    except Exception as e:  # fastai raises whatever its download raised: report it in one line
        looked = fastai_path("data") / "mnist_png"
        raise UserError(_missing(f"{looked} (fastai's data folder; download failed: {e!r})"), 1) from None
    return _found_by_fastai


@contextmanager
def _quiet_imports():
    """fastai's import warns that torch.jit.script is deprecated, in every process that decodes: not ours to fix."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        yield


def _missing(where: str) -> str:
    return (
        f"MNIST not found: looked in {where}. Provide the mnist_png folder (training/ and testing/, "
        f"one folder per digit): unpack mnist_png.tgz into $FASTAI_HOME/data (default ~/.fastai/data), "
        f"or pass --data PATH or set {DATA_ENV}=PATH."
    )


# --- what the data is: its version ----------------------------------------------------------------

_versions: dict[tuple, str] = {}  # the data version of each dataset, by the places that decide it


def version(dataset: str = "subset") -> str | None:
    """The fingerprint of the images a run on `dataset` trains on, part of every run's cache key.

    That of the folder `find` finds, else the one recorded in the image cache (the data is not at
    hand, but its decode is), else None: neither is known yet (`locate` then decode). Worked out
    once per process for the same `$MNIST_DATA`, `$FASTAI_HOME` and cache folder.
    """
    key = (dataset, *map(os.environ.get, (DATA_ENV, "FASTAI_HOME", CACHE_ENV)), _found_by_fastai)
    if key in _versions:
        return _versions[key]
    root = find()
    if root is not None:
        found = fingerprint(root)
    else:
        try:
            file = cache_file("train" if dataset == "subset" else "full-train")
            with open_regular(file, MAX_ARRAYS) as f, np.load(f, allow_pickle=False) as z:
                found = str(z["fingerprint"])
        except Exception:  # no image cache or a damaged one: unknown
            return None
    _versions[key] = found
    return found


def known() -> dict:
    """What this process has established about the data (fingerprints, versions, decoded splits
    it could not cache), for a worker process to `adopt`: it then trains on exactly those images."""
    return {"checked": provenance.checked(), "versions": dict(_versions), "held": dict(_held)}


def adopt(facts: dict) -> None:
    provenance.adopt(facts["checked"])
    _versions.update(facts["versions"])
    _held.update(facts["held"])


def forget() -> None:
    """Drop what this process has established about the data: the next use checks the folders again."""
    provenance.forget()
    _versions.clear()
    _held.clear()


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
    with _quiet_imports():
        from fastai.data.block import CategoryBlock, DataBlock
        from fastai.data.transforms import GrandparentSplitter, parent_label
        from fastai.vision.core import PILImageBW
        from fastai.vision.data import ImageBlock

    return DataBlock(
        blocks=(ImageBlock(PILImageBW), CategoryBlock),
        get_y=parent_label,
        splitter=GrandparentSplitter(train_name="training", valid_name="testing"),
    )


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
COLOUR_TYPES = {2: "colour (RGB)", 3: "palette", 4: "greyscale-with-alpha", 6: "colour-with-alpha (RGBA)"}


def _grey_depth(path: Path) -> int:
    """The bit depth of the greyscale PNG at `path`, read from its header; a one-line error naming
    the file if it is no PNG, or not greyscale."""
    with open_regular(path, MAX_IMAGE) as f:
        head = f.read(26)
    if len(head) < 26 or not head.startswith(PNG_SIGNATURE) or head[12:16] != b"IHDR":
        raise UserError(f"cannot read the MNIST image {path}: not a PNG file", 1)
    depth, colour = head[24], head[25]
    if colour != 0:
        kind = COLOUR_TYPES.get(colour, f"colour type {colour}")
        raise UserError(f"the MNIST image {path} is a {kind} PNG, not greyscale like MNIST's", 1)
    return depth


def _pixels_16_bit(path: Path) -> np.ndarray:
    """A 16-bit greyscale PNG as 8-bit pixels, v * 255 / 65535 rounded: an image saved at 16 bits
    from 8 (v * 257) gives back exactly its pixels. (fastai's conversion to 8 bits clips instead.)"""
    from PIL import Image

    with Image.open(path) as img:
        values = np.asarray(img).astype(np.uint32)
    return ((values * 255 + 32767) // 65535).astype(np.uint8)


def decode(splits: dict[str, list[Path]]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Pixels (uint8, N x 784) and labels (int64) of each split, read through the assignment's DataBlock.

    `splits` starts with the training images; the block's splitter puts them in its training set,
    from which it learns the label vocabulary, and the testing images in its validation set. Every
    greyscale PNG gives pixels k/255 of its value scale: 1, 2, 4 and 8 bits through the block, 16
    bits rescaled (`_pixels_16_bit`). An image that is no greyscale PNG, cannot be decoded, or is
    not 28 x 28, is a one-line error naming its file.
    """
    items = [p for paths in splits.values() for p in paths]
    try:
        dsets = mnist_block().datasets(items)
    except Exception as e:  # setting up, the block reads the first image (and only it)
        raise UserError(f"cannot read the MNIST image {items[0]}: {reason(e)}", 1) from None
    if list(dsets.vocab) != [str(d) for d in range(10)]:
        raise UserError(f"expected digit folders 0-9, found labels {list(dsets.vocab)}", exit_code=1)
    x = np.empty((len(items), 784), dtype=np.uint8)
    y = np.empty(len(items), dtype=np.int64)
    in_order = [(ds, i) for ds in (dsets.train, dsets.valid) for i in range(len(ds))]
    assert [ds.items[i] for ds, i in in_order] == items, "training images must come first"
    for n, (ds, i) in enumerate(tqdm(in_order, desc="decoding MNIST", mininterval=1)):
        try:
            depth = _grey_depth(items[n])
            img, label = ds[i]
            pixels = _pixels_16_bit(items[n]) if depth == 16 else np.asarray(img, dtype=np.uint8)  # decoded here
        except UserError:
            raise
        except Exception as e:  # whatever the decoder raises, the file is damaged or unreadable
            raise UserError(f"cannot read the MNIST image {items[n]}: {reason(e)}", 1) from None
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
_held: dict[str, Cached] = {}  # decoded splits the cache could not take, by cache file: kept for this process


def _read(file: Path, split: str) -> Cached | None:
    """The cached arrays of `split` and the fingerprint of the files they were decoded from, or None
    when the file is missing, damaged, not a regular file, of another format, or holds another split."""
    try:
        with open_regular(file, MAX_ARRAYS) as f, np.load(f, allow_pickle=False) as z:
            x, y, paths = z["x"], z["y"], z["paths"]
            held, fp, checksum = str(z["split"]), str(z["fingerprint"]), str(z["checksum"])
    except Exception:  # missing, a folder, a FIFO, truncated zip, bad CRC, missing member: rebuild rather than trust it
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
    """Decode `split` with the others of its group, cache them all, and return `split`'s arrays.

    The folder is checked again afterwards: images changed while they were read are an error, not
    a decode filed under the fingerprint of other images. Splits the cache cannot take (a full
    disk) are kept in memory for the rest of the process, with one note.
    """
    chosen = groups(root, seed, per_digit, "full" if split.startswith("full-") else "subset")
    decoded = decode(chosen)
    if recheck(root) != fp:
        raise UserError(f"MNIST in {root} changed while it was being decoded; run the command again", 1)
    failed = None
    for name, (x, y) in decoded.items():
        file = cache_file(name, seed, per_digit)
        entry = (x, y, np.array([p.relative_to(root).as_posix() for p in chosen[name]]), fp)
        try:
            _write(file, name, fp, *entry[:3])
            _held.pop(str(file), None)
        except OSError as e:
            failed = e
            _held[str(file)] = entry
        if name == split:
            out = entry
    if failed is not None:
        note(f"the decoded images could not be cached ({reason(failed)}): this command keeps them in memory, "
             "the next one decodes them again")
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
    file = cache_file(split, seed, per_digit)
    cached = _held.get(str(file)) or _read(file, split)
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
