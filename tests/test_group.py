"""Runs trained in groups (`group.py`, `stacked.py`): each run's result bit-for-bit the one it gets
trained alone, whichever runs share its group, how many, and where it sits; which runs group; and the
runner's use of groups (one entry per run, keys independent of the group)."""

import math
from dataclasses import replace

import pytest
import torch

from mnist_scratch import data, results, runner, stacked
from mnist_scratch.group import MAX_GROUP, WIDEST, group_key, groups, train_group
from mnist_scratch.modules import CrossEntropy, Linear, ReLU, Sequential, mlp
from mnist_scratch.stacked import StackedLinear, StackedSGD, stack, unstack
from mnist_scratch.sgd import SGD
from mnist_scratch.train import EVAL_CHUNK, RunConfig, train

from .test_experiments import _private_cache_by_default, cache, data_dir, subset_ready  # noqa: F401 (fixtures)


@pytest.fixture(scope="module")
def splits():
    return data.load("subset")


def assert_identical(alone, grouped, path="result"):
    """Every number equal bit for bit (`torch.equal` on each list of numbers), every other value equal."""
    if isinstance(alone, dict):
        assert isinstance(grouped, dict) and list(alone) == list(grouped), f"{path}: keys {list(alone)} != {list(grouped)}"
        for key in alone:
            assert_identical(alone[key], grouped[key], f"{path}[{key!r}]")
    elif isinstance(alone, list) and alone and all(isinstance(v, (int, float)) for v in alone):
        assert isinstance(grouped, list) and len(alone) == len(grouped), path
        assert torch.equal(torch.tensor(alone, dtype=torch.float64), torch.tensor(grouped, dtype=torch.float64)), path
    elif isinstance(alone, list):
        assert isinstance(grouped, list) and len(alone) == len(grouped), path
        for i, (a, g) in enumerate(zip(alone, grouped)):
            assert_identical(a, g, f"{path}[{i}]")
    else:
        assert type(alone) is type(grouped) and alone == grouped, f"{path}: {alone!r} != {grouped!r}"


def without_seconds(result: dict) -> dict:
    return {k: v for k, v in result.items() if k != "seconds"}


def check_against_alone(cfgs, splits, groupings):
    """Train each of `groupings` (lists of indices into `cfgs`) as one group, and every run alone:
    each run's result, in each group, must be the one it gets alone."""
    alone = [without_seconds(train(cfg, splits)) for cfg in cfgs]
    for grouping in groupings:
        grouped = train_group([cfgs[i] for i in grouping], splits)
        assert len(grouped) == len(grouping)
        for position, (i, result) in enumerate(zip(grouping, grouped)):
            assert result["seconds"] > 0
            assert_identical(alone[i], without_seconds(result), f"run {i} at position {position} of {grouping}")
    return alone


# --- the contract: grouped = alone, bit for bit ----------------------------------------------------

# max_train=1000 with batch 16: 62 full batches and a last one of 8 rows
MIXED = [
    RunConfig(hidden=(30,), lr=0.1, epochs=3, max_train=1000, seed=0),
    RunConfig(hidden=(30,), lr=0.5, epochs=3, max_train=1000, seed=1, weight_decay=1e-3, schedule="constant"),
    RunConfig(hidden=(30,), lr=3.0, epochs=3, max_train=1000, seed=2, weight_decay=0.1),
    RunConfig(hidden=(30,), lr=1e30, epochs=3, max_train=1000, seed=0),  # diverges in the first epoch
    RunConfig(hidden=(30,), lr=0.03, epochs=3, max_train=1000, seed=3, weight_decay=1e-4),
]


def test_a_group_of_mixed_rates_decays_and_seeds_trains_each_run_as_alone(splits):
    alone = check_against_alone(MIXED, splits, [[0, 1, 2, 3, 4], [4, 3, 2, 1, 0], [2, 0], [1]])
    assert alone[3]["diverged"] and not any(r["diverged"] for r in alone[:3] + alone[4:])
    assert len(alone[0]["history"]["step_loss"]) == 3 * math.ceil(1000 / 16)
    assert alone[0]["dead_trace"]["step"] == [0, 1, 2, 4, 8, 16, 32, 63, 64, 128, 189]
    assert len({tuple(r["history"]["step_loss"][:5]) for r in alone}) == len(alone)  # five different runs


@pytest.mark.parametrize("cfgs", [
    [RunConfig(hidden=(4,), lr=lr, epochs=2, max_train=1000, seed=s, weight_decay=wd)
     for lr, s, wd in ((0.1, 0, 0.0), (1.0, 1, 1e-2), (0.3, 2, 0.0))],
    [RunConfig(hidden=(4,), bias=False, lr=lr, epochs=2, max_train=1000, seed=s) for lr, s in ((0.1, 0), (0.3, 4))],
    [RunConfig(hidden=(), lr=lr, epochs=2, max_train=1000, seed=s, weight_decay=wd)
     for lr, s, wd in ((0.1, 0, 0.0), (3.0, 1, 1e-3), (0.01, 2, 0.0))],
    [RunConfig(hidden=(30,), objective="mse-digit", lr=lr, epochs=2, max_train=1000, seed=s)
     for lr, s in ((0.01, 0), (0.03, 1), (1e3, 2))],  # the last diverges
    [RunConfig(hidden=(30,), objective=obj, lr=lr, epochs=2, max_train=1000, seed=1) for obj, lr in
     (("mse-onehot", 1.0), ("mse-onehot", 3.0))],
    [RunConfig(hidden=(16, 8), objective="mse-digit-std", lr=0.1, epochs=1, max_train=600, seed=s) for s in (0, 1)],
    [RunConfig(hidden=(30,), objective="mse-shuffled", lr=lr, epochs=2, max_train=600, seed=s) for lr, s in ((0.01, 0), (0.03, 1))],
    [RunConfig(hidden=(30,), lr=lr, epochs=5, stop_after=2, max_train=600, seed=s) for lr, s in ((0.1, 0), (0.3, 1), (0.2, 0))],
], ids=["784-4-10", "784-4-10-no-bias", "784-10", "mse-digit-784-30-1", "mse-onehot", "784-16-8-1", "mse-shuffled",
        "early-stopping"])
def test_every_architecture_and_objective_trains_in_a_group_as_alone(splits, cfgs):
    n = len(cfgs)
    check_against_alone(cfgs, splits, [list(range(n)), list(reversed(range(n)))])


def test_runs_of_one_seed_share_their_batches_and_products_in_a_group_as_alone(splits):
    """Runs of one seed sit side by side in the stack and their first layer multiplies their common
    batch once; a run that diverges leaves its block, which goes on as before."""
    cfgs = [RunConfig(hidden=(30,), objective="mse-digit", lr=lr, epochs=2, max_train=1000, seed=seed, weight_decay=wd)
            for lr, seed, wd in ((0.01, 1, 0.0), (0.03, 0, 1e-3), (0.003, 1, 0.0), (1e3, 1, 0.0), (0.01, 0, 0.0))]
    alone = check_against_alone(cfgs, splits, [[0, 1, 2, 3, 4], [3, 2, 1, 0]])
    assert alone[3]["diverged"] and not alone[0]["diverged"]
    model = stack([mlp([784, 30, 1]) for _ in range(5)], same_input=[0, 0, 1, 1, 1])
    assert model.layers[0].blocks() == [(0, 2), (2, 5)] and model.layers[2].same_input is None


def test_a_run_in_groups_of_every_size_and_position_is_the_run_alone(splits):
    cfgs = [RunConfig(hidden=(8,), lr=0.1 * (1 + i), epochs=1, max_train=500, seed=i % 3) for i in range(7)]
    check_against_alone(cfgs, splits, [[0, 1], [1, 0], [2, 0, 3], [4, 5, 6, 0], [6, 5, 4, 3, 2, 1, 0]])


def test_evaluations_in_several_chunks_and_the_full_dataset_group_as_alone():
    """A training split larger than `EVAL_CHUNK` (its final evaluation in two chunks, the second a few rows)."""
    gen = torch.Generator().manual_seed(0)

    def split(n):
        return data.Split(torch.rand(n, 784, generator=gen), torch.randint(0, 10, (n,), generator=gen), ("",) * n)

    synthetic = data.Splits(split(EVAL_CHUNK + 40), split(3000), None)  # no held-out split, as it may be
    cfgs = [RunConfig(hidden=(30,), lr=lr, epochs=1, batch_size=512, seed=s, dataset="full") for lr, s in ((0.1, 0), (0.5, 1))]
    check_against_alone(cfgs, synthetic, [[0, 1]])


def test_a_group_whose_one_call_forms_round_otherwise_falls_back_to_the_runs_own(splits, monkeypatch):
    """Were the batched or side-by-side products, or the fused update, to round differently on some
    build, the check finds it and the group computes run by run: each run still gets its numbers alone."""
    monkeypatch.setattr(stacked, "_verdicts", {})
    for name in ("_product_at_once", "_update_at_once", "_blocks_at_once", "_grad_blocks_at_once"):
        real = getattr(stacked, name)
        monkeypatch.setattr(stacked, name, lambda *operands, real=real: real(*operands) * (1 + 2**-20))
    check_against_alone([MIXED[0], MIXED[1], replace(MIXED[1], seed=0)], splits, [[0, 1, 2]])
    kinds = {key[0] if isinstance(key[0], str) else key[0][0] for key in stacked._verdicts}
    assert kinds == {"product", "update", "blocks", "weight gradient blocks"}
    assert not any(stacked._verdicts.values())


def test_each_kind_of_operation_is_checked_once_on_random_numbers_laid_out_alike(monkeypatch):
    monkeypatch.setattr(stacked, "_verdicts", {})
    gen = torch.Generator().manual_seed(3)
    grad, w = torch.rand(3, 8, 10, generator=gen), torch.rand(3, 30, 10, generator=gen).transpose(1, 2)
    seen = []

    def one_by_one(*operands):
        seen.append(operands)
        return stacked._product_one_by_one(*operands)

    def off(*operands):
        return stacked._product_at_once(*operands) + 1

    assert stacked._exact("product", (grad, w, None), off, one_by_one) is False
    ((a, b, c),) = seen  # numbers of its own, with the operands' shapes and memory layout
    assert (a.shape, a.stride(), b.shape, b.stride(), c) == (grad.shape, grad.stride(), w.shape, w.stride(), None)
    assert (a != 0).all() and (a < 0).any() and (b != 0).all()
    assert stacked._exact("product", (2 * grad, w, None), off, one_by_one) is False
    assert len(seen) == 1  # the same kind of product: decided once
    monkeypatch.setattr(stacked, "_product_at_once", lambda *operands: pytest.fail("the one call used where it disagreed"))
    assert torch.equal(stacked.matmul(grad, w), stacked._product_one_by_one(grad, w, None))


def test_a_product_is_each_runs_own_whichever_way_it_is_computed(monkeypatch):
    monkeypatch.setattr(stacked, "_verdicts", {})
    gen = torch.Generator().manual_seed(4)

    def rand(*shape):
        return torch.rand(*shape, generator=gen)

    def own(x, w, bias):  # each run's product, as its `Linear` computes it
        return x @ w if bias is None else torch.addmm(bias[0], x, w)

    for x, w, bias in ((rand(5, 16, 784), rand(5, 784, 30), rand(5, 1, 30)), (rand(5, 8, 4), rand(5, 4, 10), None),
                       (rand(100, 784), rand(5, 784, 30), rand(5, 1, 30))):
        xs = [x] * 5 if x.dim() == 2 else x
        assert torch.equal(stacked.matmul(x, w, bias), torch.stack([own(*f) for f in zip(xs, w, bias if bias is not None else [None] * 5)]))
    x, w, bias = rand(100, 784), rand(5, 784, 10), rand(5, 1, 10)  # one input, narrow weights: 16 columns wide
    padded = [own(x, torch.cat([w_s, torch.zeros(784, 6)], 1), torch.cat([b, torch.zeros(1, 6)], 1))[:, :10]
              for w_s, b in zip(w, bias)]
    assert torch.equal(stacked.matmul(x, w, bias), torch.stack(padded))
    assert torch.equal(stacked.matmul(x, w[2:3], bias[2:3])[0], padded[2])  # alone as in the group
    assert (torch.stack(padded) - torch.stack([own(x, w_s, b) for w_s, b in zip(w, bias)])).abs().max() < 1e-3


# --- the stacked modules ------------------------------------------------------------------------


def step_alike(stacked_model, opt, models, x, y, lrs, decays) -> None:
    """One SGD step of the stack and of each run's own model on its slice of the batch: the same loss,
    then the same parameters, bit for bit."""
    loss_fn = CrossEntropy()
    losses = loss_fn(stacked_model(x), y)
    assert losses.shape == (len(models),)
    stacked_model.backward(loss_fn.backward())
    opt.step(lrs)
    for s, model in enumerate(models):
        lone_loss = CrossEntropy()
        assert torch.equal(lone_loss(model(x[s]), y[s]), losses[s])
        model.backward(lone_loss.backward())
        SGD(model.parameters(), lrs[s], decays[s]).step()
        for p, q in zip(model.parameters(), unstack(stacked_model, s).parameters(), strict=True):
            assert torch.equal(p.data, q.data)


def test_stacked_linear_is_each_runs_linear(monkeypatch):
    """Forward, backward and the SGD step of a stack, slice by slice, against each run's own modules."""
    gen = torch.Generator().manual_seed(1)
    models = [mlp([784, 30, 10], generator=gen) for _ in range(3)]
    stacked_model = stack(models)
    assert isinstance(stacked_model.layers[0], StackedLinear) and isinstance(stacked_model.layers[1], ReLU)
    assert stacked_model.layers[0].weight.data.shape == (3, 784, 30) and stacked_model.layers[0].bias.data.shape == (3, 1, 30)
    x, y = torch.rand(3, 16, 784, generator=gen), torch.randint(0, 10, (3, 16), generator=gen)
    lrs, decays = [0.1, 0.2, 0.3], [0.0, 1e-2, 0.0]
    with torch.inference_mode():
        step_alike(stacked_model, StackedSGD(stacked_model.parameters(), decays), models, x, y, lrs, decays)
    view = unstack(stacked_model, 2)
    assert isinstance(view.layers[0], Linear) and view.layers[0].weight.data.data_ptr() == \
        stacked_model.layers[0].weight.data[2].data_ptr()  # a view of the stack, not a copy


def test_a_first_layer_of_runs_with_one_input_is_each_runs_linear():
    """Weights stored side by side, one product per block of runs with the same batch: forward, weight
    gradient and SGD step, run by run, against each run's own modules; then two runs dropped."""
    gen = torch.Generator().manual_seed(5)
    models = [mlp([784, 30, 10], generator=gen) for _ in range(5)]
    stacked_model = stack(models, same_input=["a", "a", "a", "b", "b"])
    first = stacked_model.layers[0]
    assert first.blocks() == [(0, 3), (3, 5)] and first.weight.data.shape == (5, 784, 30)
    assert first.weight.data.transpose(0, 1).is_contiguous()  # stored (n_in, S, n_out)
    x = torch.rand(2, 16, 784, generator=gen)[[0, 0, 0, 1, 1]]
    y = torch.randint(0, 10, (5, 16), generator=gen)
    lrs, decays = [0.1, 0.2, 0.3, 0.4, 0.5], [0.0, 1e-2, 0.0, 1e-3, 0.0]
    opt = StackedSGD(stacked_model.parameters(), decays)
    with torch.inference_mode():
        for _ in range(2):
            step_alike(stacked_model, opt, models, x, y, lrs, decays)
        kept = torch.tensor([1, 3, 4])
        stacked.keep(stacked_model, kept)
        opt.keep(kept)
        assert first.blocks() == [(0, 1), (1, 3)] and first.weight.data.transpose(0, 1).is_contiguous()
        for s, model in zip(range(3), (models[1], models[3], models[4])):
            assert all(torch.equal(p.data, q.data) for p, q in zip(model.parameters(), unstack(stacked_model, s).parameters()))


def test_a_shared_input_gives_every_runs_output():
    gen = torch.Generator().manual_seed(2)
    models = [mlp([784, 16, 10], generator=gen) for _ in range(4)]
    x = torch.rand(100, 784, generator=gen)
    with torch.inference_mode():
        out = stack(models)(x)
        assert out.shape == (4, 100, 10)
        for s, model in enumerate(models):
            assert torch.equal(out[s], model(x))


# --- which runs group ---------------------------------------------------------------------------


def test_runs_group_when_the_shape_of_their_steps_is_the_same():
    base = RunConfig(hidden=(30,), epochs=5)
    same = [replace(base, lr=0.3), replace(base, seed=4), replace(base, weight_decay=0.1), replace(base, schedule="constant")]
    assert {group_key(c) for c in same} == {group_key(base)}
    other = [replace(base, epochs=6), replace(base, hidden=(31,)), replace(base, objective="mse-onehot"),
             replace(base, bias=False), replace(base, dataset="full"), replace(base, max_train=100),
             replace(base, batch_size=32), replace(base, stop_after=3)]
    assert len({group_key(c) for c in [base, *other]}) == 1 + len(other)
    assert group_key(replace(base, hidden=(WIDEST + 1,))) is None
    found = groups([base, *same, *other])
    assert found == [(base, same[0], same[2], same[3], same[1]), *((c,) for c in other)]  # in order of seed


def test_wide_networks_train_alone():
    wide = [RunConfig(hidden=(512,), seed=s) for s in range(3)]
    assert groups(wide) == [(c,) for c in wide]


def test_a_large_class_is_split_evenly_between_seeds_and_work_is_spread_over_workers():
    many = [RunConfig(lr=0.01 * (i + 1), seed=i % 2) for i in range(MAX_GROUP + 2)]
    found = groups(many)
    assert sorted(map(len, found)) == [(MAX_GROUP + 2) // 2] * 2
    assert sorted(c.lr for g in found for c in g) == sorted(c.lr for c in many)
    assert [{c.seed for c in g} for g in found] == [{0}, {1}]  # the runs of a seed together: they share batches
    three = many[:3]
    assert sorted(map(len, groups(three, at_least=2))) == [1, 2]
    assert sorted(map(len, groups(three, at_least=5))) == [1, 1, 1]  # never more groups than runs
    assert groups([], at_least=2) == []


def test_a_group_of_different_shapes_is_refused(splits):
    with pytest.raises(ValueError, match="cannot train as one group"):
        train_group([RunConfig(epochs=1), RunConfig(epochs=2)], splits)


# --- the runner: one entry per run, each under its own key --------------------------------------


def test_the_runner_trains_groups_and_stores_each_run_as_alone(cache, monkeypatch, splits):
    cfgs = [RunConfig(hidden=(30,), lr=lr, epochs=1, max_train=300, seed=s) for lr, s in ((0.1, 0), (0.3, 1), (1.0, 2))]
    cfgs.append(RunConfig(hidden=(), epochs=1, max_train=300))
    seen = []
    real = runner._work

    def counting(group, data_path, **kw):
        seen.append(group)
        return real(group, data_path, **kw)

    monkeypatch.setattr(runner, "_work", counting)
    out = runner.run(cfgs, jobs=1)
    assert sorted(map(len, seen)) == [1, 3]
    for cfg, result in zip(cfgs, out):
        alone = without_seconds(train(cfg, splits))
        assert_identical(alone, without_seconds(result))
        assert_identical(alone, without_seconds(results.load(cfg)))  # its own entry, under its own key
    assert len(list((cache / "runs").glob("*" + results.SUFFIX))) == len(cfgs)
