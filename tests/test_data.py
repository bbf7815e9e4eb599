"""Tests of the MNIST subset: selection, splits, decoding, the tensor cache, and missing-data errors.

Never downloads: tests use the real `mnist_png` folder through an explicit path, or patch fastai's
`untar_data`. Tests that only read use the shared cache (`store.cache_root()`); tests that damage
caches point `MNIST_SCRATCH_CACHE` at their own temporary folder.
"""

import dataclasses
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import time
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mnist_scratch import data, provenance, store
from mnist_scratch.errors import UserError

PYTHON = sys.executable
SRC = Path(data.__file__).resolve().parents[1]


def _no_download(*args, **kwargs):
    raise AssertionError("a test tried to call fastai's untar_data (could download)")


@pytest.fixture(autouse=True)
def _never_download(monkeypatch):
    """Any unexpected fall-through to fastai's `untar_data` fails the test instead of downloading."""
    import fastai.data.external

    monkeypatch.setattr(fastai.data.external, "untar_data", _no_download)


@pytest.fixture(scope="module")
def root(mnist) -> Path:
    """The real mnist_png folder, found as the library finds it (tests/conftest.py)."""
    return mnist


@pytest.fixture(scope="module")
def testing_files(root) -> set[str]:
    return {p.relative_to(root).as_posix() for p in (root / "testing").glob("*/*.png")}


@pytest.fixture(scope="module")
def subset(root):
    """The subset splits from the shared cache (decoded into it first if cold)."""
    return data.load("subset", data=root)


def _rel(chosen: dict[str, list[Path]], root: Path) -> dict[str, list[str]]:
    return {name: [p.relative_to(root).as_posix() for p in paths] for name, paths in chosen.items()}


# --- splits -----------------------------------------------------------------------------------


def test_train_and_valid_hold_500_of_each_digit(subset):
    for split in (subset.train, subset.valid):
        assert len(split) == 5000
        assert Counter(split.y.tolist()) == {d: 500 for d in range(10)}
        assert Counter(Path(p).parent.name for p in split.paths) == {str(d): 500 for d in range(10)}


def test_splits_come_from_the_right_folders_and_do_not_overlap(subset):
    train, valid, test = (set(s.paths) for s in (subset.train, subset.valid, subset.test))
    assert len(train) == len(subset.train.paths) and len(valid) == 5000 and len(test) == 5000  # no duplicates
    assert all(p.startswith("training/") for p in train)
    assert all(p.startswith("testing/") for p in valid | test)
    assert not train & valid and not train & test and not valid & test


def test_test_split_is_the_testing_images_not_in_valid(subset, testing_files):
    valid, test = set(subset.valid.paths), set(subset.test.paths)
    assert len(testing_files) == 10_000
    assert len(test) == 5000 and not valid & test
    assert valid | test == testing_files
    assert test == testing_files - valid


def test_labels_agree_with_the_folder_of_every_image(subset):
    for split in (subset.train, subset.valid, subset.test):
        assert split.y.tolist() == [int(Path(p).parent.name) for p in split.paths]


def test_tensors_are_float_rows_in_unit_range_with_int64_labels(subset):
    for split in (subset.train, subset.valid, subset.test):
        n = len(split.paths)
        assert split.x.dtype == torch.float32 and split.x.shape == (n, 784)
        assert split.y.dtype == torch.int64 and split.y.shape == (n,)
        assert split.x.min() >= 0 and split.x.max() <= 1
        assert split.x.max() == 1 and split.x.min() == 0  # scaled by 255, not by something else
        levels = split.x * 255
        assert torch.allclose(levels, levels.round(), atol=1e-4)  # k/255 for integer k


def test_pixels_equal_pils_decode_of_the_png(subset, root):
    rng = random.Random(0)
    for split in (subset.train, subset.valid, subset.test):
        for i in [0, len(split) - 1, *rng.sample(range(len(split)), 4)]:
            with Image.open(root / split.paths[i]) as img:
                assert img.size == (28, 28)
                expected = np.asarray(img.convert("L"), dtype=np.uint8).reshape(-1)
            got = (split.x[i] * 255).round().to(torch.uint8).numpy()
            np.testing.assert_array_equal(got, expected, err_msg=split.paths[i])
            assert torch.equal(split.x[i], torch.tensor(expected).float() / 255)


def test_cached_subset_is_the_selection(subset, root):
    chosen = _rel(data.select(root), root)
    assert list(subset.train.paths) == chosen["train"]
    assert list(subset.valid.paths) == chosen["valid"]
    assert list(subset.test.paths) == chosen["test"]


def test_full_splits_hold_every_image(root, testing_files):
    full = data.load("full", data=root)  # ~10 s on a cold shared cache, milliseconds when warm
    assert (len(full.train), len(full.valid), len(full.test)) == (50_000, 10_000, 10_000)
    assert set(full.test.paths) == testing_files
    training_files = {p.relative_to(root).as_posix() for p in (root / "training").glob("*/*.png")}
    assert set(full.train.paths) | set(full.valid.paths) == training_files and len(training_files) == 60_000
    # Nielsen's split: the last 10,000 training images (by MNIST index) validate
    assert {int(Path(p).stem) for p in full.valid.paths} == set(range(50_000, 60_000))
    for split in (full.train, full.valid, full.test):
        assert split.x.dtype == torch.float32 and split.x.shape == (len(split), 784)
        assert split.y.tolist() == [int(Path(p).parent.name) for p in split.paths]
        assert split.x.min() >= 0 and split.x.max() <= 1


def test_unknown_split_or_dataset_is_a_user_error():
    with pytest.raises(UserError):
        data.load_split("training")
    with pytest.raises(UserError):
        data.load("everything")


# --- selection ---------------------------------------------------------------------------------

_SELECT_SCRIPT = """
import json, sys
from pathlib import Path
from mnist_scratch.data import select
root = Path(sys.argv[1])
chosen = select(root)
print(json.dumps({k: [p.relative_to(root).as_posix() for p in v] for k, v in chosen.items()}))
"""


def test_select_is_the_same_in_fresh_processes(root):
    runs = []
    for hashseed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hashseed, "PYTHONPATH": str(SRC)}
        done = subprocess.run(
            [PYTHON, "-c", _SELECT_SCRIPT, str(root)], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        runs.append(json.loads(done.stdout))
    assert runs[0] == runs[1]
    assert runs[0] == _rel(data.select(root), root)


@pytest.mark.parametrize("reorder", ["reversed", "shuffled"])
def test_select_ignores_the_order_of_the_directory_listing(root, monkeypatch, reorder):
    normal = data.select(root)
    real_iterdir = Path.iterdir
    rng = random.Random(42)

    def iterdir(self):
        entries = list(real_iterdir(self))
        if reorder == "reversed":
            entries.reverse()
        else:
            rng.shuffle(entries)
        return iter(entries)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    assert data.select(root) == normal


def test_another_seed_picks_other_images(root):
    zero, one = data.select(root, seed=0), data.select(root, seed=1)
    assert set(zero["train"]) != set(one["train"])
    assert set(zero["valid"]) != set(one["valid"])
    assert Counter(p.parent.name for p in one["train"]) == {str(d): 500 for d in range(10)}
    assert data.cache_file("train", seed=1) != data.cache_file("train", seed=0)


def test_per_digit_sets_the_subset_size(root):
    chosen = data.select(root, per_digit=7)
    assert Counter(p.parent.name for p in chosen["train"]) == {str(d): 7 for d in range(10)}
    assert Counter(p.parent.name for p in chosen["valid"]) == {str(d): 7 for d in range(10)}
    assert len(chosen["test"]) == 10_000 - 70


# --- the tensor cache --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pristine(root, tmp_path_factory):
    """A cold load of the subset into a fresh cache: its files and arrays, to copy and damage."""
    folder = tmp_path_factory.mktemp("pristine-cache")
    mp = pytest.MonkeyPatch()
    mp.setenv(store.CACHE_ENV, str(folder))
    try:
        splits = {name: data.load_split(name, data=root) for name in ("train", "valid", "test")}
        files = sorted((folder / "data").glob("*.npz"))
    finally:
        mp.undo()
    assert [f.name for f in files] == sorted(
        data.cache_file(s).name for s in ("train", "valid", "test")
    ), "a cold load writes the three subset splits"
    return folder, splits


@pytest.fixture
def cache(pristine, tmp_path, monkeypatch):
    """A private copy of the pristine cache, with MNIST_SCRATCH_CACHE pointing at it."""
    folder = tmp_path / "cache"
    shutil.copytree(pristine[0], folder)
    monkeypatch.setenv(store.CACHE_ENV, str(folder))
    assert data.cache_file("train") == folder / "data" / data.cache_file("train").name
    return folder


@pytest.fixture
def decodes(monkeypatch):
    """Counts the calls of `data.decode` (still decoding)."""
    calls = []
    real = data.decode

    def counting(splits):
        calls.append(list(splits))
        return real(splits)

    monkeypatch.setattr(data, "decode", counting)
    return calls


def _assert_same(a: data.Split, b: data.Split):
    assert a.paths == b.paths
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)


def _member_data_offset(file: Path, member: str) -> tuple[int, int]:
    """Where `member`'s stored bytes start in the (uncompressed) zip, and how many there are."""
    with zipfile.ZipFile(file) as z:
        info = z.getinfo(member)
    assert info.compress_type == zipfile.ZIP_STORED
    raw = file.read_bytes()
    name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26 : info.header_offset + 30])
    return info.header_offset + 30 + name_len + extra_len, info.file_size


def _truncate(file: Path):
    raw = file.read_bytes()
    file.write_bytes(raw[: len(raw) // 2])


def _flip_pixel_bytes(file: Path):
    start, size = _member_data_offset(file, "x.npy")
    raw = bytearray(file.read_bytes())
    middle = start + size // 2
    for i in range(middle, middle + 16):
        raw[i] ^= 0xFF
    file.write_bytes(bytes(raw))


def _garbage(file: Path):
    file.write_bytes(os.urandom(4096))


def _tamper_consistently(file: Path):
    """A well-formed npz (valid zip CRCs) whose pixels no longer match the stored checksum."""
    with np.load(file, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["x"] = arrays["x"].copy()
    arrays["x"][len(arrays["x"]) // 2, 400] ^= 0xFF
    with open(file, "wb") as f:
        np.savez(f, **arrays)


@pytest.mark.parametrize("damage", [_truncate, _flip_pixel_bytes, _garbage, _tamper_consistently])
def test_a_damaged_cache_file_is_rebuilt_not_trusted(cache, pristine, decodes, root, damage):
    file = data.cache_file("train")
    assert data._read(file, "train") is not None
    damage(file)
    damaged = file.read_bytes()
    assert data._read(file, "train") is None, "the damage must be detected"

    again = data.load_split("train", data=root)

    _assert_same(again, pristine[1]["train"])
    assert len(decodes) == 1, "rebuilt by decoding the PNGs"
    assert file.read_bytes() != damaged
    assert data._read(file, "train") is not None, "the rewritten file is valid again"
    assert not list(file.parent.glob(".*.tmp")), "no temporary file left behind"


def test_a_leftover_temporary_file_does_not_break_loading(cache, pristine, decodes, root):
    folder = data.cache_file("train").parent
    # an interrupted atomic_write: a half-written temporary beside the (missing) target
    leftover = folder / f".{data.cache_file('train').name}.abc123.tmp"
    leftover.write_bytes(data.cache_file("train").read_bytes()[:1000])
    data.cache_file("train").unlink()

    again = data.load_split("train", data=root.parent)  # the folder holding mnist_png works too

    _assert_same(again, pristine[1]["train"])
    assert len(decodes) == 1
    assert data._read(data.cache_file("train"), "train") is not None
    # and with the target present, a warm load ignores the leftover
    _assert_same(data.load_split("train"), pristine[1]["train"])
    assert len(decodes) == 1


def test_warm_load_reads_the_cache_without_decoding(subset, monkeypatch):
    def no(*args, **kwargs):
        raise AssertionError("a warm load decoded PNGs or looked for the data")

    monkeypatch.setattr(data, "decode", no)
    monkeypatch.setattr(data, "locate", no)
    warm = data.load("subset")
    for a, b in zip((warm.train, warm.valid, warm.test), (subset.train, subset.valid, subset.test)):
        _assert_same(a, b)


def test_cold_load_in_a_fresh_cache_without_data_is_a_user_error(tmp_path, monkeypatch):
    monkeypatch.setenv(store.CACHE_ENV, str(tmp_path))
    with pytest.raises(UserError) as e:
        data.load_split("train", data="/nonexistent/mnist")
    assert "/nonexistent/mnist" in str(e.value) and e.value.exit_code != 0


# --- locating the data -------------------------------------------------------------------------


def test_missing_explicit_path_says_where_it_looked_and_how_to_fix(monkeypatch):
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    with pytest.raises(UserError) as e:
        data.locate("/nonexistent")
    message = str(e.value)
    assert "MNIST not found" in message and "/nonexistent" in message
    for hint in ("--data", "MNIST_DATA", "FASTAI_HOME"):
        assert hint in message
    assert e.value.exit_code != 0 and "\n" not in message


def test_folder_without_training_and_testing_is_rejected(tmp_path, monkeypatch):
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    (tmp_path / "training").mkdir()
    with pytest.raises(UserError) as e:
        data.locate(tmp_path)
    assert str(tmp_path) in str(e.value) and e.value.exit_code != 0


@pytest.fixture
def only_fastai_knows(tmp_path, monkeypatch):
    """No path, no $MNIST_DATA, nothing in fastai's default folder: only `untar_data` can find MNIST."""
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    monkeypatch.setenv("FASTAI_HOME", str(tmp_path / "fastai-home"))
    monkeypatch.setattr(data, "_found_by_fastai", None)


def test_failed_fastai_download_names_fastais_data_folder(monkeypatch, only_fastai_knows):
    import fastai.data.external

    def offline(*args, **kwargs):
        raise ConnectionError("no network in this test")

    monkeypatch.setattr(fastai.data.external, "untar_data", offline)
    assert data.find() is None
    with pytest.raises(UserError) as e:
        data.locate()
    message = str(e.value)
    assert str(fastai.data.external.fastai_path("data") / "mnist_png") in message
    assert "MNIST not found" in message and "ConnectionError" in message
    for hint in ("--data", "MNIST_DATA", "FASTAI_HOME"):  # how to fix it, not only where it looked
        assert hint in message
    assert e.value.exit_code != 0


def test_without_a_path_fastais_untar_data_is_asked(root, monkeypatch, only_fastai_knows):
    import fastai.data.external

    monkeypatch.setattr(fastai.data.external, "untar_data", lambda url, *a, **k: str(root))
    assert data.locate() == root
    assert data.find() == root  # remembered: the run keys of this process see the same folder


def test_fastais_default_folder_is_found_without_fastai(root, tmp_path, monkeypatch):
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "mnist_png").symlink_to(root, target_is_directory=True)
    monkeypatch.setenv("FASTAI_HOME", str(tmp_path))
    assert data.find() == tmp_path / "data" / "mnist_png"  # untar_data is patched to fail: not asked
    assert data.locate() == tmp_path / "data" / "mnist_png"


def test_mnist_data_env_var_is_used(root, monkeypatch):
    monkeypatch.setenv(data.DATA_ENV, str(root))
    assert data.locate() == root  # untar_data is patched to fail: the env var was used
    monkeypatch.setenv(data.DATA_ENV, str(root.parent))
    assert data.locate() == root


def test_explicit_path_may_be_the_parent_folder_and_wins_over_the_env_var(root, monkeypatch):
    monkeypatch.setenv(data.DATA_ENV, "/nonexistent")
    assert data.locate(root.parent) == root
    assert data.locate(str(root)) == root


def test_cli_reports_missing_data_in_one_line(tmp_path):
    empty_cache = tmp_path / "cache"
    empty_cache.mkdir()
    env = {**os.environ, store.CACHE_ENV: str(empty_cache), "PYTHONPATH": str(SRC)}
    env.pop(data.DATA_ENV, None)
    done = subprocess.run(
        [PYTHON, "-m", "mnist_scratch", "--data", "/nonexistent/path", "data"],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "MNIST not found" in lines[0] and "/nonexistent/path" in lines[0]


# --- a small folder of MNIST's shape ---------------------------------------------------------------

MINI_COUNTS = {"training": tuple(range(3, 13)), "testing": tuple(range(2, 12))}  # all distinct, as MNIST's


@pytest.fixture
def mini(tmp_path, monkeypatch) -> Path:
    """An mnist_png of 145 distinct random 28 x 28 images, MNIST's shape scaled down (counts patched),
    with a cache of its own; the process forgets what it established about the data before and after."""
    monkeypatch.setattr(provenance, "MNIST_COUNTS", MINI_COUNTS)
    monkeypatch.setenv(store.CACHE_ENV, str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    root = tmp_path / "mnist_png"
    for split_dir, counts in MINI_COUNTS.items():
        index = 0
        for digit, n in enumerate(counts):
            (root / split_dir / str(digit)).mkdir(parents=True)
            for _ in range(n):
                Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(root / split_dir / str(digit) / f"{index}.png")
                index += 1
    data.forget()
    yield root
    data.forget()


def one_per_digit(root: Path) -> dict[str, list[Path]]:
    """A split of each kind for `data.decode`: the first image of every digit folder."""
    return {name: [min((root / split_dir / str(d)).iterdir(), key=lambda p: int(p.stem)) for d in range(10)]
            for name, split_dir in (("train", "training"), ("valid", "testing"))}


# --- PNGs of every bit depth ------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [1, 2, 4, 8, 16])
def test_greyscale_png_of_any_bit_depth_decodes_to_its_pixels(mini, bits):
    """The same picture saved at 1, 2, 4, 8 or 16 bits decodes to the same pixels in [0, 1]. (At 16
    bits, fastai's conversion alone gives two grey levels.) Pixels are first rounded to the levels
    the depth can hold: k * 255 / (2**bits - 1)."""
    path = one_per_digit(mini)["train"][3]
    with Image.open(path) as img:
        levels = 2 ** min(bits, 8) - 1
        expected = (np.round(np.asarray(img, dtype=np.float64) / 255 * levels) * (255 // levels)).astype(np.uint8)
    path.unlink()
    if bits == 16:
        Image.fromarray(expected.astype(np.uint16) * 257).save(path)  # 0..255 scaled to 0..65535
    elif bits == 1:
        Image.fromarray(expected > 127).save(path)
    else:
        Image.fromarray(expected).save(path, bits=bits)
    assert path.read_bytes()[24] == bits  # the depth the PNG header states

    x, _ = data.decode(one_per_digit(mini))["train"]
    np.testing.assert_array_equal(x[3].reshape(28, 28), expected)


@pytest.mark.parametrize("mode,kind", [("RGB", "colour (RGB)"), ("P", "palette"), ("LA", "greyscale-with-alpha"),
                                       ("RGBA", "colour-with-alpha (RGBA)")])
def test_png_that_is_not_greyscale_is_refused_by_name(mini, mode, kind):
    path = one_per_digit(mini)["train"][5]
    with Image.open(path) as img:
        img.convert(mode).save(path)
    with pytest.raises(UserError) as e:
        data.decode(one_per_digit(mini))
    assert str(e.value) == f"the MNIST image {path} is a {kind} PNG, not greyscale like MNIST's"
    assert e.value.exit_code == 1


# --- the fingerprint: every rewrite seen, at the cost of a `stat` per image ---------------------------


@pytest.fixture
def reads(monkeypatch) -> list[str]:
    """The images whose content the fingerprint reads (still reading them)."""
    seen = []
    real = provenance._digest

    def counting(root, name):
        seen.append(name)
        return real(root, name)

    monkeypatch.setattr(provenance, "_digest", counting)
    return seen


def settled(root: Path) -> str:
    """The fingerprint, with a memo taken after every file's last change (in a later second), so
    that the next check reads no image whose stat is unchanged."""
    provenance.recheck(root)
    time.sleep(1.05 - time.time() % 1)  # the next second: every file is now older than a new memo
    return provenance.recheck(root)


def from_scratch(root: Path) -> str:
    """The fingerprint computed without any memo: every image read."""
    provenance._memo_file(os.path.abspath(root)).unlink(missing_ok=True)
    return provenance.recheck(root)


def _same_size_same_mtime(path: Path) -> None:
    """Other bytes of the same length written into the same file, its modification time set back:
    only the change time (which no tool sets back) tells."""
    before = path.stat()
    raw = bytearray(path.read_bytes())
    raw[-20] ^= 0xFF
    with open(path, "r+b") as f:
        f.write(raw)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (before.st_ino, before.st_size, before.st_mtime_ns)


def _other_size_in_place(path: Path) -> None:
    with open(path, "ab") as f:
        f.write(b"\0")


def _renamed_over(path: Path) -> None:
    """Another picture written beside it and renamed into place (a new inode)."""
    Image.fromarray(np.full((28, 28), 7, np.uint8)).save(path.with_suffix(".tmp"), format="png")
    os.replace(path.with_suffix(".tmp"), path)


def _contents_swapped_with_a_neighbour(path: Path) -> None:
    other = path.with_name(f"{int(path.stem) + 1}.png")
    a, b = path.read_bytes(), other.read_bytes()
    path.write_bytes(b)
    other.write_bytes(a)


@pytest.mark.parametrize("rewrite", [_same_size_same_mtime, _other_size_in_place, _renamed_over,
                                     _contents_swapped_with_a_neighbour],
                         ids=lambda f: f.__name__.strip("_").replace("_", "-"))
def test_fingerprint_follows_every_rewrite_reading_only_what_changed(mini, reads, rewrite):
    before = settled(mini)
    path = mini / "training" / "4" / f"{sum(MINI_COUNTS['training'][:4])}.png"  # the first image of training/4
    rewrite(path)
    reads.clear()
    after = provenance.recheck(mini)  # as the next command: a stat of every image
    assert after != before
    changed = {path.relative_to(mini).as_posix()} | (
        {f"training/4/{int(path.stem) + 1}.png"} if rewrite is _contents_swapped_with_a_neighbour else set())
    assert set(reads) == changed  # the memo vouched for every other image
    assert after == from_scratch(mini)  # the same fingerprint as a folder seen for the first time


def test_unchanged_folder_is_read_once_then_only_stated(mini, reads):
    fingerprint = settled(mini)
    assert len(reads) >= sum(map(sum, MINI_COUNTS.values()))  # the first check reads every image
    reads.clear()
    assert provenance.recheck(mini) == fingerprint and reads == []
    data.forget()  # a new command: the memo on disk, no process memory
    assert provenance.fingerprint(mini) == fingerprint and reads == []


def test_racily_clean_files_are_read_again(mini, reads, monkeypatch):
    """On a file system whose times are coarse, a file rewritten just after the memo's `stat` can keep
    its stat. Simulated: one file written in the very second the memo is taken, then rewritten,
    reporting the same stat. It is read again, and the rewrite is seen; the files older than that
    second are trusted on their stat."""
    before = settled(mini)
    key, path = os.path.abspath(mini), mini / "testing" / "0" / "0.png"
    names, stats, missing = provenance._survey(mini)
    i = names.index("testing/0/0.png")
    now = time.time_ns()
    stats[i, 1:3] = now  # written (and its change noted) within the second of the memo below
    memo = provenance._read_memo(key)
    memo.stats[i] = stats[i]
    provenance._write_memo(key, dataclasses.replace(memo, taken=now))
    _other_size_in_place(path)  # rewritten: on this file system, the same stat
    monkeypatch.setattr(provenance, "_survey", lambda root: (names, stats.copy(), missing))
    reads.clear()
    assert provenance.recheck(mini) != before and reads == ["testing/0/0.png"]


def test_a_folder_changed_while_it_was_decoded_is_an_error(mini, monkeypatch):
    """The images are read twice (fingerprint, decode): a change in between is caught after the decode."""
    fp = provenance.fingerprint(mini)
    real = data.decode

    def decode_then_change(splits):
        decoded = real(splits)
        _other_size_in_place(mini / "training" / "0" / "0.png")
        return decoded

    monkeypatch.setattr(data, "decode", decode_then_change)
    monkeypatch.setattr(data, "PER_DIGIT", 2)
    with pytest.raises(UserError, match=f"MNIST in {mini} changed while it was being decoded"):
        data._decode_group(mini, fp, "train", data.SEED, 2)
    assert not list((store.cache_root() / "data").glob("*.npz"))  # nothing filed under the old fingerprint
