"""Experiments, the result cache, the runner and the command line, end to end.

Every test that writes a cache gets its own cache root (`$MNIST_SCRATCH_CACHE` or `--cache`); the
decoded MNIST arrays are shared through a private, session-wide data folder, seeded from the
project's `.cache/data` when that exists (the project's cache itself is only ever read).
"""

import ast
import dataclasses
import io
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from mnist_scratch import data, experiments, results, runner, store
from mnist_scratch.errors import UserError
from mnist_scratch.experiments import CLASSIFIERS, EXPERIMENTS, LOGISTIC, TWO_LAYER, Context, choose, configs
from mnist_scratch.objectives import UNSHUFFLED
from mnist_scratch.train import RunConfig, train

from .conftest import need

CACHE_ENV = store.CACHE_ENV
PROJECT_DATA = store.PROJECT_ROOT / ".cache" / "data"
ERROR_PREFIX = "mnist-scratch: error:"

# A run that trains in a fraction of a second: logistic regression, one epoch on 200 images.
SMALL = RunConfig(hidden=(), epochs=1, max_train=200)


# --------------------------------------------------------------------------------------------------
# fixtures and helpers


@pytest.fixture(autouse=True)
def _private_cache_by_default(tmp_path_factory, monkeypatch):
    """Every test starts with an empty cache root of its own: none can touch the project's `.cache`."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path_factory.mktemp("default-cache")))


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """A private data cache folder, holding copies of the project's decoded arrays if it has them."""
    folder = tmp_path_factory.mktemp("mnist-data") / "data"
    folder.mkdir()
    if PROJECT_DATA.is_dir():
        for f in PROJECT_DATA.glob("mnist-*.npz"):
            shutil.copy(f, folder / f.name)
    return folder


def new_cache(root: Path, data_dir: Path) -> Path:
    """A fresh cache root whose `data/` is the shared data folder (runs/ is its own)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "data").symlink_to(data_dir, target_is_directory=True)
    return root


@pytest.fixture(scope="session")
def subset_ready(data_dir, tmp_path_factory) -> None:
    """Decode the subset into the shared data folder once (a no-op when it was copied)."""
    root = new_cache(tmp_path_factory.mktemp("warm"), data_dir)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(CACHE_ENV, str(root))
        try:
            data.load("subset")
        except UserError as e:  # neither decoded arrays nor the images
            need("MNIST", str(e))


@pytest.fixture
def cache(tmp_path, monkeypatch, data_dir, subset_ready) -> Path:
    """This test's own cache root, set in the environment."""
    root = new_cache(tmp_path / "cache", data_dir)
    monkeypatch.setenv(CACHE_ENV, str(root))
    return root


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory, data_dir, subset_ready) -> Path:
    """One cache shared by the tiny end-to-end tests, so lr-sweep is computed once."""
    return new_cache(tmp_path_factory.mktemp("tiny") / "cache", data_dir)


@pytest.fixture
def calls(monkeypatch) -> list[RunConfig]:
    """The configs this process trains through the runner, in order (runner._work still trains)."""
    seen: list[RunConfig] = []
    real = runner._work

    def counting(group, data_path, **kw):
        seen.extend(group)
        return real(group, data_path, **kw)

    monkeypatch.setattr(runner, "_work", counting)
    return seen


def forbid_training(monkeypatch) -> None:
    def boom(*args, **kwargs):
        raise AssertionError("trained although the result is cached")

    monkeypatch.setattr(runner, "_work", boom)
    monkeypatch.setattr(runner, "train_group", boom)


def env_for(cache_root: Path) -> dict:
    env = {**os.environ, CACHE_ENV: str(cache_root)}
    for var in ("MNIST_SCRATCH_JOBS", "TQDM_DISABLE"):
        env.pop(var, None)
    return env


def cli(*args: str, cache: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python -m mnist_scratch ARGS` in a subprocess, with `cache` as its cache root."""
    return subprocess.run(
        [sys.executable, "-m", "mnist_scratch", *args],
        capture_output=True,
        text=True,
        env=env_for(cache),
        cwd=cache,
        timeout=timeout,
    )


def without_seconds(result: dict) -> dict:
    return {k: v for k, v in result.items() if k != "seconds"}


def runs_dir_listing(root: Path) -> list[str]:
    runs = root / "runs"
    return sorted(os.listdir(runs)) if runs.is_dir() else []


# --------------------------------------------------------------------------------------------------
# determinism


DETERMINISM_SCRIPT = """
import json, sys
from mnist_scratch import data, results
from mnist_scratch.train import RunConfig, train
cfg = RunConfig(hidden=(30,), epochs=2, max_train=1000, seed=int(sys.argv[1]))
r = train(cfg, data.load("subset"))
print(json.dumps({"key": results.run_key(cfg), **{k: r[k] for k in ("history", "final", "valid_pred")}}))
"""


def test_training_is_deterministic_across_processes(cache):
    def spawn(seed):
        return subprocess.Popen(
            [sys.executable, "-c", DETERMINISM_SCRIPT, str(seed)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env_for(cache),
        )

    procs = [spawn(seed) for seed in (0, 0, 1)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        outs.append(json.loads(out))
    a, b, other = outs

    assert a["history"] == b["history"]  # exact equality, every float
    assert a == b
    assert len(a["history"]["valid_loss"]) == 3 and len(a["history"]["step_loss"]) == 2 * math.ceil(1000 / 16)

    assert other["history"] != a["history"]
    assert other["history"]["valid_loss"][0] != a["history"]["valid_loss"][0]  # another initialisation
    assert other["key"] != a["key"]

    # and the same numbers in this process, whose torch state (threads, earlier runs) differs
    cfg = RunConfig(hidden=(30,), epochs=2, max_train=1000, seed=0)
    here = train(cfg, data.load("subset"))
    assert here["history"] == a["history"] and here["final"] == a["final"]
    assert results.run_key(cfg) == a["key"]


def test_max_train_takes_a_sample_of_every_digit(cache):
    """`max_train` (and so every tiny run) must train on images of every digit."""
    splits = data.load("subset")
    n = 500
    assert len(set(splits.train.y.tolist())) == 10
    r = train(RunConfig(hidden=(), lr=0.1, epochs=1, max_train=n), splits)
    # On the first 500 images of a class-balanced, shuffled subset this reaches about 0.7.
    assert r["final"]["valid"]["acc"] > 0.5, (
        f"the first {n} training images hold the digits {sorted(set(splits.train.y[:n].tolist()))}"
    )


# --------------------------------------------------------------------------------------------------
# cache keys

DEFAULTS = {f.name: f.default for f in dataclasses.fields(RunConfig)}
ONE_FIELD_CHANGES = [
    ("lr", 0.2),
    ("lr", 0.1000001),
    ("schedule", "constant"),
    ("epochs", 11),
    ("batch_size", 32),
    ("weight_decay", 1e-4),
    ("bias", False),
    ("seed", 1),
    ("hidden", ()),
    ("hidden", (31,)),
    ("hidden", (30, 10)),
    ("objective", "mse-onehot"),
    ("objective", "mse-digit"),
    ("dataset", "full"),
    ("max_train", 1000),
    ("stop_after", 8),
]


def test_key_changes_cover_every_config_field():
    assert {name for name, _ in ONE_FIELD_CHANGES} == set(DEFAULTS)


def test_run_key_equal_for_equal_configs():
    a = RunConfig(**DEFAULTS)
    b = RunConfig(hidden=[30], lr=0.1, epochs=10, seed=0)  # a list, some fields left to defaults
    assert a is not b and a == b
    assert results.run_key(a) == results.run_key(b) == results.run_key(RunConfig())
    assert results.entry_path(a) == results.entry_path(b)


@pytest.mark.parametrize("field,value", ONE_FIELD_CHANGES, ids=lambda v: str(v))
def test_run_key_differs_for_any_changed_field(field, value):
    base = RunConfig()
    changed = RunConfig(**{**DEFAULTS, field: value})
    assert changed != base
    assert results.run_key(changed) != results.run_key(base)
    assert results.entry_path(changed) != results.entry_path(base)


def test_run_keys_of_single_changes_are_all_distinct():
    cfgs = [RunConfig()] + [RunConfig(**{**DEFAULTS, f: v}) for f, v in ONE_FIELD_CHANGES]
    assert len({results.run_key(c) for c in cfgs}) == len(cfgs)


def test_run_key_changes_with_code_version(monkeypatch):
    cfg = RunConfig()
    before = results.run_key(cfg)
    monkeypatch.setattr(results, "code_version", lambda: "0" * 64)
    assert results.run_key(cfg) != before
    monkeypatch.setattr(results, "code_version", lambda: "1" * 64)
    assert results.run_key(cfg) not in (before, results.run_key(RunConfig(seed=1)))


@pytest.fixture
def package_copy(tmp_path, monkeypatch) -> Path:
    """A copy of the package's sources that `results.code_version` hashes instead of the real ones."""
    src = Path(results.__file__).parent
    copy = tmp_path / "pkg"
    copy.mkdir()
    for f in src.glob("*.py"):
        shutil.copy(f, copy / f.name)
    monkeypatch.setattr(results, "__file__", str(copy / "results.py"))
    return copy


@pytest.mark.parametrize("edit", ["\n_EDITED = 1\n", "\ndef _edited():\n    return None\n"], ids=["line", "def"])
@pytest.mark.parametrize("module", results.CODE)
def test_code_version_follows_every_engine_module(package_copy, module, edit):
    version = results.code_version.__wrapped__  # the uncached function
    before = version()
    assert before == results.code_version()  # the copy hashes like the original
    with open(package_copy / module, "a") as f:
        f.write(edit)
    assert version() != before


@pytest.mark.parametrize("module", results.CODE)
def test_code_version_follows_a_changed_constant_but_not_comments_or_docstrings(package_copy, module):
    version = results.code_version.__wrapped__
    before = version()
    path = package_copy / module
    source = path.read_text()
    first_doc = source.index('"""') + 3  # the module docstring
    path.write_text(source[:first_doc] + "Reworded. " + source[first_doc:] + "\n# a comment\n")
    assert version() == before  # documentation only: every cached run stays valid
    doc_of_def = re.search(r'def \w+\(.*\n    """', path.read_text(), flags=re.MULTILINE)
    if doc_of_def:  # a function's docstring too
        text = path.read_text()
        path.write_text(text[: doc_of_def.end()] + "Reworded. " + text[doc_of_def.end() :])
        assert version() == before
    # but a number in the code is the code: the first numeric literal, plus one
    text = path.read_text()
    numbers = (n for n in ast.walk(ast.parse(text)) if isinstance(n, ast.Constant) and type(n.value) in (int, float))
    number = next(numbers)
    lines = text.splitlines(keepends=True)
    line = lines[number.lineno - 1].encode()  # offsets count UTF-8 bytes
    lines[number.lineno - 1] = (line[: number.col_offset] + repr(number.value + 1).encode()
                                + line[number.end_col_offset :]).decode()
    path.write_text("".join(lines))
    assert version() != before


@pytest.mark.parametrize("module", ["cli.py", "figures.py", "experiments.py", "analysis.py"])
def test_code_version_ignores_modules_that_do_not_compute_runs(package_copy, module):
    version = results.code_version.__wrapped__
    before = version()
    with open(package_copy / module, "a") as f:
        f.write("\n_EDITED = 1\n")
    assert version() == before


@pytest.mark.parametrize("tiny,index", [(True, 0), (True, -1), (False, 3)])
def test_changing_one_sweep_learning_rate_changes_exactly_its_runs(monkeypatch, tiny, index):
    before = configs("lr-sweep", tiny=tiny)
    lrs = list(experiments.SWEEP_LRS)
    old = lrs[index]
    new = lrs[index] = old * 1.5
    monkeypatch.setattr(experiments, "SWEEP_LRS", tuple(lrs))
    after = configs("lr-sweep", tiny=tiny)

    key = results.run_key
    assert len(after) == len(before)
    assert {c.lr for c in after} == {c.lr for c in before} - {old} | {new}
    changed = {key(c) for c in after} - {key(c) for c in before}
    gone = {key(c) for c in before} - {key(c) for c in after}
    assert changed == {key(c) for c in after if c.lr == new}  # the runs at the new rate, and no others
    assert gone == {key(c) for c in before if c.lr == old}
    # one run per model, number of epochs and seed
    per_model = len({c.epochs for c in before}) * len({c.seed for c in before})
    assert len(changed) == len(gone) == len(CLASSIFIERS) * per_model
    assert {c.hidden for c in after if c.lr == new} == set(CLASSIFIERS.values())


def fake_run(hidden, lr, epochs, valid_acc, valid_loss=0.5, *, diverged=False, test_acc=0.5, train_acc=0.5):
    """A hand-made sweep result, just what `choose` and the experiments read."""
    return {
        "config": RunConfig(hidden=hidden, lr=lr, epochs=epochs).as_dict(),
        "diverged": diverged,
        "diverged_at": {"epoch": 1, "step": 0} if diverged else None,
        "history": {"valid_loss": [2.3] + [valid_loss] * (0 if diverged else epochs)},
        "final": None
        if diverged
        else {
            "train": {"loss": 0.1, "acc": train_acc},
            "valid": {"loss": valid_loss, "acc": valid_acc},
            "test": {"loss": 0.1, "acc": test_acc},
        },
    }


SWEEP = [
    fake_run(LOGISTIC, 0.01, 40, 0.85),
    fake_run(LOGISTIC, 0.1, 10, 0.88),  # best logistic
    fake_run(LOGISTIC, 1.0, 5, 0.80),
    fake_run(TWO_LAYER, 0.1, 40, 0.90),
    fake_run(TWO_LAYER, 0.3, 20, 0.93),  # best 2-layer
    fake_run(TWO_LAYER, 3.0, 5, 0.10),
]


def test_changed_choice_changes_only_the_dependent_runs():
    """A different sweep outcome for one model changes the baseline runs of that model, no others."""
    sweep_b = [*SWEEP, fake_run(LOGISTIC, 0.3, 20, 0.89)]
    a = experiments.baseline(Context(False, lambda name: SWEEP))
    b = experiments.baseline(Context(False, lambda name: sweep_b))
    keys_a = {results.run_key(c) for c in a}
    changed = [c for c in b if results.run_key(c) not in keys_a]
    assert len(a) == len(b) == 2 * len(experiments.SEEDS)
    assert len(changed) == len(experiments.SEEDS)
    assert all(c.hidden == LOGISTIC and c.lr == 0.3 and c.epochs == 20 for c in changed)


def test_changing_one_mse_learning_rate_changes_exactly_its_runs(monkeypatch):
    ctx = Context(False, lambda name: SWEEP)
    before = {results.run_key(c) for c in experiments.mse_regression(ctx)}
    lrs = dict(experiments.MSE_LRS)
    lrs["mse-digit"] = (lrs["mse-digit"][0], 0.005, *lrs["mse-digit"][2:])
    monkeypatch.setattr(experiments, "MSE_LRS", lrs)
    after = experiments.mse_regression(ctx)
    changed = [c for c in after if results.run_key(c) not in before]
    assert len(after) == len(before)
    assert len(changed) == len(experiments.SEEDS)  # its seeds
    assert {(c.objective, c.lr) for c in changed} == {("mse-digit", 0.005)}


# --------------------------------------------------------------------------------------------------
# choose


def test_choose_picks_the_best_validation_accuracy_per_model():
    assert choose(SWEEP) == {LOGISTIC: (0.1, 10), TWO_LAYER: (0.3, 20)}


def test_choose_breaks_ties_by_lower_validation_loss():
    sweep = [
        fake_run(TWO_LAYER, 0.1, 10, 0.9, valid_loss=0.40),
        fake_run(TWO_LAYER, 0.3, 5, 0.9, valid_loss=0.35),
        fake_run(TWO_LAYER, 1.0, 40, 0.9, valid_loss=0.38),
    ]
    assert choose(sweep) == {TWO_LAYER: (0.3, 5)}
    assert choose(sweep[::-1]) == {TWO_LAYER: (0.3, 5)}


def test_choose_skips_diverged_runs():
    sweep = [*SWEEP, fake_run(TWO_LAYER, 3.0, 40, 0.0, diverged=True), fake_run(LOGISTIC, 3.0, 40, 0.0, diverged=True)]
    assert choose(sweep) == {LOGISTIC: (0.1, 10), TWO_LAYER: (0.3, 20)}
    # a diverged run carrying high accuracies from before it diverged is still skipped
    diverged = fake_run(TWO_LAYER, 1.0, 40, 0.99)
    diverged["diverged"], diverged["diverged_at"] = True, {"epoch": 30, "step": 1}
    assert choose([*SWEEP, diverged]) == choose(SWEEP)


def test_choose_leaves_out_a_model_whose_runs_all_diverged():
    sweep = [fake_run(LOGISTIC, 3.0, 5, 0.0, diverged=True), *SWEEP[3:]]
    assert choose(sweep) == {TWO_LAYER: (0.3, 20)}
    # the later experiments then use the 784-30-10 choice for it
    assert experiments._chosen(Context(False, lambda name: sweep), LOGISTIC) == {"lr": 0.3, "epochs": 20}


def test_choose_uses_only_the_validation_split():
    sweep = [
        fake_run(TWO_LAYER, 0.1, 10, 0.90, test_acc=0.99, train_acc=1.0),
        fake_run(TWO_LAYER, 0.3, 10, 0.91, test_acc=0.10, train_acc=0.1),
    ]
    assert choose(sweep) == {TWO_LAYER: (0.3, 10)}


def test_choose_is_order_independent():
    assert choose(list(reversed(SWEEP))) == choose(SWEEP)
    assert choose([]) == {}


# --------------------------------------------------------------------------------------------------
# reading and writing the cache


def read_entry(path: Path) -> tuple[bytes, bytes, dict, bytes]:
    """An entry file's magic line, checksum line, JSON header and array bytes, unchecked (for tests to edit)."""
    data = path.read_bytes()
    magic, data = data[: len(results.MAGIC)], data[len(results.MAGIC) :]
    checksum, header, arrays = data.split(b"\n", 2)
    return magic, checksum, json.loads(header), arrays


def write_entry(path: Path, magic: bytes, checksum: bytes | None, header: dict, arrays: bytes) -> None:
    """Write an entry; `checksum=None` seals it with the correct checksum of what is written."""
    body = json.dumps(header).encode() + b"\n" + arrays
    path.write_bytes(magic + (checksum or store.sha256(body).encode()) + b"\n" + body)


def array_span(header: dict, path: list) -> tuple[int, int, str]:
    """Where the array stored for `path` lies in the array bytes: (start, stop, dtype)."""
    offset = 0
    for where, dtype, shape in header["arrays"]:
        size = math.prod(shape) * int(dtype[2:])
        if where == path:
            return offset, offset + size, dtype
        offset += size
    raise KeyError(path)


def test_run_saves_the_entry_and_reads_it_back(cache, calls, monkeypatch):
    (first,) = runner.run([SMALL], jobs=1)
    assert calls == [SMALL]
    path = results.entry_path(SMALL)
    assert path.is_file() and path.parent == cache / "runs"
    magic, checksum, header, arrays = read_entry(path)
    assert magic == results.MAGIC
    assert checksum.decode() == store.sha256(path.read_bytes()[len(magic) + 65 :])
    assert header["config"] == SMALL.as_dict() == first["config"]
    assert header["code"] == results.code_version()
    assert ["history", "step_loss"] in [a[0] for a in header["arrays"]]  # raw bytes, not a JSON list
    results.forget()
    assert results.load(SMALL) == first

    forbid_training(monkeypatch)
    (again,) = runner.run([SMALL], jobs=1)
    assert again == first
    (again,) = runner.run([SMALL], jobs=4)  # nothing to compute: no worker pool either
    assert again == first


def test_run_trains_each_distinct_config_once_and_keeps_order(cache, calls):
    other = dataclasses.replace(SMALL, seed=1)
    out = runner.run([SMALL, other, RunConfig(hidden=[], epochs=1, max_train=200)], jobs=1)
    assert sorted(c.seed for c in calls) == [0, 1]
    assert [r["config"]["seed"] for r in out] == [0, 1, 0]
    assert out[0] == out[2]


def _rewrite(path: Path, change, *, reseal: bool) -> None:
    """Apply `change(header)` (which may return new array bytes); `reseal` fixes the checksum to match."""
    magic, checksum, header, arrays = read_entry(path)
    arrays = change(header) or arrays
    write_entry(path, magic, None if reseal else checksum, header, arrays)


def _set_float(path: Path, where: list, index: int, value: float, *, reseal: bool) -> None:
    """Overwrite one number inside a stored array."""
    magic, checksum, header, arrays = read_entry(path)
    start, stop, dtype = array_span(header, where)
    values = np.frombuffer(arrays[start:stop], dtype).copy()
    values[index] = value
    arrays = arrays[:start] + values.tobytes() + arrays[stop:]
    write_entry(path, magic, None if reseal else checksum, header, arrays)


def damage_truncate(path, other):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def damage_truncate_last_byte(path, other):
    path.write_bytes(path.read_bytes()[:-1])


def damage_empty(path, other):
    path.write_text("")


def damage_not_an_object(path, other):
    path.write_text("null")


def damage_list(path, other):
    path.write_text("[1, 2, 3]")


def damage_binary(path, other):
    path.write_bytes(b"\x00\xff" * 100)


def damage_edit_final(path, other):
    _rewrite(path, lambda h: h["result"]["final"]["valid"].update(acc=0.999), reseal=False)


def damage_edit_history(path, other):
    _set_float(path, ["history", "step_loss"], -1, 0.001, reseal=False)


def damage_flip_one_array_bit(path, other):
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x10
    path.write_bytes(bytes(data))


def damage_no_checksum(path, other):
    data = path.read_bytes()
    path.write_bytes(results.MAGIC + data[len(results.MAGIC) + 65 :])


def damage_other_format_version(path, other):
    magic, _, header, arrays = read_entry(path)
    write_entry(path, magic.replace(b"result 1", b"result 0"), None, header, arrays)


def damage_other_code(path, other):
    _rewrite(path, lambda h: h.update(code="0" * 64), reseal=True)


def damage_edited_config(path, other):
    _rewrite(path, lambda h: h["config"].update(lr=0.5), reseal=True)


def damage_other_runs_entry(path, other):
    """A valid entry, with a correct checksum, of another config in this config's file."""
    shutil.copy(results.entry_path(other), path)


def damage_nan_in_array_with_matching_checksum(path, other):
    _set_float(path, ["history", "step_loss"], -1, float("nan"), reseal=True)


def damage_inf_in_json_with_matching_checksum(path, other):
    _rewrite(path, lambda h: h["result"]["final"]["valid"].update(loss=float("inf")), reseal=True)


def damage_array_shape_with_matching_checksum(path, other):
    def change(h):
        h["arrays"][0][2] = [h["arrays"][0][2][0] - 1]

    _rewrite(path, change, reseal=True)


def damage_trailing_bytes_with_matching_checksum(path, other):
    magic, _, header, arrays = read_entry(path)
    write_entry(path, magic, None, header, arrays + b"\x00" * 4)


def damage_array_without_its_place_with_matching_checksum(path, other):
    _rewrite(path, lambda h: h["arrays"][0].__setitem__(0, ["architecture"]), reseal=True)


@pytest.mark.parametrize(
    "damage",
    [
        damage_truncate,
        damage_truncate_last_byte,
        damage_empty,
        damage_not_an_object,
        damage_list,
        damage_binary,
        damage_edit_final,
        damage_edit_history,
        damage_flip_one_array_bit,
        damage_no_checksum,
        damage_other_format_version,
        damage_other_code,
        damage_edited_config,
        damage_other_runs_entry,
        damage_nan_in_array_with_matching_checksum,
        damage_inf_in_json_with_matching_checksum,
        damage_array_shape_with_matching_checksum,
        damage_trailing_bytes_with_matching_checksum,
        damage_array_without_its_place_with_matching_checksum,
    ],
    ids=lambda f: f.__name__.removeprefix("damage_"),
)
def test_damaged_entry_is_recomputed(cache, calls, damage):
    other = dataclasses.replace(SMALL, seed=1)
    first, _ = runner.run([SMALL, other], jobs=1)
    path = results.entry_path(SMALL)
    damage(path, other)
    results.forget()  # as a fresh process: this one read the entry intact before it was damaged
    assert results.load(SMALL) is None

    (again,) = runner.run([SMALL], jobs=1)
    assert calls.count(SMALL) == 2
    assert without_seconds(again) == without_seconds(first)  # deterministic, so the same numbers
    results.forget()
    assert results.load(SMALL) == again
    _, _, header, _ = read_entry(path)
    assert header["config"] == SMALL.as_dict() and header["code"] == results.code_version()
    assert results.load(other) is not None  # the neighbour is untouched


WARM_LOAD_SCRIPT = """
import json, sys
from mnist_scratch import results
from mnist_scratch.train import RunConfig
print(json.dumps(results.load(RunConfig(**json.loads(sys.argv[1])))))
"""


def test_a_fresh_result_is_exactly_what_a_later_load_returns(cache):
    """Cold and warm, the report sees the same numbers: same values, same types, same key order."""
    cfg = dataclasses.replace(SMALL, hidden=(30,), max_train=300)
    (cold,) = runner.run([cfg], jobs=1)
    p = subprocess.run([sys.executable, "-c", WARM_LOAD_SCRIPT, json.dumps(cfg.as_dict())], capture_output=True,
                       text=True, env=env_for(cache), timeout=300)
    assert p.returncode == 0, p.stderr
    warm = json.loads(p.stdout)
    assert json.dumps(cold) == json.dumps(warm) and cold == warm
    # and nothing was rounded on the way: these are the numbers training computed
    assert without_seconds(cold) == without_seconds(train(cfg, data.load("subset")))


def test_store_keeps_any_result_exactly_and_its_numbers_compactly(cache):
    """The store knows no field names: number lists of any depth become raw arrays, the rest JSON."""
    gen = torch.Generator().manual_seed(0)
    result = {
        "weights": [torch.rand(784, 30, generator=gen).tolist(), torch.rand(30, 10, generator=gen).tolist()],
        "valid_probs": torch.rand(5000, 10, dtype=torch.float64, generator=gen).tolist(),
        "valid_loss_per_image": [0.1 * i for i in range(5000)],  # not float32 numbers: kept as float64
        "valid_pred": [i % 10 for i in range(5000)],
        "offsets": list(range(-300, 300)),
        "big": [2**40 + i for i in range(10)],
        "huge": [2**70 + i for i in range(10)],  # beyond int64
        "dead": [i % 3 == 0 for i in range(100)],
        "mixed": [1, 2.5, "three", None, [4]] * 4,
        "short": [1.5, 2.5],
        "empty": [],
        "empty_rows": [[], []],
        "ragged": [[1.0] * 10, [2.0] * 9],
        "as_tuple": tuple(range(20)),
        "deep": {"a": {"b": [{"c": list(range(50))}, "x"]}},
        "scalars": {"text": "ü", "none": None, "flag": True, "n": 3, "x": 0.1, "neg_zero": -0.0},
    }
    expected = json.loads(json.dumps(result))  # as JSON would give it back: the tuple as a list
    stored = results.save(SMALL, result)
    results.forget()
    loaded = results.load(SMALL)
    assert json.dumps(stored) == json.dumps(loaded) == json.dumps(expected)  # types and order too
    assert loaded == expected

    _, _, header, arrays = read_entry(results.entry_path(SMALL))
    dtypes = {"/".join(map(str, path)): (dtype, shape) for path, dtype, shape in header["arrays"]}
    assert dtypes == {
        "weights/0": ("<f4", [784, 30]),
        "weights/1": ("<f4", [30, 10]),
        "valid_probs": ("<f8", [5000, 10]),
        "valid_loss_per_image": ("<f8", [5000]),
        "valid_pred": ("<i1", [5000]),
        "offsets": ("<i2", [600]),
        "big": ("<i8", [10]),
        "dead": ("|b1", [100]),
        "ragged/0": ("<f4", [10]),
        "ragged/1": ("<f4", [9]),
        "as_tuple": ("<i1", [20]),
        "deep/a/b/0/c": ("<i1", [50]),
    }
    start, stop, _ = array_span(header, ["weights", 0])  # numpy reads an array straight from the bytes
    assert np.frombuffer(arrays[start:stop], "<f4").reshape(784, 30).tolist() == expected["weights"][0]
    assert results.entry_path(SMALL).stat().st_size < 0.4 * len(json.dumps(result))


@pytest.mark.parametrize(
    "result, error",
    [
        ({"history": [0.5] * 20 + [float("nan")]}, ValueError),
        ({"history": [0.5] * 20 + [float("inf")]}, ValueError),
        ({"final": {"loss": float("nan")}}, ValueError),
        ({"per_class": {3: 0.5}}, TypeError),
        ({"tensor": torch.zeros(3)}, TypeError),
        ([1.0, 2.0], TypeError),
    ],
    ids=["nan-in-array", "inf-in-array", "nan-scalar", "int-key", "tensor", "not-a-dict"],
)
def test_store_refuses_what_it_could_not_give_back(cache, result, error):
    with pytest.raises(error):
        results.save(SMALL, result)
    assert runs_dir_listing(cache) == []


def test_unwritable_cache_is_an_oserror_from_save(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "file" / "cache"))
    with pytest.raises(OSError):
        results.save(SMALL, {"x": 1})


def test_each_entry_is_read_once_and_every_load_is_a_fresh_copy(cache, monkeypatch):
    (first,) = runner.run([SMALL], jobs=1)
    results.forget()
    decoded = []
    real = results._decode
    monkeypatch.setattr(results, "_decode", lambda data, cfg, **kw: decoded.append(cfg) or real(data, cfg, **kw))
    a, b = results.load(SMALL), results.load(SMALL)
    assert decoded == [SMALL]
    assert a == b == first and a is not b
    a["history"]["step_loss"].append(1.0)  # a caller changing its copy changes no one else's
    a["final"]["valid"]["acc"] = 2.0
    a["confusion"]["valid"][0][0] = -1
    assert results.load(SMALL) == first and decoded == [SMALL]

    path = results.entry_path(SMALL)  # another process replaces the entry: it is read again
    data = path.read_bytes()
    store.atomic_write(path, lambda f: f.write(data))
    assert results.load(SMALL) == first and decoded == [SMALL, SMALL]
    path.unlink()
    assert results.load(SMALL) is None


def test_summary_is_the_result_without_its_arrays_and_decodes_none(cache, monkeypatch):
    (first,) = runner.run([SMALL], jobs=1)
    results.forget()
    unpacked = []
    real = results._unpack
    monkeypatch.setattr(results, "_unpack", lambda *a: unpacked.append(a[0]) or real(*a))
    summary = results.load(SMALL, summary=True)
    assert unpacked == []
    assert summary["config"] == first["config"] and summary["final"] == first["final"]
    assert summary["history"]["step_loss"] is None and first["history"]["step_loss"]
    summary["final"]["valid"]["acc"] = 2.0  # a copy too
    assert results.load(SMALL) == first and unpacked  # the full load still decodes and checks the arrays
    assert results.load(SMALL, summary=True)["final"] == first["final"]

    path = results.entry_path(SMALL)
    path.write_bytes(path.read_bytes()[:-1])  # truncated: the summary is refused as the entry is
    results.forget()
    assert results.load(SMALL, summary=True) is None


def test_nan_in_an_array_is_refused_by_the_full_load_after_a_summary(cache):
    runner.run([SMALL], jobs=1)
    damage_nan_in_array_with_matching_checksum(results.entry_path(SMALL), None)
    results.forget()
    assert results.load(SMALL, summary=True) is not None  # its numbers are not read
    assert results.load(SMALL) is None


def test_an_experiments_run_list_reads_its_prerequisites_as_summaries(tiny_cache, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tiny_cache))
    experiments.results("lr-sweep", tiny=True, jobs=1)  # computed if this test runs first
    results.forget()
    experiments._read.clear()
    experiments._summaries.clear()
    unpacked = []
    real = results._unpack
    monkeypatch.setattr(results, "_unpack", lambda *a: unpacked.append(a[0]) or real(*a))
    full = configs("baseline", tiny=True, jobs=1)
    assert unpacked == [], "the sweep's per-step losses and weights were decoded to choose a setting"
    assert full == configs("baseline", tiny=True, cached_only=True)


CONCURRENT_SCRIPT = """
import json, sys, time
from pathlib import Path
from mnist_scratch import results
from mnist_scratch.train import RunConfig
role, me, sync = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
expected = {int(k): v for k, v in json.load(sys.stdin).items()}
cfgs = {seed: RunConfig(hidden=(), epochs=1, max_train=200, seed=seed) for seed in expected}
(sync / f"ready-{role}-{me}").touch()
while len(list(sync.glob("ready-*"))) < int(sys.argv[4]):  # everyone imported: start together
    time.sleep(0.01)
if role == "writer":
    for _ in range(10):
        results.save(cfgs[me], expected[me])
        results.save(cfgs[0], expected[0])  # every writer also rewrites the shared entry
    sys.exit()
reads = 0
while not (sync / "stop").exists():
    results.forget()
    for seed, cfg in cfgs.items():
        got = results.load(cfg)
        if got is None and seed == 0:
            sys.exit("the shared entry read as missing while it was being rewritten")
        if got is not None and got != expected[seed]:
            sys.exit(f"entry {seed} read back wrong")
    reads += 1
print(reads)
"""


def test_concurrent_writers_and_readers(cache, tmp_path):
    """Two processes writing the same and different entries at once, a third reading all the while."""
    gen = torch.Generator().manual_seed(0)
    expected = {seed: {"seed": seed, "values": torch.rand(100_000, dtype=torch.float64, generator=gen).tolist()}
                for seed in range(3)}
    shared = RunConfig(hidden=(), epochs=1, max_train=200, seed=0)
    results.save(shared, expected[0])
    roles = [("reader", 0), ("writer", 1), ("writer", 2)]

    def start(role, me):
        p = subprocess.Popen([sys.executable, "-c", CONCURRENT_SCRIPT, role, str(me), str(tmp_path), str(len(roles))],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env_for(cache))
        p.stdin.write(json.dumps(expected))
        p.stdin.close()
        return p

    procs = [start(role, me) for role, me in roles]
    for p in procs[1:]:  # the writers
        p.wait(timeout=300)
    (tmp_path / "stop").touch()
    for (role, _), p in zip(roles, procs):
        p.wait(timeout=300)
        assert p.returncode == 0, p.stderr.read()
        if role == "reader":
            assert int(p.stdout.read()) >= 1  # it read while they wrote
    results.forget()
    for seed, want in expected.items():
        assert results.load(RunConfig(hidden=(), epochs=1, max_train=200, seed=seed)) == want
    assert len(runs_dir_listing(cache)) == 3  # the three entries, no temporary file left


def _failing_write(exc: BaseException):
    """A stand-in for results.atomic_write whose writer fails after writing half the entry."""
    real = store.atomic_write

    def atomic_write(path, write):
        def half_then_fail(f):
            buf = io.BytesIO()
            write(buf)
            f.write(buf.getvalue()[: len(buf.getvalue()) // 2])
            f.flush()
            raise exc

        real(path, half_then_fail)

    return atomic_write


@pytest.mark.parametrize("exc", [OSError(28, "No space left on device"), KeyboardInterrupt()], ids=repr)
def test_interrupted_write_leaves_no_entry_and_no_partial_file(cache, calls, monkeypatch, exc):
    real = results.atomic_write
    monkeypatch.setattr(results, "atomic_write", _failing_write(exc))
    if isinstance(exc, OSError):  # a failed save costs the cache entry, not the result
        (r,) = runner.run([SMALL], jobs=1)
        assert r["config"] == SMALL.as_dict()
    else:
        with pytest.raises(type(exc)):
            runner.run([SMALL], jobs=1)
    assert runs_dir_listing(cache) == []  # no entry, no temporary file
    results.forget()  # the next command (this one keeps in memory a result it could not save)
    assert results.load(SMALL) is None

    monkeypatch.setattr(results, "atomic_write", real)
    (r,) = runner.run([SMALL], jobs=1)
    assert len(calls) == 2
    assert results.load(SMALL) == r
    assert runs_dir_listing(cache) == [results.entry_path(SMALL).name]


def test_interrupted_overwrite_keeps_the_old_entry(cache, calls, monkeypatch):
    (first,) = runner.run([SMALL], jobs=1)
    before = results.entry_path(SMALL).read_bytes()
    monkeypatch.setattr(results, "atomic_write", _failing_write(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        runner.run([SMALL], jobs=1, force=True)
    assert results.entry_path(SMALL).read_bytes() == before
    results.forget()
    assert results.load(SMALL) == first
    assert runs_dir_listing(cache) == [results.entry_path(SMALL).name]


KILL_SCRIPT = """
import io, os, signal
from mnist_scratch import results, runner, store
from mnist_scratch.train import RunConfig
real = store.atomic_write
def atomic_write(path, write):
    def half_then_die(f):
        buf = io.BytesIO()
        write(buf)
        f.write(buf.getvalue()[: len(buf.getvalue()) // 2])
        f.flush()
        os.fsync(f.fileno())
        os.kill(os.getpid(), signal.SIGKILL)
    real(path, half_then_die)
results.atomic_write = atomic_write
runner.run([RunConfig(hidden=(), epochs=1, max_train=200)], jobs=1)
"""


def test_process_killed_mid_write_leaves_the_cache_usable(cache, calls):
    p = subprocess.run([sys.executable, "-c", KILL_SCRIPT], capture_output=True, text=True, env=env_for(cache))
    assert p.returncode == -signal.SIGKILL, p.stderr
    name = results.entry_path(SMALL).name
    left = runs_dir_listing(cache)
    assert name not in left  # never half an entry under its name
    assert all(f.endswith(".tmp") for f in left)  # at most the temporary file, which load never reads
    assert results.load(SMALL) is None

    (r,) = runner.run([SMALL], jobs=1)
    assert calls == [SMALL]
    assert results.load(SMALL) == r


def test_force_recomputes(cache, calls):
    (first,) = runner.run([SMALL], jobs=1)
    (again,) = runner.run([SMALL], jobs=1, force=True)
    assert calls == [SMALL, SMALL]
    assert without_seconds(again) == without_seconds(first)
    assert again["seconds"] != first["seconds"]
    assert results.load(SMALL) == again  # the new result replaced the old entry


def test_cached_only_configs_wait_for_prerequisites(cache, monkeypatch):
    forbid_training(monkeypatch)
    assert configs("baseline", tiny=True, cached_only=True) is None
    assert configs("lr-sweep", tiny=True, cached_only=True) == configs("lr-sweep", tiny=True)
    assert runs_dir_listing(cache) == []


# (bad input on the command line: tests/test_hostile.py)


# --------------------------------------------------------------------------------------------------
# the command line: a diverging run


def test_diverging_run_is_a_result(cache, calls):
    args = ["train", "--hidden", "none", "--objective", "mse-digit", "--lr", "1e6", "--epochs", "2"]
    p = cli(*args, cache=cache)
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    assert "NaN or infinite at epoch 1" in p.stderr and "recorded as diverged" in p.stderr
    out = json.loads(p.stdout)
    assert out["diverged"] is True
    assert out["final"] is None
    assert out["diverged_at"]["epoch"] == 1
    assert out["config"]["lr"] == 1e6 and out["config"]["hidden"] == [] and out["architecture"] == "784-1"

    cfg = RunConfig(hidden=(), objective="mse-digit", lr=1e6, epochs=2)
    cached = results.load(cfg)  # saved like any other result
    assert cached is not None and cached["diverged"] is True
    h = cached["history"]
    assert len(h["valid_loss"]) == len(h["train_loss"]) == len(h["valid_acc"]) == cached["diverged_at"]["epoch"]
    assert len(h["step_loss"]) == cached["diverged_at"]["step"]
    assert all(math.isfinite(x) for k in h for x in h[k])
    (again,) = runner.run([cfg], jobs=1)
    assert calls == [] and again == cached


# --------------------------------------------------------------------------------------------------
# every experiment, tiny, end to end


def check_result(cfg: RunConfig, r: dict) -> None:
    """A result is complete and consistent with its config."""
    subset = cfg.dataset == "subset"
    n_valid = 5_000 if subset else 10_000
    n_train = min(cfg.max_train or math.inf, 5_000 if subset else 50_000)
    n_test = 5_000 if subset else 10_000
    assert r["config"] == cfg.as_dict()
    assert r["architecture"] == cfg.architecture
    h = r["history"]
    assert set(h) == {"train_loss", "valid_loss", "valid_acc", "step_loss"}  # no held-out split: it never steers
    for key, values in h.items():
        assert isinstance(values, list)
        assert all(isinstance(x, float) and math.isfinite(x) for x in values), key
    assert all(0 <= a <= 1 for a in h["valid_acc"])

    if r["diverged"]:
        assert r["final"] is None
        epoch = r["diverged_at"]["epoch"]
        assert 1 <= epoch <= cfg.epochs
        assert len(h["train_loss"]) == len(h["valid_loss"]) == len(h["valid_acc"]) == epoch
        assert len(h["step_loss"]) == r["diverged_at"]["step"]
        return

    assert r["diverged_at"] is None
    assert len(h["train_loss"]) == len(h["valid_loss"]) == len(h["valid_acc"]) == cfg.epochs + 1
    assert len(h["step_loss"]) == cfg.epochs * math.ceil(n_train / cfg.batch_size)

    final = r["final"]
    assert set(final) == {"train", "valid", "test"}
    for split in final.values():
        assert math.isfinite(split["loss"]) and 0 <= split["acc"] <= 1
    assert final["valid"]["loss"] == h["valid_loss"][-1]  # the same model
    assert final["valid"]["acc"] == h["valid_acc"][-1]

    conf = r["confusion"]
    assert set(conf) == {"valid", "test"}
    for name, matrix in conf.items():
        assert len(matrix) == 10 and all(len(row) == 10 for row in matrix)
        assert all(isinstance(c, int) and c >= 0 for row in matrix for c in row)
        total = sum(map(sum, matrix))
        assert total == (n_valid if name == "valid" else n_test)
        assert sum(matrix[d][d] for d in range(10)) / total == pytest.approx(final[name]["acc"], rel=1e-12)
    if subset:
        assert [sum(row) for row in conf["valid"]] == [500] * 10  # 500 of each digit

    preds = r["valid_pred"]
    assert len(preds) == n_valid and set(preds) <= set(range(10))
    counts = Counter(preds)
    assert [counts[d] for d in range(10)] == [sum(row[d] for row in conf["valid"]) for d in range(10)]
    counts = Counter(r["test_pred"])
    assert len(r["test_pred"]) == n_test
    assert [counts[d] for d in range(10)] == [sum(row[d] for row in conf["test"]) for d in range(10)]
    if cfg.hidden:  # the dead-unit trace: step 0, powers of two, every epoch's end; the last is the final count
        trace = r["dead_trace"]
        assert trace["step"][0] == 0 and trace["step"][-1] == len(h["step_loss"])
        assert trace["step"] == sorted(set(trace["step"]))
        assert trace["share"][-1] == r["dead_units"]

    if cfg.objective in ("mse-digit", "mse-digit-std", "mse-shuffled"):  # one output: the raw values are kept
        out = r["valid_output"]
        assert len(out) == n_valid and all(math.isfinite(x) for x in out)
        if cfg.objective == "mse-digit":
            assert [min(max(round(x), 0), 9) for x in out] == preds
        if cfg.objective == "mse-shuffled":
            assert [UNSHUFFLED[min(max(round(x), 0), 9)] for x in out] == preds
    else:
        assert "valid_output" not in r


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_tiny_experiment_runs_end_to_end(name, tiny_cache, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tiny_cache))
    cfgs = configs(name, tiny=True, jobs=1)
    rs = experiments.results(name, tiny=True, jobs=1)
    assert len(rs) == len(cfgs) > 0
    for cfg, r in zip(cfgs, rs):
        assert cfg.epochs == 1 and cfg.seed == 0
        assert cfg.max_train == (500 if cfg.dataset == "subset" else 2_000)
        check_result(cfg, r)
        assert results.load(cfg) == r  # every result is cached
    if name == "mse-regression":
        assert {c.objective for c in cfgs} == {"cross-entropy", "mse-digit", "mse-digit-std", "mse-shuffled", "mse-onehot"}
    if name == "full-mnist":
        assert {c.dataset for c in cfgs} == {"full"}


# --------------------------------------------------------------------------------------------------
# the command line: a tiny build in parallel, then list


def _list_states(p: subprocess.CompletedProcess) -> dict[str, str]:
    assert p.returncode == 0, p.stderr
    states = {}
    for line in p.stdout.splitlines():
        name, rest = line.split(None, 1)
        states[name] = rest
    assert list(states) == list(EXPERIMENTS)
    return states


def test_cli_tiny_parallel_run_then_list(tmp_path, data_dir, subset_ready, monkeypatch):
    root = new_cache(tmp_path / "cache", data_dir)
    monkeypatch.setenv(CACHE_ENV, str(root))
    sweep = configs("lr-sweep", tiny=True)

    states = _list_states(cli("--tiny", "list", cache=root))
    assert states["lr-sweep"].startswith(f"0/{len(sweep)} runs cached")
    for name, exp in EXPERIMENTS.items():
        if exp.needs:
            assert states[name].startswith(f"waiting for {', '.join(exp.needs)}")

    p = cli("--tiny", "--jobs", "2", "run", "lr-sweep", cache=root)
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    entries = {f.name: f.stat().st_mtime_ns for f in (root / "runs").iterdir()}
    assert set(entries) == {results.entry_path(c).name for c in sweep}  # nothing else, no .tmp

    states = _list_states(cli("--tiny", "list", cache=root))
    assert states["lr-sweep"].startswith(f"{len(sweep)}/{len(sweep)} runs cached")
    for name, exp in EXPERIMENTS.items():
        cfgs = configs(name, tiny=True, cached_only=True)
        if cfgs is not None:  # its prerequisites are cached (tiny runs may coincide with sweep runs): counts
            done = sum(results.load(c) is not None for c in cfgs)
            assert states[name].startswith(f"{done}/{len(cfgs)} runs cached"), states[name]
        else:  # a prerequisite of its own is not run yet
            assert exp.needs != ("lr-sweep",)
            assert states[name].startswith(f"waiting for {', '.join(exp.needs)}"), states[name]

    # the workers' results are the numbers this process computes
    splits = {"subset": data.load("subset")}
    for cfg in sweep:
        cached = results.load(cfg)
        assert cached is not None
        assert without_seconds(cached) == without_seconds(train(cfg, splits[cfg.dataset]))

    p = cli("--tiny", "--jobs", "2", "run", "lr-sweep", cache=root)
    assert p.returncode == 0, p.stderr
    assert {f.name: f.stat().st_mtime_ns for f in (root / "runs").iterdir()} == entries  # read, not rewritten

    p = cli("--tiny", "--jobs", "2", "run", "lr-sweep", "--force", cache=root)
    assert p.returncode == 0, p.stderr
    forced = {f.name: f.stat().st_mtime_ns for f in (root / "runs").iterdir()}
    assert set(forced) == set(entries)
    assert all(forced[k] != entries[k] for k in entries)  # every run recomputed and saved again
    assert all(results.load(cfg) is not None for cfg in sweep)


# --------------------------------------------------------------------------------------------------
# the warm path: cheap commands stay cheap

CHEAP_SCRIPT = """
import json, sys
from mnist_scratch import cli, results
reads = []
real = results._decode
results._decode = lambda data, cfg, arrays=True: reads.append([results.run_key(cfg), arrays]) or real(data, cfg, arrays)
code = cli.main(sys.argv[1:])
print(json.dumps({"code": code, "heavy": [m for m in ("fastai", "IPython") if m in sys.modules], "reads": reads}))
"""
CHEAP = {  # command: the experiments whose entries it decodes whole, and those it reads only as summaries
    "list": ({"baseline"}, set(EXPERIMENTS)),  # early-stopping's runs stop where each baseline run's validation loss is lowest
    "figure loss-curves": ({"baseline"}, {"lr-sweep"}),
    "figure sample-digits": (set(), set()),
}


@pytest.mark.parametrize("command", CHEAP)
def test_cheap_commands_import_no_fastai_and_read_only_what_they_show(command, tiny_cache, tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tiny_cache))
    for name in EXPERIMENTS:  # warm: every experiment (list counts them all)
        experiments.results(name, tiny=True, jobs=1)
    args = command.split() + (["--out", str(tmp_path)] if command.startswith("figure") else [])
    p = subprocess.run([sys.executable, "-c", CHEAP_SCRIPT, "--tiny", *args], capture_output=True, text=True,
                       env=env_for(tiny_cache), timeout=300)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout.splitlines()[-1])
    assert out["code"] == 0
    assert out["heavy"] == []  # no fastai (nothing decoded, nothing trained), no IPython
    reads = [tuple(r) for r in out["reads"]]
    assert len(reads) == len(set(reads))  # every entry read at most once each way

    def keys(names):
        return {results.run_key(c) for name in names for c in configs(name, tiny=True)}

    whole, summaries = CHEAP[command]
    assert {key for key, arrays in reads if arrays} == keys(whole)
    assert {key for key, arrays in reads if not arrays} == keys(summaries)
