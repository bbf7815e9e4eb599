"""Plain stochastic gradient descent with weight decay, written out."""

from .modules import Parameter


class SGD:
    """`p -= lr * (grad + weight_decay * p)` for every parameter, biases included.

    Weight decay is the L2 penalty `weight_decay / 2 * ||p||**2` added to the loss, so its gradient
    `weight_decay * p` is added to the gradient, as `torch.optim.SGD(weight_decay=...)` does. For
    plain SGD this is the same update as decoupled decay, `p *= 1 - lr * weight_decay` before the
    gradient step; the two differ only under adaptive or momentum methods (AdamW's reason to be).
    """

    def __init__(self, params: list[Parameter], lr: float, weight_decay: float = 0.0):
        self.params, self.lr, self.weight_decay = params, lr, weight_decay

    def step(self) -> None:
        for p in self.params:
            grad = p.grad.add(p.data, alpha=self.weight_decay) if self.weight_decay else p.grad
            p.data.add_(grad, alpha=-self.lr)
