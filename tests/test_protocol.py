"""The tuning protocol: the test split plays no part in any choice, on the subset and on full MNIST.

The end-to-end check trains the tiny experiments twice, in two caches, once with the held-out test
labels shuffled: every choice and every validation number must be the same, while the test
accuracies (proof that the shuffle took effect) are not.
"""

import dataclasses
import shutil

import pytest
import torch

from mnist_scratch import experiments, runner, store
from mnist_scratch.data import Split, Splits
from mnist_scratch.experiments import CLASSIFIERS, FULL_EPOCHS, SEEDS, SWEEP_LRS, SWEEP_SEEDS, Context, choose

PROJECT_DATA = store.PROJECT_ROOT / ".cache" / "data"


def fake(hidden, lr, epochs, seed, acc, dataset="subset"):
    return {"config": {"hidden": list(hidden), "lr": lr, "epochs": epochs, "seed": seed, "dataset": dataset},
            "diverged": False, "final": {"valid": {"acc": acc, "loss": 1 - acc}, "test": {"acc": 0.5, "loss": 0.5}}}


SUBSET = [fake(h, lr, e, s, 0.9 if (lr, e) == (0.3, 20) else 0.8)
          for h in CLASSIFIERS.values() for lr in SWEEP_LRS for e in (10, 20) for s in range(SWEEP_SEEDS)]


def test_full_sweep_is_the_grid_around_each_subset_choice():
    ctx = Context(False, lambda name: SUBSET)
    cfgs = experiments.full_sweep(ctx)
    assert {c.dataset for c in cfgs} == {"full"}
    for hidden in CLASSIFIERS.values():
        mine = [c for c in cfgs if c.hidden == hidden]
        assert {c.lr for c in mine} == {0.1, 0.3, 1.0}  # the subset's 0.3 and its neighbours in the sweep
        assert {c.epochs for c in mine} == set(FULL_EPOCHS)
        assert {c.seed for c in mine} == set(SEEDS[:SWEEP_SEEDS])
        assert len(mine) == 3 * len(FULL_EPOCHS) * SWEEP_SEEDS


def test_full_mnist_runs_at_the_full_sweeps_choice_with_every_seed():
    full = [fake(h, lr, e, s, 0.97 if (lr, e) == (0.1, 10) else 0.95, "full")
            for h in CLASSIFIERS.values() for lr in (0.1, 0.3, 1.0) for e in FULL_EPOCHS for s in range(SWEEP_SEEDS)]
    ctx = Context(False, lambda name: {"full-sweep": full, "lr-sweep": SUBSET}[name])
    cfgs = experiments.full_mnist(ctx)
    assert {(c.lr, c.epochs, c.dataset) for c in cfgs} == {(0.1, 10, "full")}  # not the subset's 0.3 / 20
    assert sorted(c.seed for c in cfgs) == sorted(SEEDS * len(CLASSIFIERS))


def test_neighbours():
    assert experiments.neighbours(0.3) == (0.1, 0.3, 1.0)
    assert experiments.neighbours(SWEEP_LRS[0]) == SWEEP_LRS[:2]
    assert experiments.neighbours(SWEEP_LRS[-1]) == SWEEP_LRS[-2:]


def test_build_runs_prerequisites_in_earlier_stages(monkeypatch):
    stages = []
    monkeypatch.setattr(experiments, "configs", lambda name, **kw: [name])
    monkeypatch.setattr(experiments.runner, "run", lambda cfgs, **kw: stages.append(sorted(cfgs)))
    experiments.build(["full-mnist", "baseline"])
    assert stages == [["lr-sweep"], ["baseline", "full-sweep"], ["full-mnist"]]


@pytest.fixture
def tiny_data_cache(tmp_path, monkeypatch):
    """A private cache root holding copies of the project's decoded images (decoded on first use if none)."""
    root = tmp_path / "cache"
    (root / "data").mkdir(parents=True)
    if PROJECT_DATA.is_dir():
        for f in PROJECT_DATA.glob("mnist-*.npz"):
            shutil.copy(f, root / "data" / f.name)
    monkeypatch.setenv(store.CACHE_ENV, str(root))
    return root


def _shuffled_test(splits: Splits) -> Splits:
    perm = torch.randperm(len(splits.test.y), generator=torch.Generator().manual_seed(1))
    return dataclasses.replace(splits, test=Split(splits.test.x, splits.test.y[perm], splits.test.paths))


@pytest.mark.slow
def test_choices_do_not_move_when_the_test_labels_are_shuffled(tiny_data_cache, tmp_path, monkeypatch):
    real = runner._loaded.__wrapped__  # uncached: each run loads its splits afresh

    def load(dataset, path):
        return real(dataset, path, None)

    def build(cache_name: str, shuffle: bool) -> dict[str, list[dict]]:
        shutil.copytree(tiny_data_cache / "data", tmp_path / cache_name / "data")
        monkeypatch.setenv(store.CACHE_ENV, str(tmp_path / cache_name))
        monkeypatch.setattr(runner, "_splits", lambda dataset, path: _shuffled_test(load(dataset, path)) if shuffle
                            else load(dataset, path))
        return {name: experiments.results(name, tiny=True, jobs=1) for name in ("lr-sweep", "full-sweep", "full-mnist")}

    plain, shuffled = build("plain", False), build("shuffled", True)
    for sweep in ("lr-sweep", "full-sweep"):
        assert choose(plain[sweep]) == choose(shuffled[sweep]) != {}
    for name in plain:
        for a, b in zip(plain[name], shuffled[name]):
            assert a["config"] == b["config"]
            assert a["final"]["valid"] == b["final"]["valid"] and a["valid_pred"] == b["valid_pred"]
    test_accs = [(a["final"]["test"]["acc"], b["final"]["test"]["acc"]) for a, b in zip(plain["full-mnist"], shuffled["full-mnist"])]
    assert all(a != b for a, b in test_accs)  # the shuffle reached the test split
    assert all(b < 0.2 for _, b in test_accs)  # shuffled labels: chance, whatever the model
