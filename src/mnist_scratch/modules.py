"""Layers and losses with hand-written backward passes: tensor operations only, no autograd.

In the style of fastai course22p2's `03_backprop`: calling a module remembers its input and output;
`backward(grad)` takes the gradient of the loss with respect to the module's output, stores the
gradients of its parameters and returns the gradient with respect to its input.
"""

import math

import torch
from torch import Tensor


class Parameter:
    """A trainable tensor and the gradient the last backward pass left for it."""

    def __init__(self, data: Tensor):
        self.data = data
        self.grad: Tensor | None = None


class Module:
    """Base class: `__call__` runs `forward` and keeps `inp` and `out` for `backward`."""

    def __call__(self, x: Tensor) -> Tensor:
        self.inp = x
        self.out = self.forward(x)
        return self.out

    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def backward(self, grad: Tensor) -> Tensor:
        raise NotImplementedError

    def parameters(self) -> list[Parameter]:
        return []


class Linear(Module):
    """`x @ weight + bias`, weight stored as (n_in, n_out), initialised as `torch.nn.Linear` does.

    Column j of `weight` holds output unit j's weights, one per input: for a first layer,
    `weight[:, j].reshape(28, 28)` is the picture unit j responds to. `weight.T` is nn.Linear's
    (n_out, n_in) layout, which the tests' `to_torch` and anything recording weights "as nn.Linear
    stores them" use. The (n_in, n_out) layout is the faster one here: the three products of a
    batch-16 step took 12.1 µs for a 784 -> 10 layer against 13.3 µs with nn.Linear's layout used
    transposed, and 16.6 against 21.1 µs for 784 -> 30 (one thread; `benchmarks/bench_ops.py`).

    nn.Linear calls `kaiming_uniform_(a=sqrt(5))`: bound = gain * sqrt(3 / fan_in) with
    gain = sqrt(2 / (1 + a**2)) = sqrt(1/3), so bound = 1 / sqrt(fan_in); its bias is uniform in
    the same ±1 / sqrt(fan_in).

    `input_grad=False` is for a first layer, whose input is data: `backward` then skips the
    (batch x n_in) product nobody needs and returns None.
    """

    def __init__(self, n_in: int, n_out: int, bias: bool = True, *, input_grad: bool = True,
                 generator=None, dtype=torch.float32):
        self.input_grad = input_grad
        bound = 1 / math.sqrt(n_in)

        def uniform(*shape):
            return (torch.rand(*shape, generator=generator, dtype=dtype) * 2 - 1) * bound

        self.weight = Parameter(uniform(n_in, n_out))
        self.bias = Parameter(uniform(n_out)) if bias else None

    def forward(self, x):
        if self.bias is None:
            return x @ self.weight.data
        return torch.addmm(self.bias.data, x, self.weight.data)  # bias + x @ weight, in one call

    def backward(self, grad):
        self.weight.grad = self.inp.T @ grad
        if self.bias is not None:
            self.bias.grad = grad.sum(0)
        return grad @ self.weight.data.T if self.input_grad else None

    def parameters(self):
        return [self.weight] + ([self.bias] if self.bias is not None else [])


class ReLU(Module):
    """`max(x, 0)`. Its slope is 1 where the output is positive and 0 elsewhere: `sign(output)`, which
    as a float multiplies faster than the boolean mask `input > 0` (no dtype conversion)."""

    def forward(self, x):
        return x.clamp_min(0.0)

    def backward(self, grad):
        return grad * self.out.sign()


class Sequential(Module):
    """Layers applied in order; backward runs them in reverse."""

    def __init__(self, *layers: Module):
        self.layers = layers

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def backward(self, grad):
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
        return grad

    def parameters(self):
        return [p for layer in self.layers for p in layer.parameters()]


def mlp(sizes: list[int], bias: bool = True, *, generator=None, dtype=torch.float32) -> Sequential:
    """Linear layers between consecutive `sizes` with a ReLU between each pair.

    `[784, 10]` is logistic regression (multinomial: softmax on top of one linear layer);
    `[784, 30, 10]` is the assignment's two-layer network. The first layer's input is data, so
    `backward` returns None.
    """
    layers: list[Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        if i:
            layers.append(ReLU())
        layers.append(Linear(n_in, n_out, bias, input_grad=i > 0, generator=generator, dtype=dtype))
    return Sequential(*layers)


class Loss:
    """A loss: `loss(outputs, targets)` returns the mean loss; `backward()` its gradient w.r.t. outputs.

    Outputs are (batch, outputs). A stack of runs (`stacked.py`) passes (runs, batch, outputs) and gets
    one mean per run: the losses work along the last two dimensions only.
    """

    def __call__(self, out: Tensor, target: Tensor) -> Tensor:
        self.out, self.target = out, target
        return self.forward(out, target)


def log_softmax(x: Tensor) -> Tensor:
    """Row-wise log-softmax with the log-sum-exp trick: subtracting the row max keeps exp finite.

    log softmax(x) = x - m - log(sum(exp(x - m))) with m = max(x); the shifted logits are formed
    first, so adding a large m back never rounds the result (logits of 1e4 stay exact in float32).
    A row is the last dimension.
    """
    z = x - x.amax(dim=-1, keepdim=True)
    return z - z.exp().sum(dim=-1, keepdim=True).log()


class CrossEntropy(Loss):
    """Mean negative log-likelihood of integer class targets under softmax(outputs)."""

    def __init__(self):
        self.minus_one = torch.empty(0)  # the -1 subtracted at each row's target, kept between steps

    def forward(self, out, target):
        self.logp, self.index = log_softmax(out), target.unsqueeze(-1)
        return -self.logp.gather(-1, self.index).mean((-2, -1))

    def backward(self):
        grad = self.logp.exp()  # softmax, minus 1 at each row's target:
        if self.minus_one.shape != self.index.shape or self.minus_one.dtype != grad.dtype:
            self.minus_one = grad.new_full(self.index.shape, -1.0)
        grad.scatter_add_(-1, self.index, self.minus_one)
        return grad.div_(self.index.shape[-2])  # the batch size


class MSE(Loss):
    """Mean over all elements of (outputs - targets)**2, as `torch.nn.functional.mse_loss`."""

    def forward(self, out, target):
        return ((out - target) ** 2).mean((-2, -1))

    def backward(self):
        batch, n_out = self.out.shape[-2:]
        return 2 * (self.out - self.target) / (batch * n_out)
