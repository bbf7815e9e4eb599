"""MNIST loaded with the assignment's fastai `DataBlock`, selected deterministically, cached as arrays.

Splits (names used everywhere else):
- `train`: 500 random training images of each digit (5,000), as in the assignment;
- `valid`: 500 random testing images of each digit (5,000): the assignment's validation set;
- `test`: the other 5,000 testing images, held out: evaluated, never used to choose anything;
- `full-train` / `full-valid` / `full-test`: the first 50,000 training images (by MNIST index), the
  last 10,000, and all 10,000 testing images: Nielsen's split, so that full MNIST is tuned on
  `full-valid` and `full-test` is held out.

Decoding 10,000 PNGs takes seconds; the decoded images are cached as `.npz` (uint8 pixels, labels,
file names and a checksum; no pickles) and a warm load takes milliseconds.
"""

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .errors import UserError
from .store import atomic_write, cache_root, sha256

DATA_ENV = "MNIST_DATA"
SEED = 0
PER_DIGIT = 500
SPLITS = ("train", "valid", "test", "full-train", "full-valid", "full-test")
FULL_VALID_FROM = 50_000  # training images from this MNIST index on are full MNIST's validation split
FORMAT = 2  # bump when the cached layout or a split changes: old files then no longer match


@dataclass(frozen=True)
class Split:
    """Images as float32 rows of 784 pixels in [0, 1], int64 labels, and their files in mnist_png."""

    x: torch.Tensor
    y: torch.Tensor
    paths: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.y)


def locate(path: str | os.PathLike | None = None) -> Path:
    """The `mnist_png` folder: `path`, else `$MNIST_DATA`, else fastai's `untar_data(URLs.MNIST)`.

    `untar_data` returns `$FASTAI_HOME/data/mnist_png` without downloading when it exists.
    """
    path = path or os.environ.get(DATA_ENV) or None
    if path is not None:
        given = Path(path).expanduser()
        for root in (given, given / "mnist_png"):
            if (root / "training").is_dir() and (root / "testing").is_dir():
                return root
        raise UserError(_missing(f"{given} (from --data or ${DATA_ENV})"), exit_code=1)

    from fastai.data.external import URLs, fastai_path, untar_data

    try:
        return Path(untar_data(URLs.MNIST))
    except Exception as e:  # fastai raises whatever its download raised: report it in one line
        looked = fastai_path("data") / "mnist_png"
        raise UserError(_missing(f"{looked} (fastai's data folder; download failed: {e!r})"), 1) from None


def _missing(where: str) -> str:
    return (
        f"MNIST not found: looked in {where}. Provide the mnist_png folder (training/ and testing/, "
        f"one folder per digit): unpack mnist_png.tgz into $FASTAI_HOME/data (default ~/.fastai/data), "
        f"or pass --data PATH or set {DATA_ENV}=PATH."
    )


def _listing(folder: Path) -> list[Path]:
    """A digit folder's PNGs in the order of their MNIST index (training/5/0.png first)."""
    files = [p for p in folder.iterdir() if p.suffix == ".png"]
    if not files:
        raise UserError(f"MNIST folder {folder} holds no PNG images", exit_code=1)
    return sorted(files, key=lambda p: (int(p.stem) if p.stem.isdigit() else -1, p.name))


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


def decode(splits: dict[str, list[Path]]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Pixels (uint8, N x 784) and labels (int64) of each split, read through the assignment's DataBlock.

    `splits` starts with the training images; the block's splitter puts them in its training set,
    from which it learns the label vocabulary, and the testing images in its validation set.
    """
    items = [p for paths in splits.values() for p in paths]
    dsets = mnist_block().datasets(items)
    if list(dsets.vocab) != [str(d) for d in range(10)]:
        raise UserError(f"expected digit folders 0-9, found labels {list(dsets.vocab)}", exit_code=1)
    x = np.empty((len(items), 784), dtype=np.uint8)
    y = np.empty(len(items), dtype=np.int64)
    in_order = [(ds, i) for ds in (dsets.train, dsets.valid) for i in range(len(ds))]
    assert [ds.items[i] for ds, i in in_order] == items, "training images must come first"
    for n, (ds, i) in enumerate(tqdm(in_order, desc="decoding MNIST", mininterval=1)):
        img, label = ds[i]
        x[n] = np.asarray(img, dtype=np.uint8).reshape(-1)
        y[n] = int(label)
    out, start = {}, 0
    for name, paths in splits.items():
        out[name] = x[start : start + len(paths)], y[start : start + len(paths)]
        start += len(paths)
    return out


def cache_file(split: str, seed: int = SEED, per_digit: int = PER_DIGIT) -> Path:
    key = split if split.startswith("full-") else f"{split}-seed{seed}-per{per_digit}"
    return cache_root() / "data" / f"mnist-{key}-v{FORMAT}.npz"


def _checksum(x: np.ndarray, y: np.ndarray, paths: np.ndarray) -> str:
    return sha256(x.tobytes(), y.tobytes(), "\n".join(paths.tolist()).encode())


def _read(file: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The cached arrays, or None when the file is missing, damaged or of another format."""
    try:
        with np.load(file, allow_pickle=False) as z:
            x, y, paths, checksum = z["x"], z["y"], z["paths"], str(z["checksum"])
    except Exception:  # missing, truncated zip, bad CRC, missing member: rebuild rather than trust it
        return None
    if x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 784 or not len(x) == len(y) == len(paths):
        return None
    return (x, y, paths) if _checksum(x, y, paths) == checksum else None


def _write(file: Path, x: np.ndarray, y: np.ndarray, paths: np.ndarray) -> None:
    checksum = np.array(_checksum(x, y, paths))
    atomic_write(file, lambda f: np.savez(f, x=x, y=y, paths=paths, checksum=checksum))


def load_split(split: str, *, seed: int = SEED, per_digit: int = PER_DIGIT, data=None) -> Split:
    """One split as tensors: decoded (with the others of its group) on a cache miss, else read."""
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    cached = _read(cache_file(split, seed, per_digit))
    if cached is None:
        root = locate(data)
        chosen = groups(root, seed, per_digit, "full" if split.startswith("full-") else "subset")
        for name, (x, y) in decode(chosen).items():
            paths = np.array([p.relative_to(root).as_posix() for p in chosen[name]])
            _write(cache_file(name, seed, per_digit), x, y, paths)
            if name == split:
                cached = (x, y, paths)
    x, y, paths = cached
    return Split(torch.from_numpy(x).float().div_(255), torch.from_numpy(y), tuple(paths.tolist()))


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

