"""The training engine against autograd and torch.nn, and its guarantees: stable losses, faithful
initialisation, no autograd anywhere in src/, deterministic runs and clean divergence."""

import ast
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from mnist_scratch import data, modules
from mnist_scratch.modules import CrossEntropy, Linear, mlp
from mnist_scratch.errors import UserError
from mnist_scratch.objectives import objective
from mnist_scratch.sgd import SGD
from mnist_scratch.train import RunConfig, batches, generators, train

from .oracle import gradient_check_table, to_torch

SRC = Path(__file__).resolve().parents[1] / "src"
N_PARITY = 2000  # training images used by the parity runs: one epoch is 125 steps
LR = 0.1


@pytest.fixture(scope="module")
def splits():
    return data.load("subset")


@pytest.fixture(scope="module")
def sample(splits):
    """A fixed random sample of the training split, which is ordered by digit: every digit appears."""
    keep = torch.randperm(len(splits.train), generator=torch.Generator().manual_seed(0))[:N_PARITY]
    return data.Split(splits.train.x[keep], splits.train.y[keep], tuple(splits.train.paths[i] for i in keep))


# --- gradients against autograd -------------------------------------------------------------------

GRADIENT_ROWS = gradient_check_table()


@pytest.mark.parametrize("row", GRADIENT_ROWS, ids=[r["check"] for r in GRADIENT_ROWS])
def test_gradient_matches_autograd(row):
    assert row["max_abs_diff"] <= 1e-10


def test_gradient_table_covers_every_piece():
    checks = {r["check"] for r in GRADIENT_ROWS}
    for name in ("Linear (with bias): bias", "Linear (no bias): weight", "ReLU: input", "CrossEntropy: input",
                 "MSE, one output (digit): input", "MSE, ten outputs (one-hot): input",
                 "Model 784-10: Linear 1 weight", "Model 784-30-10: Linear 2 bias"):  # fmt: skip
        assert name in checks


def _relu_passes_everything(self, grad):
    return grad


_linear_backward = Linear.backward  # the real one, taken before any test patches it


def _bias_grad_mean(self, grad):
    out = _linear_backward(self, grad)
    if self.bias is not None:
        self.bias.grad = grad.mean(0)
    return out


def _softmax_without_minus_one(self):
    return self.logp.exp() / len(self.target)


@pytest.mark.parametrize(
    "cls, wrong, broken",
    [
        (modules.ReLU, _relu_passes_everything, "ReLU: input"),
        (modules.Linear, _bias_grad_mean, "Linear (with bias): bias"),
        (modules.CrossEntropy, _softmax_without_minus_one, "CrossEntropy: input"),
    ],
    ids=["relu", "linear-bias", "cross-entropy"],
)
def test_gradient_check_catches_a_wrong_backward(monkeypatch, cls, wrong, broken):
    """The oracle can fail: a deliberately wrong backward shows up in the table."""
    monkeypatch.setattr(cls, "backward", wrong)
    rows = {r["check"]: r["max_abs_diff"] for r in gradient_check_table()}
    assert rows[broken] > 1e-3


# --- one epoch against torch.nn + autograd + torch.optim ------------------------------------------


def _our_epoch(model, x, y, idxs, weight_decay):
    """The steps of mnist_scratch.train.train, at a constant learning rate."""
    loss_fn, opt, losses = CrossEntropy(), SGD(model.parameters(), LR, weight_decay), []
    with torch.inference_mode():
        for idx in idxs:
            losses.append(loss_fn(model(x[idx]), y[idx]).item())
            model.backward(loss_fn.backward())
            opt.step()
    return losses


def _reference_epoch(model, x, y, idxs, weight_decay, opt=None, sched=None):
    opt, losses = opt or torch.optim.SGD(model.parameters(), lr=LR, weight_decay=weight_decay), []
    for idx in idxs:
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("weight_decay", [0.0, 0.01], ids=["wd0", "wd0.01"])
@pytest.mark.parametrize("hidden", [(), (30,)], ids=["784-10", "784-30-10"])
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)], ids=["float64", "float32"])
def test_epoch_matches_torch_reference(sample, hidden, weight_decay, dtype, tol):
    x, y = sample.x.to(dtype), sample.y
    init_gen, order_gen = generators(0)
    ours = mlp([784, *hidden, 10], generator=init_gen, dtype=dtype)
    ref = to_torch(ours)
    idxs = batches(N_PARITY, 16, order_gen)

    our_losses = _our_epoch(ours, x, y, idxs, weight_decay)
    ref_losses = _reference_epoch(ref, x, y, idxs, weight_decay)

    assert len(our_losses) == len(ref_losses) == math.ceil(N_PARITY / 16)
    assert max(abs(a - b) for a, b in zip(our_losses, ref_losses)) <= tol
    assert ref_losses[-1] < ref_losses[0] - 0.5  # it did learn: the comparison is not of two idle runs
    ref_params = [p.T if p.ndim == 2 else p for p in ref.parameters()]
    for p, r in zip(ours.parameters(), ref_params, strict=True):
        assert (p.data - r.detach()).abs().max().item() <= tol


@pytest.mark.parametrize("schedule", ["constant", "linear"])
@pytest.mark.parametrize("weight_decay", [0.0, 0.01], ids=["wd0", "wd0.01"])
@pytest.mark.parametrize("hidden", [(), (30,)], ids=["784-10", "784-30-10"])
def test_train_matches_torch_reference(splits, sample, hidden, weight_decay, schedule):
    """`train` itself (float32) takes the reference's steps; `linear` is LambdaLR(1 - step / steps)."""
    cfg = RunConfig(hidden=hidden, epochs=2, lr=LR, schedule=schedule, weight_decay=weight_decay)
    steps = train(cfg, data.Splits(sample, splits.valid, None))["history"]["step_loss"]

    init_gen, order_gen = generators(0)
    ref = to_torch(mlp([784, *hidden, 10], generator=init_gen))
    opt = torch.optim.SGD(ref.parameters(), lr=LR, weight_decay=weight_decay)
    idxs = [batches(N_PARITY, 16, order_gen) for _ in range(cfg.epochs)]
    total = sum(map(len, idxs))
    factor = (lambda step: 1.0) if schedule == "constant" else (lambda step: 1 - step / total)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    ref_losses = []
    for epoch_idxs in idxs:
        ref_losses += _reference_epoch(ref, sample.x, sample.y, epoch_idxs, weight_decay, opt, sched)
    assert len(steps) == len(ref_losses) == total
    assert max(abs(a - b) for a, b in zip(steps, ref_losses)) <= 1e-5


# --- the starting point and numerical stability ---------------------------------------------------


@pytest.mark.parametrize("hidden", [(), (30,)], ids=["784-10", "784-30-10"])
def test_initial_loss_is_near_chance(splits, hidden):
    hist = train(RunConfig(hidden=hidden, epochs=1), splits)["history"]
    assert abs(hist["train_loss"][0] - math.log(10)) < 0.1
    assert abs(hist["valid_loss"][0] - math.log(10)) < 0.1


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_log_softmax_is_shift_invariant(dtype):
    """log_softmax(x + c) = log_softmax(x): with whole-number logits, x + 1e4 is exact in float32, so a
    stable log-softmax, (x - max) - log(sum(exp(x - max))), gives identical results for both."""
    x = torch.randint(-8, 9, (16, 10), generator=torch.Generator().manual_seed(3)).to(dtype)
    shifted, plain = modules.log_softmax(x + 1e4), modules.log_softmax(x)
    assert torch.isfinite(shifted).all()
    err = (shifted - plain).abs().max().item()
    assert err <= (1e-6 if dtype == torch.float32 else 1e-12), f"shifting the logits by 1e4 moved log-softmax by {err:.3g}"


BIG = 1e4
EXTREME = {  # name: (logits, targets)
    "target-is-max": ([[BIG, -BIG] + [0] * 8], [0]),
    "target-is-min": ([[BIG, -BIG] + [0] * 8], [1]),
    "all-equal-high": ([[BIG] * 10, [BIG] * 10], [3, 7]),
    "all-equal-low": ([[-BIG] * 10, [-BIG] * 10], [0, 9]),
    "random": ((torch.randn(16, 10, generator=torch.Generator().manual_seed(5), dtype=torch.float64) * BIG).tolist(),
               list(range(10)) + list(range(6))),
}  # fmt: skip


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("case", EXTREME, ids=list(EXTREME))
def test_cross_entropy_extreme_logits(case, dtype):
    logits, target = EXTREME[case]
    out, target = torch.tensor(logits, dtype=dtype), torch.tensor(target)
    loss_fn = CrossEntropy()
    loss = loss_fn(out, target)
    grad = loss_fn.backward()

    ref_out = out.double().requires_grad_()  # the same values, computed stably in float64
    ref = F.cross_entropy(ref_out, target)
    ref.backward()

    assert torch.isfinite(loss) and torch.isfinite(grad).all()
    rel, atol = (1e-6, 1e-7) if dtype == torch.float32 else (1e-12, 1e-15)
    loss_err = abs(loss.item() - ref.item())
    grad_err = (grad.double() - ref_out.grad).abs().max().item()
    assert loss_err <= rel * max(1.0, abs(ref.item())), f"loss {loss.item()!r}, stable reference {ref.item()!r}"
    assert grad_err <= atol, f"gradient off by up to {grad_err:.3g}"
    if case.startswith("all-equal"):
        assert loss.item() == pytest.approx(math.log(10), rel=rel)


# --- initialisation -------------------------------------------------------------------------------


def test_linear_init_is_uniform_within_the_nn_linear_bound():
    layer = Linear(784, 1000, generator=torch.Generator().manual_seed(0))
    bound = 1 / math.sqrt(784)
    for name, t in (("weight", layer.weight.data), ("bias", layer.bias.data)):
        assert t.abs().max().item() <= bound, name
        assert t.max().item() > 0.99 * bound and t.min().item() < -0.99 * bound, name  # fills the range
        assert abs(t.std().item() / (bound / math.sqrt(3)) - 1) < 0.05, name
        assert abs(t.mean().item()) < 0.05 * bound, name
    assert layer.weight.data.shape == (784, 1000) and layer.bias.data.shape == (1000,)
    # the weights alone are 784,000 draws: their spread matches the uniform's to well within 1%
    assert abs(layer.weight.data.std().item() / (bound / math.sqrt(3)) - 1) < 0.01


def test_linear_init_is_reproducible():
    def weights(seed):
        layer = Linear(784, 30, generator=torch.Generator().manual_seed(seed))
        return layer.weight.data, layer.bias.data

    (w1, b1), (w2, b2), (w3, _) = weights(0), weights(0), weights(1)
    assert torch.equal(w1, w2) and torch.equal(b1, b2)
    assert not torch.equal(w1, w3)


# --- no autograd in src/ --------------------------------------------------------------------------

BANNED_MODULES = ("torch.nn", "torch.optim", "torch.autograd", "torch.func", "functorch")
BANNED_NAMES = {"requires_grad", "requires_grad_", "autograd", "enable_grad", "retain_grad", "grad_fn"}


def _banned_module(name: str) -> bool:
    return any(name == m or name.startswith(m + ".") for m in BANNED_MODULES)


def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def _is_const(args: list[ast.expr], value: bool) -> bool:
    return len(args) == 1 and isinstance(args[0], ast.Constant) and args[0].value is value


def autograd_uses(source: str, filename: str = "<snippet>") -> list[str]:
    """`file:line: what` for every use of torch.nn, torch.optim or autograd in `source`."""
    found = []

    def flag(node, what):
        found.append(f"{filename}:{node.lineno}: {what}")

    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _banned_module(alias.name):
                    flag(node, f"import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                if _banned_module(node.module) or _banned_module(full) or alias.name in BANNED_NAMES:
                    flag(node, f"from {node.module} import {alias.name}")
                if node.module.split(".")[0] == "fastai" and alias.name == "*":
                    flag(node, f"from {node.module} import *")
        elif isinstance(node, ast.Attribute):
            if node.attr in BANNED_NAMES:
                flag(node, f".{node.attr}")
            elif _banned_module(_dotted(node)) and not _banned_module(_dotted(node.value)):
                flag(node, _dotted(node))  # torch.nn.functional.relu: flagged once, at torch.nn
        elif isinstance(node, ast.Name) and node.id in BANNED_NAMES:
            flag(node, node.id)
        elif isinstance(node, ast.keyword) and node.arg == "requires_grad":
            found.append(f"{filename}:{node.value.lineno}: requires_grad=")
        elif isinstance(node, ast.Call):
            name = _dotted(node.func).rsplit(".", 1)[-1]
            args = node.args + [k.value for k in node.keywords]
            if name == "set_grad_enabled" and not _is_const(args, False):
                flag(node, "set_grad_enabled(...) not False")
            if name == "inference_mode" and args and not _is_const(args, True):
                flag(node, "inference_mode(...) not True")
    return found


def test_src_uses_no_autograd_nn_or_optim():
    files = sorted(SRC.rglob("*.py"))
    assert any(f.name == "modules.py" for f in files)
    found = [v for f in files for v in autograd_uses(f.read_text(), str(f.relative_to(SRC.parent)))]
    assert not found, "autograd / torch.nn / torch.optim used in src/:\n" + "\n".join(found)


OFFENDING = [
    "import torch.nn as nn",
    "import torch.nn.functional as F",
    "from torch import nn",
    "from torch.nn import functional",
    "from torch.nn.functional import cross_entropy",
    "import torch.optim",
    "from torch import optim",
    "from torch.autograd import grad",
    "y = torch.nn.functional.relu(x)",
    "torch.optim.SGD(params, lr=0.1)",
    "g = torch.autograd.grad(y, x)",
    "from fastai.vision.all import *",
    "w = torch.zeros(3, requires_grad=True)",
    "w.requires_grad_()",
    "w.requires_grad = True",
    "with torch.enable_grad():\n    pass",
    "torch.set_grad_enabled(True)",
    "y.retain_grad()",
    "print(y.grad_fn)",
    "with torch.inference_mode(False):\n    pass",
]


@pytest.mark.parametrize("snippet", OFFENDING)
def test_autograd_checker_catches(snippet):
    assert autograd_uses(snippet)


def test_autograd_checker_allows_the_engine_idioms():
    clean = (
        "import torch\nfrom torch import Tensor\nfrom fastai.data.block import DataBlock\n"
        "with torch.inference_mode(), torch.no_grad():\n    model.backward(loss.backward())\n"
        "torch.set_grad_enabled(False)\np.grad = None\n"
    )
    assert autograd_uses(clean) == []


# --- the training loop ----------------------------------------------------------------------------


def test_training_runs_with_autograd_off(monkeypatch, splits):
    seen = []
    backward = CrossEntropy.backward

    def spy(self):
        seen.append((torch.is_inference_mode_enabled(), torch.is_grad_enabled()))
        return backward(self)

    monkeypatch.setattr(modules.CrossEntropy, "backward", spy)
    train(RunConfig(hidden=(30,), epochs=1, max_train=64), splits)
    assert len(seen) == 64 // 16
    assert all(inference and not grad for inference, grad in seen), seen


@pytest.mark.parametrize(
    "cfg",
    [
        RunConfig(objective="mse-digit", hidden=(), lr=1e6, epochs=2),
        RunConfig(objective="cross-entropy", hidden=(30,), lr=1e30, epochs=2),
    ],
    ids=["mse-digit-lr1e6", "cross-entropy-lr1e30"],
)
def test_divergence_is_recorded_cleanly(splits, cfg):
    result = train(cfg, splits)
    assert result["diverged"] is True
    assert result["final"] is None
    assert set(result["diverged_at"]) == {"epoch", "step"} and result["diverged_at"]["epoch"] == 1
    assert result["diverged_at"]["step"] == len(result["history"]["step_loss"])
    for name, values in result["history"].items():
        assert all(math.isfinite(v) for v in values), name


def test_same_config_gives_identical_runs(splits):
    cfg = RunConfig(hidden=(30,), epochs=2, max_train=1000)
    a, b = train(cfg, splits), train(cfg, splits)
    assert a["history"] == b["history"]
    assert a["final"] == b["final"] and a["valid_pred"] == b["valid_pred"]


def test_a_run_stopped_early_is_the_start_of_the_full_run(splits):
    """`stop_after` ends the run after that epoch with the learning rate still falling as for `epochs`:
    its history is the full run's up to there, unlike a shorter run, whose rate falls faster."""
    full = train(RunConfig(hidden=(30,), epochs=3, max_train=500), splits)
    stopped = train(RunConfig(hidden=(30,), epochs=3, max_train=500, stop_after=1), splits)
    shorter = train(RunConfig(hidden=(30,), epochs=1, max_train=500), splits)
    for key in ("train_loss", "valid_loss", "valid_acc"):
        assert stopped["history"][key] == full["history"][key][:2], key
    assert stopped["history"]["step_loss"] == full["history"]["step_loss"][: len(stopped["history"]["step_loss"])]
    assert stopped["final"]["valid"]["loss"] == full["history"]["valid_loss"][1]
    assert shorter["history"]["valid_loss"][1] != stopped["history"]["valid_loss"][1]
    assert RunConfig(epochs=3, stop_after=3) == RunConfig(epochs=3)  # stopping at the end is no early stop
    for bad in (0, 4, 1.5):
        with pytest.raises(UserError, match="stop_after"):
            RunConfig(epochs=3, stop_after=bad)


@pytest.mark.parametrize("name", ["mse-digit", "mse-shuffled"])
def test_a_regression_target_predicts_its_own_digit(name):
    obj = objective(name)
    digits = torch.arange(10)
    assert torch.equal(obj.predict(obj.targets(digits, torch.float32)), digits)
    values = obj.targets(digits, torch.float32).squeeze(1)
    assert sorted(values.tolist()) == list(range(10))  # the digits' own values, shuffled or not
