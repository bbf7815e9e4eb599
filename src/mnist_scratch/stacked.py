"""Several runs of one architecture as one model: every parameter stacked along a first dimension.

A step of these small networks costs its dozens of tensor operations more than its arithmetic (a
batch-16 step of 784-30-10 takes about twice its matrix products alone: `benchmarks/README.md`).
Stacking S runs pays for each operation once per step instead of S times. Run s's weight is
`weight[s]` of a (S, n_in, n_out) stack; its batch is `x[s]` of a (S, B, n_in) stack. `ReLU`,
`Sequential` and the losses of `modules.py` work on stacks as they are, since they act element by
element or along the last two dimensions; `StackedLinear` and `StackedSGD` are the stacked `Linear`
and `SGD`.

**Bit for bit.** Each run's numbers are exactly those of the run trained alone, whatever shares its
stack: every operation treats each run's slice on its own, in the same order and with the same
rounding (the update is one fused multiply-add, as `Tensor.add_(..., alpha=)` is). A batched matrix
product is the exception to check: `torch.bmm` may round a slice differently from `torch.mm` on it
alone, depending on the BLAS build and the shape (MKL takes another kernel for products of fewer than
400 multiply-adds, for a matrix times a vector, and, side by side, for blocks under 16 columns). No
library documents when the two agree, so `matmul` finds out: the first time it meets a product of a
given shape and memory layout in a process, it computes one of random numbers laid out alike both
ways, and uses the one-call form for that product only if the two agreed bit for bit. Otherwise the
runs are multiplied one by one, which is what each run alone does.
"""

import torch
from torch import Tensor

from .modules import Linear, Module, Parameter, Sequential


class StackedLinear(Module):
    """`Linear` for a stack of runs: weight (S, n_in, n_out), bias (S, 1, n_out).

    The input is (S, B, n_in), one batch per run, or (N, n_in): the same rows for every run (an
    evaluation), which gives (S, N, n_out).

    `same_input`, for a first layer: a label per run, where neighbours with equal labels always get
    the same batch (runs of one seed draw the same batches). Each block of such runs then multiplies
    its one batch by its runs' weights side by side, one product for the block instead of one per
    run, forward and for the weight gradient: fewer, wider products, faster per run. For that the
    weight is stored as (n_in, S, n_out) in memory, seen as (S, n_in, n_out) like any other.
    """

    def __init__(self, layers: list[Linear], same_input: list | None = None):
        self.input_grad = layers[0].input_grad
        weight = torch.stack([layer.weight.data for layer in layers])
        self.same_input = None  # blocks only pay and round as alone from NARROW columns (see `matmul`)
        if same_input is not None and not self.input_grad and weight.shape[2] >= NARROW:
            self.same_input, weight = list(same_input), _side_by_side(weight)
        self.weight = Parameter(weight)
        self.bias = None if layers[0].bias is None else Parameter(torch.stack([layer.bias.data for layer in layers]).unsqueeze(1))

    def forward(self, x):
        bias = None if self.bias is None else self.bias.data
        if self.same_input is not None and x.dim() == 3:
            return by_blocks(x, self.weight.data, bias, self.blocks())
        return matmul(x, self.weight.data, bias)

    def backward(self, grad):
        if self.same_input is not None:
            self.weight.grad = weight_grad_by_blocks(self.inp, grad, self.blocks())
        else:
            self.weight.grad = matmul(self.inp.transpose(1, 2), grad)
        if self.bias is not None:
            self.bias.grad = grad.sum(1, keepdim=True)
        return matmul(grad, self.weight.data.transpose(1, 2)) if self.input_grad else None

    def parameters(self):
        return [self.weight] + ([self.bias] if self.bias is not None else [])

    def blocks(self) -> list[tuple[int, int]]:
        """(start, end) of each block of neighbouring runs with the same input."""
        starts = [s for s in range(len(self.same_input)) if s == 0 or self.same_input[s] != self.same_input[s - 1]]
        return list(zip(starts, starts[1:] + [len(self.same_input)]))

    def run(self, s: int) -> Linear:
        """Run s's layer as a `Linear` whose parameters are views of the stack."""
        layer = Linear.__new__(Linear)  # not __init__: no fresh initial weights
        layer.input_grad = self.input_grad
        layer.weight = Parameter(self.weight.data[s])
        layer.bias = None if self.bias is None else Parameter(self.bias.data[s, 0])
        return layer

    def keep(self, index: Tensor) -> None:
        """Keep only the runs `index` (positions in the stack), in that order."""
        for p in self.parameters():
            p.data, p.grad = p.data[index], None
        if self.same_input is not None:
            self.same_input = [self.same_input[s] for s in index.tolist()]
            self.weight.data = _side_by_side(self.weight.data)


def _side_by_side(weight: Tensor) -> Tensor:
    """A (S, n_in, n_out) stack stored as (n_in, S, n_out): each row holds every run's weights for one input."""
    return weight.transpose(0, 1).contiguous().transpose(0, 1)


def stack(models: list[Sequential], same_input: list | None = None) -> Sequential:
    """One model training `models` (equal architectures) side by side, starting from their weights;
    `same_input` labels the models whose batches are always the same (see `StackedLinear`)."""
    return Sequential(*(
        StackedLinear(list(layers), same_input if i == 0 else None) if isinstance(layers[0], Linear)
        else type(layers[0])()  # a ReLU: no parameters
        for i, layers in enumerate(zip(*(m.layers for m in models)))
    ))


def unstack(model: Sequential, s: int) -> Sequential:
    """Run s of a stacked model, as the model it would be alone (its parameters are views of the stack)."""
    return Sequential(*(layer.run(s) if isinstance(layer, StackedLinear) else layer for layer in model.layers))


def keep(model: Sequential, index: Tensor) -> None:
    """Drop every run of a stacked model but those at `index`."""
    for layer in model.layers:
        if isinstance(layer, StackedLinear):
            layer.keep(index)


def select(model: Sequential, index: Tensor) -> Sequential:
    """A new stacked model of the runs at `index` (copies of their parameters); `model` is left as it is."""
    return stack([unstack(model, s) for s in index.tolist()])


class StackedSGD:
    """`SGD` for a stack: run s steps with its own learning rate and weight decay.

    The update is `p.addcmul_(grad, -lr)`, with `-lr` per run: `p + grad * -lr` in one fused
    multiply-add, as `p.add_(grad, alpha=-lr)` computes it for one run (`p.add_(grad * -lr)` would
    round twice: other numbers). With decay, `grad.addcmul(p, decay)` likewise stands for
    `grad.add(p, alpha=decay)`; a run without decay adds p * 0, which changes nothing. That the two
    forms round alike is a property of how torch was compiled, so it is checked as the products are
    (`_exact`); where it fails, each run's slice takes its own `add_`.
    """

    def __init__(self, params: list[Parameter], weight_decays: list[float]):
        self.params = params
        self.decay = torch.tensor(weight_decays).view(-1, 1, 1) if any(weight_decays) else None

    def step(self, lrs: list[float]) -> None:
        minus_lr = torch.tensor([-lr for lr in lrs]).view(-1, 1, 1)
        for p in self.params:
            if _exact("update", (p.data, p.grad, minus_lr, self.decay), _update_at_once, _update_one_by_one):
                lr, decay = _along(minus_lr, p.data), _along(self.decay, p.data)
                grad = p.grad.addcmul(p.data, decay) if decay is not None else p.grad
                p.data.addcmul_(grad, lr)
            else:
                p.data.copy_(_update_one_by_one(p.data, p.grad, minus_lr, self.decay))

    def keep(self, index: Tensor) -> None:
        if self.decay is not None:
            self.decay = self.decay[index]


def _along(factor: Tensor | None, p: Tensor) -> Tensor | None:
    """A per-run (S, 1, 1) factor for parameter `p`: for weights stored side by side (n_in, S, n_out),
    repeated along each run's columns, so that the update runs along whole rows of memory."""
    if factor is None or p.stride(0) >= p.stride(1):
        return factor
    return factor.expand(-1, 1, p.shape[2]).contiguous()


def _update_at_once(p: Tensor, grad: Tensor, minus_lr: Tensor, decay: Tensor | None) -> Tensor:
    """`StackedSGD.step`'s new parameters, computed out of place."""
    minus_lr, decay = _along(minus_lr, p), _along(decay, p)
    return p.addcmul(grad.addcmul(p, decay) if decay is not None else grad, minus_lr)


def _update_one_by_one(p: Tensor, grad: Tensor, minus_lr: Tensor, decay: Tensor | None) -> Tensor:
    """The new parameters as each run's `SGD.step` computes them."""
    updated = []
    for s in range(len(p)):
        g = grad[s].add(p[s], alpha=decay[s].item()) if decay is not None and decay[s] else grad[s]
        updated.append(p[s].add(g, alpha=minus_lr[s].item()))
    return torch.stack(updated)


# --------------------------------------------------------------------------------------------------
# the products, and the check that the one-call forms round as each run alone


NARROW = 16  # columns: a product of one input with every run's weights is computed at least this wide


def matmul(x: Tensor, w: Tensor, bias: Tensor | None = None) -> Tensor:
    """`x[s] @ w[s] (+ bias[s])` for every run s, each rounded as the run's own product rounds it.

    x is (S, m, k), or (m, k) for the same rows in every run; w is (S, k, n); bias (S, 1, n). With
    one x for every run (an evaluation) the runs' weights are multiplied side by side, in one
    product; a run whose n is under `NARROW` columns has its weights padded with zeros to `NARROW`,
    alone as in a group: side by side, MKL rounds a block of fewer than 16 columns otherwise than
    the same block alone, and padded it is also faster. (A training step's products are the
    run's own `Linear` products, unpadded.)
    """
    if x.dim() == 2 and w.shape[2] < NARROW:
        pad = NARROW - w.shape[2]
        padded = (torch.cat([t, t.new_zeros(*t.shape[:2], pad)], dim=2) if t is not None else None for t in (w, bias))
        return matmul(x, *padded)[..., : w.shape[2]]
    if _exact("product", (x, w, bias), _product_at_once, _product_one_by_one):
        return _product_at_once(x, w, bias)
    return _product_one_by_one(x, w, bias)


def _product_at_once(x: Tensor, w: Tensor, bias: Tensor | None) -> Tensor:
    if x.dim() == 2:  # one product, the runs' weights side by side: (m, k) @ (k, S * n)
        S, k, n = w.shape
        wide = w.transpose(0, 1).reshape(k, S * n)
        out = x @ wide if bias is None else torch.addmm(bias.reshape(S * n), x, wide)
        return out.view(len(x), S, n).transpose(0, 1).contiguous()
    return torch.bmm(x, w) if bias is None else torch.baddbmm(bias, x, w)


def _product_one_by_one(x: Tensor, w: Tensor, bias: Tensor | None) -> Tensor:
    """The products as each run alone computes them (`Linear`: `x @ w`, or `addmm` with its bias)."""
    xs = [x] * len(w) if x.dim() == 2 else x
    return torch.stack([_own(x_s, w_s, None if bias is None else bias[s]) for s, (x_s, w_s) in enumerate(zip(xs, w))])


def _own(x: Tensor, w: Tensor, bias: Tensor | None) -> Tensor:
    """One run's product as its `Linear` computes it, its weight laid out as alone (not side by side)."""
    if not (w.is_contiguous() or w.T.is_contiguous()):
        w = w.contiguous()
    return x @ w if bias is None else torch.addmm(bias[0], x, w)


def by_blocks(x: Tensor, w: Tensor, bias: Tensor | None, blocks: list[tuple[int, int]]) -> Tensor:
    """`matmul(x, w, bias)` where the runs of each block (start, end) have the same input, x[start]:
    one product per block, with the block's weights side by side (w is stored so)."""
    kind = ("blocks", tuple(blocks))
    if _exact(kind, (x, w, bias), lambda *o: _blocks_at_once(*o, blocks), lambda *o: _blocks_one_by_one(*o, blocks)):
        return _blocks_at_once(x, w, bias, blocks)
    return matmul(x, w, bias)


def _blocks_at_once(x: Tensor, w: Tensor, bias: Tensor | None, blocks: list[tuple[int, int]]) -> Tensor:
    S, k, n = w.shape
    rows = w.transpose(0, 1)  # (k, S, n), as stored
    out = [x[a] @ rows[:, a:b].reshape(k, -1) if bias is None else
           torch.addmm(bias[a:b].reshape(-1), x[a], rows[:, a:b].reshape(k, -1)) for a, b in blocks]
    return torch.cat(out, dim=1).view(x.shape[1], S, n).transpose(0, 1).contiguous()


def _blocks_one_by_one(x: Tensor, w: Tensor, bias: Tensor | None, blocks: list[tuple[int, int]]) -> Tensor:
    return torch.stack([_own(x[a], w[s], None if bias is None else bias[s]) for a, b in blocks for s in range(a, b)])


def weight_grad_by_blocks(x: Tensor, grad: Tensor, blocks: list[tuple[int, int]]) -> Tensor:
    """`x[s].T @ grad[s]` for every run (x[start] for a block's runs): one product per block, the
    result laid out as the side-by-side weight it updates."""
    kind = ("weight gradient blocks", tuple(blocks))
    if _exact(kind, (x, grad), lambda *o: _grad_blocks_at_once(*o, blocks), lambda *o: _grad_blocks_one_by_one(*o, blocks)):
        return _grad_blocks_at_once(x, grad, blocks)
    return matmul(x.transpose(1, 2), grad)


def _grad_blocks_at_once(x: Tensor, grad: Tensor, blocks: list[tuple[int, int]]) -> Tensor:
    S, B, n = grad.shape
    out = x.new_empty(x.shape[2], S, n)
    by_row = grad.transpose(0, 1)  # (B, S, n)
    for a, b in blocks:  # written straight into the block's columns
        torch.mm(x[a].T, by_row[:, a:b].reshape(B, -1), out=out[:, a:b].view(x.shape[2], -1))
    return out.transpose(0, 1)


def _grad_blocks_one_by_one(x: Tensor, grad: Tensor, blocks: list[tuple[int, int]]) -> Tensor:
    return torch.stack([x[a].T @ grad[s] for a, b in blocks for s in range(a, b)])


_verdicts: dict[tuple, bool] = {}  # per kind of operation and shape and layout of its operands: exact?


def _exact(kind, operands: tuple, at_once, one_by_one) -> bool:
    """Whether `at_once(*operands)` equals `one_by_one(*operands)` bit for bit: found once per process
    for each shape and memory layout of the operands, on random numbers laid out alike."""
    key = (kind, *(None if t is None else (t.shape, t.stride()) for t in operands))
    if key not in _verdicts:
        sample = [_random_like(t) for t in operands]
        _verdicts[key] = torch.equal(at_once(*sample), one_by_one(*sample))
    return _verdicts[key]


def _random_like(t: Tensor | None) -> Tensor | None:
    """Random normal numbers laid out in memory as `t` is: no zeros, so that any difference in the
    order of a product's additions shows (a ReLU's zeros in real data could hide it)."""
    if t is None:
        return None
    return torch.empty_strided(t.shape, t.stride(), dtype=t.dtype).normal_(generator=torch.Generator().manual_seed(0))
