"""Autograd as the oracle for our hand-written gradients (used only by the tests and the report).

Each check runs one of our modules or losses forward and backward, runs the same computation through
`torch.nn` / `torch.nn.functional` with autograd, and compares the gradients in float64, Karpathy's
`cmp` style: the largest absolute difference between ours and autograd's.
"""

import torch
import torch.nn.functional as F
from torch import nn

from mnist_scratch.modules import MSE, CrossEntropy, Linear, ReLU, Sequential, mlp

DTYPE = torch.float64
BATCH = 16


def cmp(name: str, ours: torch.Tensor, ref: torch.Tensor) -> dict:
    """One row of the table: the largest absolute difference between our gradient and autograd's."""
    assert ours.shape == ref.shape, f"{name}: shape {tuple(ours.shape)} != {tuple(ref.shape)}"
    return {"check": name, "max_abs_diff": (ours - ref).abs().max().item()}


def to_torch(model: Sequential) -> nn.Sequential:
    """The same network as `torch.nn` layers with copies of our weights (nn's weight is our weight.T)."""
    layers = []
    for layer in model.layers:
        if isinstance(layer, ReLU):
            layers.append(nn.ReLU())
            continue
        n_in, n_out = layer.weight.data.shape
        lin = nn.Linear(n_in, n_out, bias=layer.bias is not None, dtype=layer.weight.data.dtype)
        with torch.no_grad():
            lin.weight.copy_(layer.weight.data.T)
            if layer.bias is not None:
                lin.bias.copy_(layer.bias.data)
        layers.append(lin)
    return nn.Sequential(*layers)


def leaf(t: torch.Tensor) -> torch.Tensor:
    return t.detach().clone().requires_grad_()


def _layer_checks(gen: torch.Generator) -> list[dict]:
    rows = []
    for bias in (True, False):
        ours = Linear(784, 30, bias, generator=gen, dtype=DTYPE)
        x = torch.randn(BATCH, 784, generator=gen, dtype=DTYPE)
        g = torch.randn(BATCH, 30, generator=gen, dtype=DTYPE)  # an arbitrary upstream gradient
        ours(x)
        dx = ours.backward(g)
        x_ref, w_ref = leaf(x), leaf(ours.weight.data.T)
        b_ref = leaf(ours.bias.data) if bias else None
        F.linear(x_ref, w_ref, b_ref).backward(g)
        name = f"Linear ({'with' if bias else 'no'} bias)"
        rows += [cmp(f"{name}: input", dx, x_ref.grad), cmp(f"{name}: weight", ours.weight.grad, w_ref.grad.T)]
        if bias:
            rows.append(cmp(f"{name}: bias", ours.bias.grad, b_ref.grad))

    relu = ReLU()
    x = torch.randn(BATCH, 30, generator=gen, dtype=DTYPE)
    g = torch.randn(BATCH, 30, generator=gen, dtype=DTYPE)
    relu(x)
    x_ref = leaf(x)
    F.relu(x_ref).backward(g)
    rows.append(cmp("ReLU: input", relu.backward(g), x_ref.grad))
    return rows


def _loss_checks(gen: torch.Generator) -> list[dict]:
    y = torch.randint(0, 10, (BATCH,), generator=gen)
    cases = [  # name, our loss, reference, outputs, targets
        ("CrossEntropy", CrossEntropy(), F.cross_entropy, torch.randn(BATCH, 10, generator=gen, dtype=DTYPE), y),
        ("MSE, one output (digit)", MSE(), F.mse_loss, torch.randn(BATCH, 1, generator=gen, dtype=DTYPE) * 3 + 4,
         y.to(DTYPE).unsqueeze(1)),
        ("MSE, ten outputs (one-hot)", MSE(), F.mse_loss, torch.randn(BATCH, 10, generator=gen, dtype=DTYPE),
         torch.eye(10, dtype=DTYPE)[y]),
    ]  # fmt: skip
    rows = []
    for name, loss, ref_loss, out, target in cases:
        loss(out, target)
        out_ref = leaf(out)
        ref_loss(out_ref, target).backward()
        rows.append(cmp(f"{name}: input", loss.backward(), out_ref.grad))
    return rows


def _model_checks(gen: torch.Generator) -> list[dict]:
    rows = []
    for sizes in ([784, 10], [784, 30, 10]):
        ours = mlp(sizes, generator=gen, dtype=DTYPE)
        ref = to_torch(ours)
        x = torch.rand(BATCH, 784, generator=gen, dtype=DTYPE)  # pixel-like inputs in [0, 1]
        y = torch.randint(0, 10, (BATCH,), generator=gen)
        loss = CrossEntropy()
        loss(ours(x), y)
        ours.backward(loss.backward())
        F.cross_entropy(ref(x), y).backward()
        arch = "-".join(map(str, sizes))
        linears = [(i, l) for i, l in enumerate(ours.layers) if isinstance(l, Linear)]
        for n, (i, layer) in enumerate(linears, 1):
            rows.append(cmp(f"Model {arch}: Linear {n} weight", layer.weight.grad, ref[i].weight.grad.T))
            rows.append(cmp(f"Model {arch}: Linear {n} bias", layer.bias.grad, ref[i].bias.grad))
    return rows


def gradient_check_table(seed: int = 0) -> list[dict]:
    """Every layer, loss and whole model: max |our gradient - autograd's|, in float64."""
    with torch.inference_mode(False), torch.enable_grad():  # autograd on even if the caller turned it off
        return (
            _layer_checks(torch.Generator().manual_seed(seed))
            + _loss_checks(torch.Generator().manual_seed(seed + 1))
            + _model_checks(torch.Generator().manual_seed(seed + 2))
        )


if __name__ == "__main__":
    for row in gradient_check_table():
        print(f"{row['check']:<40} {row['max_abs_diff']:.2e}")
