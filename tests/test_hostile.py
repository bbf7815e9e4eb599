"""Hostile input: what a user (or the system) can throw at the command line, and what it must survive.

Every case ends in a clean one-line message and the right exit code (never a traceback or a hang),
or in a correct result; and no finished work is lost. The test names read as the table of inputs
survived: absurd numbers, damaged or incomplete MNIST folders, unwritable or impossible places,
damaged cache entries, Ctrl-C and a killed parent.
"""

import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mnist_scratch import cli as cli_module
from mnist_scratch import data, experiments, provenance, results, runner, store
from mnist_scratch.experiments import EXPERIMENTS, configs
from mnist_scratch.train import RunConfig, Split, Splits, train

from .test_experiments import (  # noqa: F401 (fixtures)
    CACHE_ENV,
    ERROR_PREFIX,
    SMALL,
    calls,
    cache,
    cli,
    data_dir,
    env_for,
    new_cache,
    read_entry,
    runs_dir_listing,
    subset_ready,
    without_seconds,
    write_entry,
)

SLOW_CLI = Path(__file__).with_name("slow_cli.py")


@pytest.fixture(autouse=True)
def _private_cache_by_default(tmp_path_factory, monkeypatch):
    """Every test starts with an empty cache root of its own and no `$MNIST_DATA` or `$MNIST_SCRATCH_JOBS`;
    and leaves the environment as it found it (`cli.main` passes `--cache` and `--data` on in it)."""
    saved = dict(os.environ)
    monkeypatch.setenv(CACHE_ENV, str(tmp_path_factory.mktemp("default-cache")))
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    monkeypatch.delenv(runner.JOBS_ENV, raising=False)
    yield
    os.environ.clear()
    os.environ.update(saved)


def _figure_names() -> list[str]:
    from mnist_scratch.figures import figure_names

    return figure_names()


def check_one_line_error(stderr: str, stdout: str, returncode: int, code: int, expected: list[str]) -> None:
    assert "Traceback" not in stderr, stderr
    lines = stderr.splitlines()  # also splits on the '\r' a progress bar writes
    assert len(lines) == 1, stderr
    (line,) = lines
    assert line.startswith(ERROR_PREFIX), line
    assert returncode == code, stderr
    for text in expected:
        for part in _figure_names() if text == "@figures" else [text]:
            assert part in line
    assert stdout == ""


def main_in_process(args: list[str], capsys) -> tuple[int, str, str]:
    """`cli.main(args)`: its exit code (argparse's too), stdout and stderr."""
    try:
        code = cli_module.main(args)
    except SystemExit as e:  # argparse's own errors
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------------------------------
# bad arguments, names and numbers


# through a subprocess: the exit code and stderr a user sees
BAD_INPUTS = [
    ("run-unknown", ["run", "nope"], 2, ["unknown experiment 'nope'", *EXPERIMENTS]),
    ("figure-unknown", ["figure", "nope"], 2, ["unknown figure 'nope'", "@figures"]),
    ("figure-none", ["figure"], 2, ["name a figure or pass --all", "@figures"]),
    ("lr-zero", ["train", "--lr", "0"], 2, ["learning rate must be a positive number"]),
    ("lr-negative", ["train", "--lr", "-1"], 2, ["learning rate must be a positive number", "-1"]),
    ("weight-decay-negative", ["train", "--weight-decay", "-0.1"], 2, ["weight decay must be zero or positive"]),
    ("hidden-empty", ["train", "--hidden", ""], 2, ["hidden sizes must be positive whole numbers"]),
    ("hidden-empty-part", ["train", "--hidden", "30,,10"], 2, ["hidden sizes", "'30,,10'"]),
    ("hidden-0x", ["train", "--hidden", "0x"], 2, ["hidden sizes", "'0x'"]),
    ("objective-unknown", ["train", "--objective", "nope"], 2, ["unknown objective 'nope'", "cross-entropy", "mse-digit", "mse-onehot"]),
    ("data-missing", ["--data", "/nonexistent", "data"], 1, ["MNIST not found", "/nonexistent"]),
    ("data-missing-train", ["--data", "/nonexistent", "train", "--epochs", "1"], 1, ["MNIST not found"]),
    ("data-missing-run", ["--data", "/nonexistent", "--tiny", "--jobs", "2", "run", "lr-sweep"], 1, ["MNIST not found"]),
]

BIG = str(2**63)
# more of the same, through cli.main in this process (a subprocess each would cost seconds)
BAD_INPUTS_IN_PROCESS = [
    ("run-unknown-after-valid", ["--tiny", "run", "lr-sweep", "nope"], 2, ["unknown experiment 'nope'"]),
    ("figure-unknown-after-valid", ["--tiny", "figure", "sample-digits", "nope"], 2, ["unknown figure 'nope'"]),
    ("unknown-option", ["train", "--nope", "1"], 2, ["unrecognized arguments: --nope 1"]),
    ("lr-1e39-beyond-float32", ["train", "--lr", "1e39"], 2, ["learning rate 1e+39 is too large", "float32"]),
    ("hidden-ten-million", ["train", "--hidden", "10000000"], 2, ["784-10000000-10 network needs about", "GB"]),
    ("epochs-not-a-number", ["train", "--epochs", "ten"], 2, ["argument --epochs: invalid int value: 'ten'"]),
    ("jobs-negative", ["--jobs", "-1", "run", "lr-sweep"], 2, ["--jobs must be at least 1, got -1"]),
    ("cache-under-no-such-user", ["--cache", "~nosuchuser/cache", "list"], 2, ["--cache ~nosuchuser/cache: no such user"]),
    ("lr-nan", ["train", "--lr", "nan"], 2, ["learning rate must be a positive number"]),
    ("lr-inf", ["train", "--lr", "inf"], 2, ["learning rate must be a positive number"]),
    ("lr-1e-50-rounds-to-zero", ["train", "--lr", "1e-50"], 2, ["learning rate 1e-50 rounds to 0 in float32"]),
    ("weight-decay-nan", ["train", "--weight-decay", "nan"], 2, ["weight decay must be zero or positive"]),
    ("weight-decay-1e39-beyond-float32", ["train", "--weight-decay", "1e39"], 2, ["weight decay 1e+39 is too large"]),
    ("hidden-blank", ["train", "--hidden", " "], 2, ["hidden sizes must be positive whole numbers"]),
    ("hidden-trailing-comma", ["train", "--hidden", "30,"], 2, ["hidden sizes"]),
    ("hidden-zero-part", ["train", "--hidden", "30,0"], 2, ["hidden sizes"]),
    ("hidden-negative", ["train", "--hidden=-5"], 2, ["hidden sizes"]),
    ("hidden-float", ["train", "--hidden", "2.5"], 2, ["hidden sizes"]),
    ("hidden-superscript", ["train", "--hidden", "\u00b2"], 2, ["hidden sizes"]),
    ("hidden-2**63", ["train", "--hidden", BIG], 2, ["needs about", "GB of memory", "more than this machine's"]),
    ("hidden-second-layer-huge", ["train", "--hidden", "30,100000000"], 2, ["784-30-100000000-10 network needs about"]),
    ("epochs-zero", ["train", "--epochs", "0"], 2, ["epochs must be a whole number from 1 to 1,000, got 0"]),
    ("epochs-1001", ["train", "--epochs", "1001"], 2, ["epochs must be a whole number from 1 to 1,000"]),
    ("epochs-2**63", ["train", "--epochs", BIG], 2, ["epochs must be a whole number from 1 to 1,000", BIG]),
    ("batch-size-zero", ["train", "--batch-size", "0"], 2, ["batch size must be a whole number of at least 1"]),
    ("batch-size-above-training-set", ["train", "--batch-size", "5001"], 2, ["batch size 5,001 is larger than the 5,000 training images"]),
    ("batch-size-2**63", ["train", "--batch-size", BIG], 2, ["is larger than the 5,000 training images"]),
    ("seed-negative", ["train", "--seed=-1"], 2, ["seed must be a whole number from 0 to 9,223,372,036,854,775,807"]),
    ("seed-2**63", ["train", "--seed", BIG], 2, ["seed must be a whole number from 0 to", BIG]),
    ("dataset-unknown", ["train", "--dataset", "nope"], 2, ["unknown dataset 'nope'"]),
    ("jobs-zero", ["--jobs", "0", "run", "lr-sweep"], 2, ["--jobs must be at least 1, got 0"]),
    ("jobs-variable-abc", ["@env", runner.JOBS_ENV, "abc", "--tiny", "run", "lr-sweep"], 2,
     [f"${runner.JOBS_ENV} must be a whole number of worker processes, got 'abc'"]),
    ("jobs-variable-negative", ["@env", runner.JOBS_ENV, "-3", "--tiny", "run", "lr-sweep"], 2,
     [f"${runner.JOBS_ENV} must be at least 1, got -3"]),
    ("cache-is-a-file", ["--cache", "@file", "list"], 2, ["is a file, not a folder"]),
    ("cache-variable-under-no-such-user", ["@env", CACHE_ENV, "~nosuchuser/c", "list"], 2,
     [f"${CACHE_ENV} ~nosuchuser/c: no such user"]),
    ("cache-name-too-long", ["--cache", "x" * 300, "list"], 2, ["--cache", "File name too long"]),
    ("cache-under-a-file", ["--cache", "@file/cache", "train", "--epochs", "1"], 1,
     ["cannot write to the cache folder", "Not a directory"]),
    ("cache-in-read-only-sys", ["--cache", "/sys/mnist-scratch-cache", "train", "--epochs", "1"], 1,
     ["cannot write to the cache folder /sys/mnist-scratch-cache"]),
    ("out-is-a-file", ["--tiny", "figure", "sample-digits", "--out", "@file"], 2, ["--out", "is a file, not a folder"]),
    ("out-in-read-only-sys", ["--tiny", "figure", "sample-digits", "--out", "/sys/figures"], 1,
     ["cannot write to --out /sys/figures"]),
    ("out-under-no-such-user", ["--tiny", "figure", "sample-digits", "--out", "~nosuchuser/f"], 2, ["--out ~nosuchuser/f: no such user"]),
    ("data-under-no-such-user", ["--data", "~nosuchuser/mnist", "data"], 2, ["--data ~nosuchuser/mnist: no such user"]),
    ("data-name-too-long", ["--data", "d" * 300, "data"], 2, ["--data", "File name too long"]),
    ("data-variable-under-no-such-user", ["@env", data.DATA_ENV, "~nosuchuser/m", "data"], 2, [f"${data.DATA_ENV} ~nosuchuser/m"]),
    ("fastai-home-under-no-such-user", ["@env", "FASTAI_HOME", "~nosuchuser", "data"], 2, ["$FASTAI_HOME ~nosuchuser"]),
    ("fastai-home-is-a-file", ["@env", "FASTAI_HOME", "@file", "data"], 2,
     ["$FASTAI_HOME", "a-file is not a folder: fastai keeps MNIST in $FASTAI_HOME/data/mnist_png"]),
    ("jobs-variable-double-minus", ["@env", runner.JOBS_ENV, "--2", "--tiny", "run", "lr-sweep"], 2,
     [f"${runner.JOBS_ENV} must be a whole number of worker processes, got '--2'"]),
    ("jobs-variable-plus-minus", ["@env", runner.JOBS_ENV, "+-2", "--tiny", "run", "lr-sweep"], 2, ["got '+-2'"]),
    ("jobs-variable-exponent", ["@env", runner.JOBS_ENV, "1e3", "--tiny", "run", "lr-sweep"], 2, ["got '1e3'"]),
    ("jobs-variable-arabic-digit", ["@env", runner.JOBS_ENV, "\u0663", "--tiny", "run", "lr-sweep"], 2,
     ["must be a whole number"]),
    ("jobs-variable-two-numbers", ["@env", runner.JOBS_ENV, "2 2", "--tiny", "run", "lr-sweep"], 2, ["got '2 2'"]),
    ("cache-empty", ["--cache", "", "list"], 2, ["--cache is empty"]),
    ("cache-blank-after-the-command", ["train", "--cache", " "], 2, ["--cache is empty"]),
    ("data-empty", ["--data", "", "data"], 2, ["--data is empty"]),
    ("out-empty", ["--tiny", "figure", "sample-digits", "--out", ""], 2, ["--out is empty"]),
    ("cache-dangling-link-list", ["--cache", "@dangling", "list"], 2, ["is a link to", "nowhere, which does not exist"]),
    ("cache-dangling-link-train", ["--cache", "@dangling", "train", "--epochs", "1"], 2, ["nowhere, which does not exist"]),
    ("data-dangling-link", ["--data", "@dangling", "data"], 2, ["--data", "nowhere, which does not exist"]),
    ("tiny-train", ["--tiny", "train"], 2, ["--tiny does not apply to `train`"]),
    ("tiny-data", ["data", "--tiny"], 2, ["--tiny does not apply to `data`"]),
    ("tiny-report", ["--tiny", "report"], 2, ["--tiny does not apply to `report`", "run --tiny"]),
]


def _ids(cases):
    return [c[0] for c in cases]


@pytest.fixture(scope="module")
def bad_input_runs(tmp_path_factory) -> tuple[Path, dict]:
    """Every bad-input command, run a few at a time, against one empty cache (no data cached)."""
    root = tmp_path_factory.mktemp("bad-input")
    with ThreadPoolExecutor(4) as pool:
        done = dict(zip(_ids(BAD_INPUTS), pool.map(lambda c: cli(*c[1], cache=root), BAD_INPUTS)))
    return root, done


@pytest.mark.parametrize("case,args,code,expected", BAD_INPUTS, ids=_ids(BAD_INPUTS))
def test_bad_input_gives_one_line_message(bad_input_runs, case, args, code, expected):
    _, done = bad_input_runs
    p = done[case]
    check_one_line_error(p.stderr, p.stdout, p.returncode, code, expected)


def test_bad_input_computes_and_writes_nothing(bad_input_runs):
    root, _ = bad_input_runs
    assert sorted(p.name for p in root.iterdir()) == []  # no runs/, no data/, no figures/


@pytest.mark.parametrize("case,args,code,expected", BAD_INPUTS_IN_PROCESS, ids=_ids(BAD_INPUTS_IN_PROCESS))
def test_bad_input_gives_one_line_message_in_process(tmp_path, monkeypatch, capsys, case, args, code, expected):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv(CACHE_ENV, str(work / "cache"))
    monkeypatch.chdir(work)
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    places = {"@file": str(a_file), "@dangling": str(dangling)}
    args = [places[arg[:5]] + arg[5:] if arg[:5] in places else places.get(arg, arg) for arg in args]
    if args[0] == "@env":
        monkeypatch.setenv(args[1], args[2])
        args = args[3:]
    returncode, out, err = main_in_process(args, capsys)
    check_one_line_error(err, out, returncode, code, expected)
    assert list(work.iterdir()) == []  # nothing computed, no cache, no figure written


def test_jobs_above_the_core_count_are_capped_with_a_note(cache, monkeypatch, capsys):
    used = []

    def serial(todo, n_jobs, data_path, finish):  # the pool's size, then the runs in this process
        used.append(n_jobs)
        for group in todo:
            for cfg, result in zip(group, runner._work(group, data_path)):
                finish(cfg, result)

    monkeypatch.setattr(runner, "_parallel", serial)
    monkeypatch.setattr(runner, "_note_once", runner._note_once.__wrapped__)  # noted in every test
    code, out, err = main_in_process(["--tiny", "--jobs", "1000", "run", "lr-sweep"], capsys)
    assert code == 0, err
    assert used == [runner.cores()]
    assert f"note: --jobs 1000 lowered to {runner.cores()}, the number of cores" in err
    assert "Traceback" not in err


# --------------------------------------------------------------------------------------------------
# numbers a run produces that are not finite


def test_learning_rate_1e38_is_recorded_as_diverged(cache, capsys):
    code, out, err = main_in_process(["train", "--hidden", "none", "--lr", "1e38", "--epochs", "1"], capsys)
    assert code == 0, err
    assert "Traceback" not in err and "recorded as diverged" in err
    result = json.loads(out)
    assert result["diverged"] is True and result["final"] is None
    assert results.load(RunConfig(hidden=(), lr=1e38, epochs=1))["diverged"] is True


def test_weight_decay_1e38_is_recorded_as_diverged(cache, capsys):
    code, out, err = main_in_process(["train", "--hidden", "none", "--weight-decay", "1e38", "--epochs", "1"], capsys)
    assert code == 0, err
    assert json.loads(out)["diverged"] is True
    assert results.load(RunConfig(hidden=(), weight_decay=1e38, epochs=1))["diverged"] is True


@pytest.fixture
def overflowing_test_split(cache, monkeypatch) -> Splits:
    """The subset, with held-out images scaled by 1e20: a 784-1 regression's squared error on them
    overflows float32, while training and validation stay finite."""
    splits = data.load("subset")
    huge = Split(splits.test.x * 1e20, splits.test.y, splits.test.paths)
    splits = Splits(splits.train, splits.valid, huge)
    monkeypatch.setattr(runner, "_splits", lambda dataset, data_path: splits)
    return splits


def test_infinite_test_loss_is_stored_as_null_and_said(overflowing_test_split, capsys):
    args = ["train", "--hidden", "none", "--objective", "mse-digit", "--lr", "0.001", "--epochs", "1"]
    code, out, err = main_in_process(args, capsys)
    assert code == 0, err
    assert "Traceback" not in err
    final = json.loads(out)["final"]
    assert final["test"]["loss"] is None and 0 <= final["test"]["acc"] <= 1
    assert isinstance(final["valid"]["loss"], float)
    assert "note: the final test loss is infinite or NaN: stored as null" in err
    cached = results.load(RunConfig(hidden=(), objective="mse-digit", lr=0.001, epochs=1))
    assert cached["final"] == final  # saved like any other result


# --------------------------------------------------------------------------------------------------
# places that cannot be written after the check before the work


def test_result_that_cannot_be_cached_is_printed_with_a_note(cache, monkeypatch, capsys):
    def refuse(cfg, result):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(results, "save", refuse)
    code, out, err = main_in_process(["train", "--hidden", "none", "--epochs", "1"], capsys)
    assert code == 0, err
    assert json.loads(out)["final"]["valid"]["acc"] > 0.5  # the result, not lost
    assert "1 result(s) could not be cached (Permission denied)" in err
    assert "Traceback" not in err


def test_result_with_a_number_the_store_refuses_is_kept_with_a_note(cache, monkeypatch, capsys):
    """An infinity in a field training does not check (a future one, say): kept, noted, not cached."""
    real = runner._work
    monkeypatch.setattr(runner, "_work", lambda group, data_path, **kw: [{**r, "extra": float("inf")} for r in real(group, data_path)])
    (r,) = runner.run([SMALL], jobs=1)
    assert r["extra"] == float("inf") and r["final"]["valid"]["acc"] > 0
    assert "1 result(s) could not be cached (784-10 (lr 0.1, 1 epochs, seed 0): " in capsys.readouterr().err
    assert not results.exists(SMALL)  # not on disk
    assert results.load(SMALL)["extra"] == float("inf")  # but kept for the rest of this process
    results.forget()
    assert results.load(SMALL) is None


# --------------------------------------------------------------------------------------------------
# damaged entries in the result cache


def _nest(path: Path, other: Path) -> None:
    """A sealed entry (right magic, right checksum) whose JSON header is nested 100,000 deep."""
    write_entry_body(path, b"[" * 100_000 + b"]" * 100_000 + b"\n")


def write_entry_body(path: Path, body: bytes) -> None:
    path.write_bytes(results.MAGIC + store.sha256(body).encode() + b"\n" + body)


def _empty_folder(path: Path, other: Path) -> None:
    path.unlink()
    path.mkdir()


def _full_folder(path: Path, other: Path) -> None:
    path.unlink()
    (path / "inside").mkdir(parents=True)
    (path / "inside" / "file").write_text("{}")


def _data_of_another_folder(path: Path, other: Path) -> None:
    """This config's entry, sealed again, claiming images of another fingerprint."""
    magic, _, header, arrays = read_entry(path)
    header["data"] = "0" * 64
    write_entry(path, magic, None, header, arrays)


def _fifo(path: Path, other: Path) -> None:
    """A named pipe with no writer: opening it to read would wait for one forever."""
    path.unlink()
    os.mkfifo(path)


def _link_to_dev_zero(path: Path, other: Path) -> None:
    """Endless zeros: reading it whole would fill the memory."""
    path.unlink()
    path.symlink_to("/dev/zero")


def sparse_file(path: Path, size: int) -> None:
    """A regular file of `size` bytes that takes no disk space (zeros never written)."""
    with open(path, "wb") as f:
        f.truncate(size)


def _huge_sparse_file(path: Path, other: Path) -> None:
    """A regular file of 300 MB, beyond any entry's size."""
    sparse_file(path, 300 << 20)


def _link_loop(path: Path, other: Path) -> None:
    path.unlink()
    path.symlink_to(path)


def within(seconds: float, fn, *args):
    """`fn(*args)`, failing the test (instead of hanging it) if it takes longer than `seconds`."""
    box = []
    worker = threading.Thread(target=lambda: box.append(fn(*args)), daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"{fn.__name__} hung"
    return box[0]


@pytest.mark.parametrize("damage", [_nest, _empty_folder, _full_folder, _data_of_another_folder, _fifo,
                                    _link_to_dev_zero, _huge_sparse_file, _link_loop],
                         ids=["nested-100000-deep", "empty-folder", "folder-with-files", "entry-of-other-data",
                              "fifo", "link-to-dev-zero", "huge-sparse-file", "link-loop"])
def test_damaged_run_entry_is_recomputed_and_cached(cache, calls, damage):
    other = RunConfig(hidden=(), epochs=1, max_train=200, seed=1)
    first, _ = runner.run([SMALL, other], jobs=1)
    path = results.entry_path(SMALL)
    damage(path, results.entry_path(other))
    results.forget()  # as a fresh process would: this one read the entry intact
    assert within(30, results.load, SMALL) is None and results.exists(SMALL)

    (again,) = runner.run([SMALL], jobs=1)
    assert calls.count(SMALL) == 2
    assert without_seconds(again) == without_seconds(first)
    assert path.is_file() and results.load(SMALL) == again
    assert results.load(other) is not None


# --------------------------------------------------------------------------------------------------
# damaged or incomplete MNIST folders


def mnist_copy(tmp_path: Path, real: Path) -> Path:
    """A copy of mnist_png made of links to the real digit folders (cheap, and as good as a copy)."""
    root = tmp_path / "mnist_png"
    for folder in provenance.FOLDERS:
        (root / folder).parent.mkdir(parents=True, exist_ok=True)
        (root / folder).symlink_to(real / folder, target_is_directory=True)
    return root


def own(root: Path, folder: str) -> Path:
    """Make `folder` of a `mnist_copy` a real folder (of links to each image), free to be damaged."""
    real = (root / folder).resolve()
    (root / folder).unlink()
    (root / folder).mkdir()
    for f in os.scandir(real):
        (root / folder / f.name).symlink_to(f.path)
    return root / folder


def first_decoded(root: Path) -> Path:
    """The image a cold decode of the subset reads first (the first chosen training image), in a
    folder of its own."""
    if (root / "training" / "0").is_symlink():
        own(root, "training/0")
    return data.select(root)["train"][0]


def _replace(path: Path, write) -> None:
    path.unlink()
    write(path)


def _no_digit_folder(root):
    (root / "testing" / "7").unlink()
    return "testing/7/ is missing"


def _short_digit_folder(root):
    for f in sorted(os.listdir(own(root, "training/3")))[:131]:
        (root / "training" / "3" / f).unlink()
    return "training/3/ holds 6,000 of its 6,131 images"


def _truncated_png(root):
    path = first_decoded(root)
    raw = path.read_bytes()
    _replace(path, lambda p: p.write_bytes(raw[: len(raw) // 2]))
    return f"cannot read the MNIST image {path}"


def _png_32x32(root):
    path = first_decoded(root)
    _replace(path, lambda p: Image.new("L", (32, 32)).save(p))
    return f"the MNIST image {path} is 32x32 pixels, not 28x28"


def _empty_png(root):
    path = first_decoded(root)
    _replace(path, lambda p: p.write_bytes(b""))
    return f"cannot read the MNIST image {path}"


def _text_named_png(root):
    path = first_decoded(root)
    _replace(path, lambda p: p.write_text("not an image"))
    return f"cannot read the MNIST image {path}"


def _folder_named_png(root):
    (own(root, "training/0") / "123456.png").mkdir()
    return f"{root}/training/0/123456.png is not an image file"


def _fifo_named_png(root):
    os.mkfifo(own(root, "training/0") / "123456.png")
    return f"{root}/training/0/123456.png is not an image file"


def _png_linked_to_dev_zero(root):
    path = first_decoded(root)
    _replace(path, lambda p: p.symlink_to("/dev/zero"))
    return f"{path} is not an image file"


def _png_of_300_mb(root):
    path = first_decoded(root)
    _replace(path, lambda p: sparse_file(p, 300 << 20))
    return f"cannot read the MNIST image {path}: larger than 1,048,576 bytes"


def _digit_folder_linked_to_another_digit(root):
    (root / "training" / "7").unlink()
    (root / "training" / "7").symlink_to(root / "training" / "1", target_is_directory=True)
    return f"training/7/ in {root} is a link to {(root / 'training' / '1').resolve()}, another digit's folder"


def _two_digit_folders_are_one(root):
    real = (root / "training" / "7").resolve()
    (root / "testing" / "7").unlink()
    (root / "testing" / "7").symlink_to(real, target_is_directory=True)
    return f"training/7/ and testing/7/ in {root} are the same folder ({real})"


def _swapped_digit_folders(root):
    three, five = (root / "testing" / "3").resolve(), (root / "testing" / "5").resolve()
    for link in (root / "testing" / "3", root / "testing" / "5"):
        link.unlink()
    shutil.copytree(five, root / "testing" / "3", copy_function=os.symlink)  # real folders, renamed
    shutil.copytree(three, root / "testing" / "5", copy_function=os.symlink)
    return (f"MNIST in {root} is not as MNIST is published: testing/3/ and testing/5/ are swapped (testing/3/ holds "
            f"the 892 images of MNIST's testing/5/, and testing/5/ the 1,010 of testing/3/)")


def _index_in_two_folders(root):
    """training/5 gains an image of training/0 (same name) and loses one of its own: the counts hold."""
    moved = sorted(os.listdir(own(root, "training/0")))[0]
    five = own(root, "training/5")
    os.unlink(five / sorted(os.listdir(five))[0])
    os.symlink(os.readlink(root / "training" / "0" / moved), five / moved)
    return f"the MNIST index {moved[:-4]} is in training/0/ and in training/5/"


def _index_beyond_mnist(root):
    three = own(root, "training/3")
    name = sorted(os.listdir(three))[0]
    os.rename(three / name, three / "60000.png")
    return "training/3/60000.png: MNIST numbers its training images 0 to 59,999"


def _extra_image(root):
    three = own(root, "training/3")
    os.symlink(os.readlink(three / sorted(os.listdir(three))[0]), three / "60000.png")
    return "training/3/ holds 6,132 images, 1 more than MNIST's 6,131"


def _one_image_twice(root):
    """An image's content copied over another (its index and the counts intact): a file-level mislabel."""
    zero = own(root, "training/0")
    first, second = sorted(os.listdir(zero))[:2]
    os.unlink(zero / second)
    os.symlink(os.readlink(zero / first), zero / second)
    return f"training/0/{first} and training/0/{second} in {root} are the same image"


def _non_numeric_png_name(root):
    shutil.copy(first_decoded(root), root / "training" / "0" / "abc.png")
    return f"unexpected file {root}/training/0/abc.png: MNIST images are named by their index"


def _dangling_link(root):
    (own(root, "training/0") / "999999.png").symlink_to(root / "nowhere.png")
    return f"cannot read the MNIST image {root}/training/0/999999.png: No such file or directory"


def _unreadable_png(root):
    """Not readable by this user: chmod 000, or, for root (who reads anyway), a refusal to open."""
    path = first_decoded(root)
    shutil.copy(path.resolve(), path.with_suffix(".tmp"))
    path.unlink()
    path.with_suffix(".tmp").rename(path)
    path.chmod(0)
    return f"cannot read the MNIST image {path}: Permission denied"


def _refuse_to_open(monkeypatch, unreadable: Path) -> None:
    """For root, who reads any file: opening `unreadable` fails as it would for anyone else."""
    import PIL.Image

    real_open = PIL.Image.open

    def refuse(fp, *args, **kwargs):
        if Path(fp) == unreadable:
            raise PermissionError(13, "Permission denied", str(fp))
        return real_open(fp, *args, **kwargs)

    monkeypatch.setattr(PIL.Image, "open", refuse)


@pytest.mark.parametrize(
    "damage",
    [_no_digit_folder, _short_digit_folder, _folder_named_png, _fifo_named_png, _png_linked_to_dev_zero,
     _png_of_300_mb, _non_numeric_png_name, _dangling_link, _truncated_png, _digit_folder_linked_to_another_digit,
     _two_digit_folders_are_one, _swapped_digit_folders, _index_in_two_folders, _index_beyond_mnist, _extra_image,
     _one_image_twice],
    ids=lambda f: f.__name__.strip("_").replace("_", "-"),
)
def test_damaged_mnist_folder_gives_one_line_error(mnist, tmp_path, monkeypatch, capsys, damage):
    root = mnist_copy(tmp_path, mnist)
    expected = damage(root)
    monkeypatch.setattr(data, "tqdm", lambda items, **kwargs: items)  # no progress bar: only the message
    cache_root = tmp_path / "cache"
    code, out, err = within(120, main_in_process, ["--cache", str(cache_root), "--data", str(root), "data"], capsys)
    check_one_line_error(err, out, code, 1, [expected])
    assert not list(cache_root.glob("data/*.npz"))  # nothing decoded from it is cached


@pytest.mark.parametrize("damage", [_png_32x32, _empty_png, _text_named_png, _unreadable_png],
                         ids=lambda f: f.__name__.strip("_").replace("_", "-"))
def test_damaged_mnist_image_is_named_in_a_one_line_error(mnist, tmp_path, monkeypatch, damage):
    """As above, decoding a few images (one per folder, the damaged one first) instead of 15,000."""
    root = mnist_copy(tmp_path, mnist)
    expected = damage(root)
    if damage is _unreadable_png and os.geteuid() == 0:
        _refuse_to_open(monkeypatch, first_decoded(root))
    some = {split: [next(iter(data._listing(root / split / str(d)))) for d in range(10)] for split in ("training", "testing")}
    with pytest.raises(data.UserError) as e:
        data.decode({"train": [first_decoded(root), *some["training"][1:]], "valid": some["testing"]})
    assert expected in str(e.value) and "\n" not in str(e.value) and e.value.exit_code == 1


# --------------------------------------------------------------------------------------------------
# where the data came from


@pytest.fixture
def own_cache(tmp_path, monkeypatch, data_dir, subset_ready) -> Path:
    """A cache root with its own copy of the decoded subset, free to be rewritten or damaged."""
    root = tmp_path / "own-cache"
    (root / "data").mkdir(parents=True)
    for split in ("train", "valid", "test"):
        shutil.copy(data_dir / data.cache_file(split).name, root / "data")
    monkeypatch.setenv(CACHE_ENV, str(root))
    return root


def test_image_cache_and_run_keys_follow_a_changed_data_folder(mnist, own_cache, calls, tmp_path, monkeypatch):
    """A copy of MNIST with one image re-encoded (same pixels, another size): a new decode, new keys."""
    monkeypatch.setenv(data.DATA_ENV, str(mnist))
    real = mnist
    (before,) = runner.run([SMALL], jobs=1)
    key = results.run_key(SMALL)
    copy = mnist_copy(tmp_path, real)
    path = first_decoded(copy)
    size = path.stat().st_size
    with Image.open(path) as img:
        pixels = img.copy()
    _replace(path, lambda p: pixels.save(p, compress_level=0))
    assert path.stat().st_size != size

    monkeypatch.setenv(data.DATA_ENV, str(copy))
    assert data.version("subset") != provenance.fingerprint(real)
    assert results.run_key(SMALL) != key and results.load(SMALL) is None
    (after,) = runner.run([SMALL], jobs=1)
    assert calls == [SMALL, SMALL]  # trained again, on the new data
    assert without_seconds(after) == without_seconds(before)  # the same pixels, so the same numbers
    assert data._read(data.cache_file("train"), "train")[3] == provenance.fingerprint(copy)  # decoded again

    monkeypatch.setenv(data.DATA_ENV, str(real))  # back to the original folder: its runs are still there
    assert results.run_key(SMALL) == key and results.load(SMALL) is not None


def test_image_cache_of_another_split_copied_over_is_not_trusted(own_cache):
    valid = data.cache_file("valid")
    assert data._read(valid, "valid") is not None
    shutil.copy(data.cache_file("test"), valid)
    assert data._read(valid, "valid") is None
    assert data.load_split("valid").paths == data.load_split("valid").paths  # decoded again, then read
    assert data._read(valid, "valid") is not None


@pytest.mark.parametrize("damage", ["fifo", "link-to-dev-zero", "huge-sparse-file"])
def test_image_cache_file_that_is_no_regular_file_reads_as_missing(own_cache, damage):
    """Without waiting for a writer or reading endless zeros: then rebuilt as a folder would be (below)."""
    valid = data.cache_file("valid")
    valid.unlink()
    if damage == "fifo":
        os.mkfifo(valid)
    elif damage == "link-to-dev-zero":
        valid.symlink_to("/dev/zero")
    else:
        sparse_file(valid, provenance.MAX_ARRAYS + 1)
    assert within(30, data._read, valid, "valid") is None


def test_image_cache_file_that_is_a_folder_is_rebuilt(own_cache):
    valid = data.cache_file("valid")
    before = data.load_split("valid")
    valid.unlink()
    (valid / "inside").mkdir(parents=True)
    assert data._read(valid, "valid") is None
    again = data.load_split("valid")
    assert again.paths == before.paths and (again.x == before.x).all()
    assert valid.is_file() and data._read(valid, "valid") is not None


@pytest.mark.parametrize("change", ["labels-int32", "labels-2d", "labels-beyond-9", "pixels-783-columns",
                                    "pixels-float"])
def test_image_cache_with_arrays_of_the_wrong_type_or_shape_is_not_trusted(tmp_path, change):
    """Well-formed files with a matching checksum whose arrays could not come from a decode."""
    x = np.zeros((4, 784), np.uint8)
    y = np.array([0, 1, 2, 3], np.int64)
    files = np.array([f"training/{d}/1.png" for d in range(4)])
    file = tmp_path / "c.npz"
    data._write(file, "train", "f" * 64, x, y, files)
    assert data._read(file, "train") is not None
    x, y = {
        "labels-int32": (x, y.astype(np.int32)),
        "labels-2d": (x, y.reshape(4, 1)),
        "labels-beyond-9": (x, y + 7),
        "pixels-783-columns": (x[:, :783], y),
        "pixels-float": (x.astype(np.float32), y),
    }[change]
    data._write(file, "train", "f" * 64, x, y, files)
    assert data._read(file, "train") is None


@pytest.mark.parametrize("damage", ["garbage", "truncated", "fifo", "link-to-dev-zero", "folder"])
def test_damaged_fingerprint_memo_is_ignored(mnist, tmp_path, monkeypatch, damage):
    """The real MNIST's memo, damaged: the fingerprint is found again from the images themselves."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    right = provenance.recheck(mnist)
    memo = provenance._memo_file(os.path.abspath(mnist))
    if damage == "garbage":
        memo.write_bytes(os.urandom(4096))
    elif damage == "truncated":
        memo.write_bytes(memo.read_bytes()[: memo.stat().st_size // 2])
    else:
        memo.unlink()
        {"fifo": lambda: os.mkfifo(memo), "link-to-dev-zero": lambda: memo.symlink_to("/dev/zero"),
         "folder": lambda: memo.mkdir()}[damage]()
    assert provenance._read_memo(os.path.abspath(mnist)) is None
    assert within(120, provenance.recheck, mnist) == right


@pytest.mark.parametrize("folder", ["in-fastais-default-place", "nowhere"])
def test_warm_load_imports_no_fastai_wherever_the_data_folder_is(mnist, cache, tmp_path, folder):
    """With the images cached, a warm load and a run key need no fastai: the data folder is found
    (and fingerprinted) without it, or, when it is nowhere, the cache's own record is used."""
    home = tmp_path / "fastai-home"
    (home / "data").mkdir(parents=True)
    if folder != "nowhere":
        (home / "data" / "mnist_png").symlink_to(mnist, target_is_directory=True)
    script = ("import sys; from mnist_scratch import data, results; from mnist_scratch.train import RunConfig; "
              "s = data.load('subset'); results.run_key(RunConfig()); "
              "assert 'fastai' not in sys.modules, 'fastai imported'; print(len(s.train), data.version())")
    env = {**env_for(cache), "FASTAI_HOME": str(home)}
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["5000", data._read(data.cache_file("train"), "train")[3]]


# --------------------------------------------------------------------------------------------------
# Ctrl-C and a killed parent


BUILD = ["lr-sweep", "hidden-size", "weight-decay", "bias"]  # tiny: 4 runs, then a dozen more


def as_in_a_terminal() -> None:
    """A child's Ctrl-C as in a terminal's foreground job: SIGINT at its default, which Python turns
    into KeyboardInterrupt. (A test suite started in the background, `... &` in a script, would
    otherwise pass SIGINT down ignored, and Python keeps an ignored SIGINT ignored.)"""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_slow_build(root: Path, seconds: float, start: float = 0.0) -> subprocess.Popen:
    """`--tiny --jobs 2 run BUILD`, each run `seconds` slower and each worker `start` seconds slower
    to start, in a process group of its own."""
    env = {**env_for(root), "SLOW_RUN_SECONDS": str(seconds), "SLOW_START_SECONDS": str(start), "TQDM_DISABLE": "1"}
    return subprocess.Popen(
        [sys.executable, str(SLOW_CLI), "--tiny", "--jobs", "2", "run", *BUILD],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=root, start_new_session=True,
        preexec_fn=as_in_a_terminal,
    )


def wait_for_entries(root: Path, n: int, timeout: float = 120) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [f for f in runs_dir_listing(root) if f.endswith(results.SUFFIX)]
        if len(done) >= n:
            return done
        time.sleep(0.05)
    raise AssertionError(f"fewer than {n} runs finished in {timeout} s")


def wait_for_workers(pgid: int, n: int = 1, besides: list[int] = (), timeout: float = 120) -> list[int]:
    """The worker processes of the build whose process group is `pgid`, once there are `n` but `besides`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = []
        for pid in group_members(pgid):
            try:
                if pid != pgid and pid not in besides and b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    found.append(pid)
            except OSError:  # gone meanwhile
                pass
        if len(found) >= n:
            return found
        time.sleep(0.05)
    raise AssertionError(f"fewer than {n} new worker processes in {timeout} s")


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of the process group `pgid`."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            found.append(int(entry))
    return found


def wait_until_gone(pgid: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not group_members(pgid), "processes of the build outlived it"


def _interrupt_message(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("mnist-scratch: interrupted; "), stderr
    return lines[0]


def build_configs() -> list[RunConfig]:
    return list(dict.fromkeys(c for name in BUILD for c in configs(name, tiny=True, cached_only=True) or []))


@pytest.mark.slow
def test_ctrl_c_during_parallel_build_keeps_every_finished_run_and_the_rerun_computes_only_the_rest(
        tmp_path, data_dir, subset_ready, monkeypatch):
    root = new_cache(tmp_path / "cache", data_dir)
    monkeypatch.setenv(CACHE_ENV, str(root))
    first = configs("lr-sweep", tiny=True)
    build = start_slow_build(root, 1.0)
    wait_for_entries(root, len(first))
    planned = build_configs()  # the sweep is cached: the rest of the build is known
    before = wait_for_entries(root, len(first) + 2)
    signalled = time.monotonic()
    os.killpg(build.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole process group
    _, stderr = build.communicate(timeout=30)
    stopped = time.monotonic() - signalled
    assert build.returncode == 130, stderr
    assert stopped < runner.GRACE + 3, stopped
    kept = {f: (root / "runs" / f).stat().st_mtime_ns for f in runs_dir_listing(root)}
    assert all(f.endswith(results.SUFFIX) for f in kept)  # no temporary file left
    assert set(before) <= set(kept)
    assert len(before) < len(kept) < len(planned)  # runs finishing while stopping are kept; the rest cancelled
    message = _interrupt_message(stderr)
    assert f"{len(kept) - len(first)} of the {len(planned) - len(first)} runs to compute finished and are cached" in message
    wait_until_gone(build.pid)

    p = cli("--tiny", "--jobs", "2", "run", *BUILD, cache=root)
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
    after = {f: (root / "runs" / f).stat().st_mtime_ns for f in runs_dir_listing(root)}
    assert set(after) == {results.entry_path(c).name for c in planned}
    assert {f: after[f] for f in kept} == kept  # nothing finished was computed (or written) again
    assert all(results.load(c) is not None for c in planned)


@pytest.mark.slow
def test_second_ctrl_c_ends_the_build_at_once(tmp_path, data_dir, subset_ready, monkeypatch):
    root = new_cache(tmp_path / "cache", data_dir)
    monkeypatch.setenv(CACHE_ENV, str(root))
    build = start_slow_build(root, 5.0)
    wait_for_entries(root, 1)
    os.killpg(build.pid, signal.SIGINT)
    time.sleep(0.3)
    signalled = time.monotonic()
    os.killpg(build.pid, signal.SIGINT)
    message = build.stderr.readline()  # the one line, once the build has stopped
    assert time.monotonic() - signalled < runner.GRACE - 0.3  # sooner than the first Ctrl-C's wait
    _, rest = build.communicate(timeout=30)  # then the interpreter exits: no hang
    assert build.returncode == 130
    _interrupt_message(message + rest)
    wait_until_gone(build.pid)
    done = {results.entry_path(c).name for c in configs("lr-sweep", tiny=True) if results.load(c) is not None}
    assert done == set(runs_dir_listing(root))  # every file is a whole, valid entry


@pytest.mark.slow
def test_killed_parent_takes_its_workers_with_it(tmp_path, data_dir, subset_ready):
    root = new_cache(tmp_path / "cache", data_dir)
    build = start_slow_build(root, 600.0)
    deadline = time.monotonic() + 120
    while len(group_members(build.pid)) < 3 and time.monotonic() < deadline:  # the parent and 2 workers
        time.sleep(0.1)
    time.sleep(1)  # the workers are in their runs
    workers = [pid for pid in group_members(build.pid) if pid != build.pid]
    assert len(workers) >= 2
    os.kill(build.pid, signal.SIGKILL)  # as the out-of-memory killer would
    build.communicate(timeout=30)
    wait_until_gone(build.pid)


@pytest.mark.slow
def test_worker_killed_as_by_the_oom_killer_is_a_one_line_error_that_keeps_finished_runs(
        tmp_path, data_dir, subset_ready, monkeypatch):
    root = new_cache(tmp_path / "cache", data_dir)
    monkeypatch.setenv(CACHE_ENV, str(root))
    build = start_slow_build(root, 2.0)
    first = wait_for_workers(build.pid, 2)  # the first stage's pool (the lr sweep: 4 runs in 2 groups)
    finished = set(wait_for_entries(root, 4))  # whole entries (not one being written)
    worker = wait_for_workers(build.pid, besides=first)[0]  # the next stage's: it has a group to train
    os.kill(worker, signal.SIGKILL)
    _, stderr = build.communicate(timeout=60)
    assert build.returncode == 1
    assert "Traceback" not in stderr, stderr
    (message,) = [line for line in stderr.splitlines() if line.startswith("mnist-scratch:")]
    assert message.startswith("mnist-scratch: error: a worker process was killed by signal 9 (out of memory?) "
                              "while training 784-"), message
    assert finished <= set(runs_dir_listing(root))
    assert all(results.load(c) is not None for c in configs("lr-sweep", tiny=True)
               if results.entry_path(c).name in finished)
    wait_until_gone(build.pid)


def test_ctrl_c_during_a_lone_training_run_exits_130_in_one_line(tmp_path, data_dir, subset_ready):
    root = new_cache(tmp_path / "cache", data_dir)
    p = subprocess.Popen([sys.executable, "-m", "mnist_scratch", "train", "--epochs", "500"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env_for(root), cwd=root, start_new_session=True,
                         preexec_fn=as_in_a_terminal)
    seen = b""
    while b"/500 [" not in seen:  # the bar of its 500 epochs (half a minute or more): training has started
        chunk = p.stderr.read1(4096)
        assert chunk, f"training never started: {seen.decode()}"
        seen += chunk
    os.killpg(p.pid, signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 130 and out == b""
    stderr = (seen + err).decode()
    assert "Traceback" not in stderr, stderr
    messages = [line for line in stderr.splitlines() if line.startswith("mnist-scratch:")]
    assert messages == ["mnist-scratch: interrupted; 0 of the 1 runs to compute finished and are cached; "
                        "run the same command again to compute the other 1"], stderr


def test_common_options_work_before_and_after_the_command_name():
    parse = cli_module._parser().parse_args
    after = parse(["run", "baseline", "--jobs", "2", "--tiny", "--data", "d", "--cache", "c"])
    before = parse(["--jobs", "2", "--tiny", "--data", "d", "--cache", "c", "run", "baseline"])
    assert vars(after) == vars(before) and (after.jobs, after.tiny, after.data, after.cache) == (2, True, "d", "c")
    mixed = parse(["--jobs", "3", "figure", "--tiny", "lr-sweep"])  # an option given before is kept
    assert (mixed.jobs, mixed.tiny, mixed.data, mixed.names) == (3, True, None, ["lr-sweep"])
    assert (parse(["list"]).jobs, parse(["list"]).tiny) == (None, False)


# --------------------------------------------------------------------------------------------------
# the data on disk is what was trained on


def _real_file(path: Path) -> None:
    """Replace the link `path` (into the real MNIST, never to be written) by a copy of its own."""
    raw = path.read_bytes()
    path.unlink()
    path.write_bytes(raw)


def test_images_rewritten_in_place_are_trained_on_again(mnist, own_cache, calls, tmp_path, monkeypatch):
    """Two chosen training images of one size swap contents in place: same names, sizes, inodes and
    modification times. The next command sees other images, so another key: it decodes and trains again."""
    root = mnist_copy(tmp_path, mnist)
    monkeypatch.setenv(data.DATA_ENV, str(root))
    (before,) = runner.run([SMALL], jobs=1)
    key, train = results.run_key(SMALL), data.load_split("train")
    own(root, "training/6")
    by_size: dict[int, list[int]] = {}
    for i, name in enumerate(train.paths):
        if name.startswith("training/6/"):
            by_size.setdefault((root / name).stat().st_size, []).append(i)
    i, j = next(pair[:2] for pair in by_size.values() if len(pair) > 1)
    a, b = root / train.paths[i], root / train.paths[j]
    for path in (a, b):
        _real_file(path)
    stats = [p.stat() for p in (a, b)]
    contents = a.read_bytes(), b.read_bytes()
    for path, content, st in zip((a, b), reversed(contents), stats):
        with open(path, "r+b") as f:
            f.write(content)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert [(p.stat().st_ino, p.stat().st_size, p.stat().st_mtime_ns) for p in (a, b)] == [
        (st.st_ino, st.st_size, st.st_mtime_ns) for st in stats]

    data.forget()  # the next command
    results.forget()
    assert results.run_key(SMALL) != key and results.load(SMALL) is None
    runner.run([SMALL], jobs=1)
    assert calls == [SMALL, SMALL]  # trained again, on the images now on disk
    again = data.load_split("train")
    assert torch.equal(again.x[i], train.x[j]) and torch.equal(again.x[j], train.x[i])
    assert data._read(data.cache_file("train"), "train")[3] == data.version("subset")


def test_list_with_entries_that_are_a_fifo_and_dev_zero_says_they_are_damaged(tmp_path, data_dir, subset_ready):
    """`list` never hangs on a run entry it cannot read; it counts it as damaged, in the experiment and
    in those that wait for it, and `run` recomputes it."""
    root = new_cache(tmp_path / "cache", data_dir)
    p = cli("--tiny", "--jobs", "1", "run", "lr-sweep", cache=root)
    assert p.returncode == 0, p.stderr
    sweep = sorted(root.joinpath("runs").iterdir())
    n = len(sweep)
    _fifo(sweep[0], sweep[1])
    _link_to_dev_zero(sweep[1], sweep[0])
    p = cli("--tiny", "list", cache=root, timeout=120)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    states = {line.split(None, 1)[0]: line.split(None, 1)[1] for line in p.stdout.splitlines()}
    assert states["lr-sweep"].startswith(f"{n - 2}/{n} runs cached, 2 damaged (`run` recomputes them)")
    assert states["baseline"].startswith("waiting for lr-sweep (2 damaged runs)")
    assert states["mse-robustness"].startswith("waiting for mse-regression ")  # two steps away: not its own
    p = cli("--tiny", "--jobs", "1", "run", "lr-sweep", cache=root, timeout=300)
    assert p.returncode == 0, p.stderr
    assert all(f.is_file() and not f.is_symlink() for f in sweep)


# --------------------------------------------------------------------------------------------------
# memory the process may use, and libraries that cannot load


def _vm_size_with_torch() -> int:
    """Bytes of address space a process maps once it has imported what the command line imports."""
    probe = ("import torch, numpy; from mnist_scratch import runner; "
             "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmSize:')))")
    p = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    return int(p.stdout) * 1024


def _address_space(limit: int):
    def preexec():
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    return preexec


def test_torch_that_cannot_be_mapped_under_ulimit_v_is_a_one_line_error(tmp_path):
    limit = _vm_size_with_torch() // 2
    p = subprocess.run([sys.executable, "-m", "mnist_scratch", "list"], capture_output=True, text=True, timeout=300,
                       env=env_for(tmp_path), cwd=tmp_path, preexec_fn=_address_space(limit))
    check_one_line_error(p.stderr, p.stdout, p.returncode, 1, ["error: cannot load torch (", f"ulimit -v {limit // 1024})"])


def test_network_larger_than_the_address_space_left_is_refused_before_work(tmp_path):
    limit = _vm_size_with_torch() + (1 << 30)  # about 1 GB left; the network needs 1.5 GB
    p = subprocess.run([sys.executable, "-m", "mnist_scratch", "train", "--hidden", "20000", "--epochs", "1"],
                       capture_output=True, text=True, timeout=300, env=env_for(tmp_path), cwd=tmp_path,
                       preexec_fn=_address_space(limit))
    check_one_line_error(p.stderr, p.stdout, p.returncode, 2, [
        "a 784-20000-10 network needs about 1.5 GB of memory to train, more than the",
        f"of address space left to this process (ulimit -v {limit // 1024}, of which it maps"])
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("layout", ["v2", "v1"])
def test_memory_limit_of_the_control_group_bounds_a_run(tmp_path, monkeypatch, layout):
    """A fake /sys/fs/cgroup: the least limit along the process's group path counts ("max" and v1's
    near-2**63 mean none)."""
    from mnist_scratch import memory

    groups = tmp_path / "cgroup"
    if layout == "v2":
        own_line, base, name = "0::/jobs/this", groups, "memory.max"
        limits = {"jobs/this": "max", "jobs": "1000000000", "": "max"}
    else:
        own_line, base, name = "4:memory:/jobs/this", groups / "memory", "memory.limit_in_bytes"
        limits = {"jobs/this": "9223372036854771712", "jobs": "1000000000", "": "9223372036854771712"}
    for where, value in limits.items():
        (base / where).mkdir(parents=True, exist_ok=True)
        (base / where / name).write_text(value + "\n")
    (tmp_path / "self-cgroup").write_text(f"9:pids:/\n{own_line}\n")
    monkeypatch.setattr(memory, "CGROUP", groups)
    monkeypatch.setattr(memory, "OWN_CGROUP", tmp_path / "self-cgroup")
    memory.cgroup_limit.cache_clear()
    try:
        assert memory.cgroup_limit() == 1_000_000_000
        RunConfig(hidden=(2000,))  # 0.2 GB: fits
        with pytest.raises(data.UserError, match=r"784-20000-10 network needs about 1.5 GB of memory to train, "
                                                 r"more than the 1.0 GB its control group may use"):
            RunConfig(hidden=(20000,))
    finally:
        memory.cgroup_limit.cache_clear()


def test_allocation_refused_while_training_is_a_one_line_error(cache, monkeypatch, capsys):
    """What torch raises when an allocation fails under `ulimit -v` (a RuntimeError, not MemoryError)."""
    def refuse(cfg, data_path, **kw):
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 4000000000 bytes. "
                           "Error code 12 (Cannot allocate memory)")

    monkeypatch.setattr(runner, "_work", refuse)
    monkeypatch.setattr(runner, "tqdm", functools.partial(runner.tqdm, disable=True))  # only the message
    code, out, err = main_in_process(["train", "--hidden", "none", "--epochs", "1"], capsys)
    check_one_line_error(err, out, code, 1, ["error: out of memory (try fewer --jobs, or smaller networks)"])


# --------------------------------------------------------------------------------------------------
# Ctrl-C while the workers start


@pytest.mark.slow
def test_ctrl_c_while_workers_start_exits_130_in_one_line_keeping_finished_runs(
        tmp_path, data_dir, subset_ready, monkeypatch):
    """Workers that take 6 s to start (as importing torch can): Ctrl-C reaches the whole process group
    while the second stage's workers are still starting."""
    root = new_cache(tmp_path / "cache", data_dir)
    monkeypatch.setenv(CACHE_ENV, str(root))
    first = configs("lr-sweep", tiny=True)
    build = start_slow_build(root, 0.0, start=6.0)
    wait_for_entries(root, len(first))
    earlier = set(group_members(build.pid))
    deadline = time.monotonic() + 60
    while len(set(group_members(build.pid)) - earlier) < 2:  # the next stage's two workers, starting
        assert time.monotonic() < deadline, "the second stage's workers never started"
        time.sleep(0.05)
    time.sleep(1.0)
    os.killpg(build.pid, signal.SIGINT)
    _, stderr = build.communicate(timeout=60)
    assert build.returncode == 130, stderr
    message = _interrupt_message(stderr)
    assert "0 of the" in message and "runs to compute finished and are cached" in message
    assert set(runs_dir_listing(root)) == {results.entry_path(c).name for c in first}  # the first stage, kept
    wait_until_gone(build.pid)


# --------------------------------------------------------------------------------------------------
# progress inside a Jupyter kernel (the report's execution)


def test_progress_inside_a_jupyter_kernel_is_off(cache):
    """tqdm's `auto` would draw a notebook widget there, which Quarto embeds with scripts from the web.
    A lone run shows its epochs' bar in a terminal; in a kernel, it shows nothing."""
    import nbformat
    from nbclient import NotebookClient

    source = ("from mnist_scratch import runner\nfrom mnist_scratch.train import RunConfig\n"
              "r, = runner.run([RunConfig(hidden=(30,), epochs=3, max_train=300)], jobs=1)\nprint(r['diverged'])")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    NotebookClient(nb, timeout=600, kernel_name="python3").execute()
    outputs = nb.cells[0].outputs
    assert [o.get("text") for o in outputs] == ["False\n"], outputs  # the print only: no bar, no widget
    assert results.load(RunConfig(hidden=(30,), epochs=3, max_train=300)) is not None  # it did train


# --------------------------------------------------------------------------------------------------
# no wasted work


def test_a_run_that_cannot_be_saved_is_trained_once_per_command(cache, calls, monkeypatch, capsys):
    """A full disk: the sweep's runs are not saved, yet the next stage reads them from memory."""
    def full(path, write):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(results, "atomic_write", full)
    experiments.build(["baseline"], tiny=True, jobs=1)
    assert len(calls) == len(set(calls))  # nothing trained twice
    assert set(calls) == set(configs("lr-sweep", tiny=True)) | set(configs("baseline", tiny=True))
    assert "could not be cached (No space left on device): they are used by this command only" in capsys.readouterr().err
    assert runs_dir_listing(cache) == []


def test_decoded_splits_that_cannot_be_cached_are_decoded_once_per_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    decoded = []
    real = data.decode
    monkeypatch.setattr(data, "decode", lambda splits: decoded.append(list(splits)) or real(splits))

    def refuse(path, write):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(data, "atomic_write", refuse)
    data.forget()
    try:
        splits = data.load("subset")
        assert (len(splits.train), len(splits.valid), len(splits.test)) == (5000, 5000, 5000)
        data.load("subset")
    finally:
        data.forget()
    assert decoded == [["train", "valid", "test"]]  # once, all three together
    assert capsys.readouterr().err.count("the decoded images could not be cached (No space left on device)") == 1
    assert not list((tmp_path / "cache" / "data").glob("*.npz"))


def test_force_recomputes_the_named_experiments_only(cache, calls, capsys):
    code, _, err = main_in_process(["--tiny", "--jobs", "1", "run", "baseline"], capsys)
    assert code == 0, err
    calls.clear()
    code, _, err = main_in_process(["--tiny", "--jobs", "1", "run", "--force", "baseline"], capsys)
    assert code == 0, err
    assert sorted(calls, key=repr) == sorted(configs("baseline", tiny=True), key=repr)  # not lr-sweep's
    help_text = subprocess.run([sys.executable, "-m", "mnist_scratch", "run", "--help"], capture_output=True,
                               text=True, timeout=120).stdout
    assert "recompute the named experiments' runs" in " ".join(help_text.split())


def test_a_figure_named_twice_is_drawn_once(tmp_path, monkeypatch, capsys):
    from mnist_scratch import figures

    drawn = []
    monkeypatch.setattr(figures, "save", lambda name, out, **kw: drawn.append(name) or [Path(out) / f"{name}.png"])
    args = ["figure", "sample-digits", "lr-sweep", "sample-digits", "sample-digits", "--out", str(tmp_path)]
    code, out, err = main_in_process(args, capsys)
    assert code == 0, err
    assert drawn == ["sample-digits", "lr-sweep"]
    assert out.split() == [str(tmp_path / "sample-digits.png"), str(tmp_path / "lr-sweep.png")]


def test_output_read_by_a_reader_that_went_away_ends_quietly(tmp_path):
    """`list | head -1`: the reader closes the pipe before `list` writes."""
    p = subprocess.Popen([sys.executable, "-m", "mnist_scratch", "list"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env_for(tmp_path), cwd=tmp_path)
    p.stdout.close()
    _, err = p.communicate(timeout=300)
    assert err == b"" and p.returncode == 141  # as if killed by SIGPIPE, the shell's 128 + 13


def test_fastai_home_that_is_a_file_is_one_line_without_warnings(tmp_path):
    """No other MNIST: fastai's folder would be wanted, and $FASTAI_HOME is a file. Nor does fastai's
    import print torch's FutureWarning."""
    home = tmp_path / "fastai-home"
    home.write_text("not a folder")
    env = {**env_for(tmp_path / "cache"), "FASTAI_HOME": str(home)}
    env.pop(data.DATA_ENV, None)
    p = subprocess.run([sys.executable, "-m", "mnist_scratch", "data"], capture_output=True, text=True,
                       env=env, cwd=tmp_path, timeout=300)
    check_one_line_error(p.stderr, p.stdout, p.returncode, 2, [f"$FASTAI_HOME {home} is not a folder"])


# --------------------------------------------------------------------------------------------------
# every file written atomically: a failed write leaves the old file


@pytest.fixture
def disk_full_at_flush(monkeypatch):
    """From now on a written file fails when flushed to disk (`os.fsync`), as a full disk can."""
    def full(fd):
        raise OSError(28, "No space left on device")

    return lambda: monkeypatch.setattr(os, "fsync", full)


def _notebook_with_figure(folder: Path) -> Path:
    import base64

    cell = {"cell_type": "code", "source": ['draw("sample-digits")'], "outputs": [{"data": {
        "image/svg+xml": ["<svg>" + "x" * 5000 + "</svg>"],
        "image/png": base64.b64encode(os.urandom(5000)).decode()}}]}
    path = folder.parent.parent / "report.ipynb"  # beside the cache: only the figures are compared
    path.write_text(json.dumps({"cells": [cell]}))
    return path


def _write_figure(folder: Path) -> None:
    from mnist_scratch.figures import save

    save("sample-digits", folder / "figures")


def _write_notebook_figures(folder: Path) -> None:
    from mnist_scratch.render import notebook_figures

    notebook_figures(_notebook_with_figure(folder), folder / "figures")


def _write_decoded_arrays(folder: Path) -> None:
    x = np.random.default_rng().integers(0, 256, (100, 784), dtype=np.uint8)
    data._write(folder / "mnist-train.npz", "train", "f" * 64, x, np.zeros(100, np.int64), np.array(["a.png"] * 100))


def _write_run_entry(folder: Path) -> None:
    results.save(SMALL, {"seconds": time.perf_counter(), "history": {"loss": list(np.random.default_rng().random(50))}})


def _write_fingerprint_memo(folder: Path) -> None:
    os.environ[CACHE_ENV] = str(folder / "cache")  # (the environment is restored after the test)
    memo = provenance._Memo(time.time_ns(), ["a.png"], np.zeros((1, 5), np.int64),
                            np.random.default_rng().integers(0, 256, (1, 32), dtype=np.uint8), "f" * 64)
    provenance._write_memo(str(folder / "mnist_png"), memo)


@pytest.mark.parametrize("writer", [_write_figure, _write_notebook_figures, _write_decoded_arrays, _write_run_entry,
                                    _write_fingerprint_memo],
                         ids=lambda f: f.__name__[len("_write_"):].replace("_", "-"))
def test_a_write_that_fails_leaves_the_previous_file_whole(cache, disk_full_at_flush, writer):
    folder = cache / "written"
    folder.mkdir()
    writer(folder)

    def files():
        return {p: p.read_bytes() for p in sorted(cache.rglob("*")) if p.is_file()}  # (data/, a link: not followed)

    before = files()
    assert before, "the writer wrote nothing"
    disk_full_at_flush()
    try:
        writer(folder)
    except OSError as e:
        assert e.strerror == "No space left on device" and e.filename  # says which file
        assert writer is not _write_fingerprint_memo  # a memo only: its failure is silent
    else:
        assert writer is _write_fingerprint_memo
    assert files() == before  # nothing half-written, nothing left over


def test_figure_on_a_full_disk_is_one_line_and_keeps_the_old_figure(cache, tmp_path):
    """A real limit (RLIMIT_FSIZE, like a disk with 20 KB left): the new PNG cannot be written whole."""
    out = tmp_path / "figures"
    out.mkdir()
    old = {out / "sample-digits.png": b"the old png", out / "sample-digits.svg": b"<svg>the old svg</svg>"}
    for path, content in old.items():
        path.write_bytes(content)

    def limited():
        import resource

        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    p = subprocess.run([sys.executable, "-m", "mnist_scratch", "figure", "sample-digits", "--out", str(out)],
                       capture_output=True, text=True, env=env_for(cache), cwd=tmp_path, timeout=300, preexec_fn=limited)
    check_one_line_error(p.stderr, p.stdout, p.returncode, 1, [f"error: File too large: {out}/sample-digits.png"])
    assert {path: path.read_bytes() for path in sorted(out.iterdir())} == old


# --------------------------------------------------------------------------------------------------
# inside `quarto render` (the project's own command): marked `render`


def _quarto_render(quarto: str, out: Path, cache_root: Path) -> subprocess.CompletedProcess:
    env = {**env_for(cache_root), "QUARTO_PYTHON": sys.executable}
    return subprocess.run([quarto, "render", "report.qmd", "--to", "html", "--output-dir", str(out)],
                          cwd=store.PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=3600)


@pytest.mark.render
def test_quarto_render_with_a_read_only_cache_ends_in_the_one_line_message(quarto, mnist, tmp_path):
    """/sys is read-only even for root. Every result is missing, so the first cell would compute."""
    done = _quarto_render(quarto, tmp_path / "site", Path("/sys/mnist-scratch-cache"))
    log = done.stdout + done.stderr
    assert done.returncode != 0
    assert "mnist-scratch: error: cannot write to the cache folder /sys/mnist-scratch-cache: " in log, log[-3000:]
    assert "Traceback" not in log and 'File "' not in log and "\x1b[" not in log, log[-3000:]  # no (coloured) frames
    assert not (tmp_path / "site" / "report.html").exists()


def test_quarto_render_recomputing_a_damaged_entry_stays_self_contained(rendered, quarto, tmp_path, monkeypatch):
    """One entry truncated in a copy of the project's cache (warm: `rendered` built every result):
    `quarto render` recomputes it inside its Jupyter kernel, where no progress widget may be drawn;
    the HTML loads nothing."""
    from .test_render import Page
    from .test_render import test_html_loads_nothing_from_another_host_or_file as check_loads_nothing

    project = store.PROJECT_ROOT / ".cache"
    cfg = configs("lr-sweep")[0]  # logistic regression, the smallest rate and budget: the cheapest run
    entry = project / "runs" / results.entry_path(cfg).name
    root = tmp_path / "cache"
    shutil.copytree(project / "runs", root / "runs")
    (root / "data").symlink_to(project / "data", target_is_directory=True)
    damaged = root / "runs" / entry.name
    damaged.write_bytes(entry.read_bytes()[:1000])
    done = _quarto_render(quarto, tmp_path / "site", root)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    monkeypatch.setenv(CACHE_ENV, str(root))
    recomputed = results.load(cfg)  # from the copy ($MNIST_SCRATCH_CACHE)
    monkeypatch.setenv(CACHE_ENV, str(project.parent / ".cache"))
    assert recomputed is not None and without_seconds(recomputed) == without_seconds(results.load(cfg))
    html = tmp_path / "site" / "report.html"
    text = html.read_text()
    assert "Could not fetch resource" not in done.stderr
    for widget in ("jupyter-widgets", "application/vnd.jupyter.widget", "require.js", "run/s"):
        assert widget not in text, widget
    (html.parent / "report.pdf").touch()  # the PDF the page links, which `make` renders beside it
    check_loads_nothing(Page(html), {"html": html})
