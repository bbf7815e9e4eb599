"""What a network is trained to output: the loss, its targets, and how outputs become a digit."""

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from .errors import UserError
from .modules import MSE, CrossEntropy, Loss


@dataclass(frozen=True)
class Objective:
    n_out: int
    loss: Callable[[], Loss]
    targets: Callable[[Tensor, torch.dtype], Tensor]  # labels, dtype -> what the loss compares with
    predict: Callable[[Tensor], Tensor]  # outputs -> predicted digit (int64)


def _argmax(out: Tensor) -> Tensor:
    return out.argmax(dim=1)


def _nearest_digit(out: Tensor) -> Tensor:
    return out.squeeze(1).round().clamp(0, 9).long()


# The digits 0-9 standardised: mean 4.5 and standard deviation sqrt(8.25) over ten equally common digits.
DIGIT_MEAN, DIGIT_STD = 4.5, 8.25**0.5

# The regression's control: digit d is trained towards the value SHUFFLED[d], a fixed shuffle of 0-9 in
# which no digit keeps its own value (torch.randperm(10) with a generator seeded 1). The targets have
# the same values as the digits themselves, in another order on the line.
SHUFFLED = (5, 6, 1, 2, 0, 8, 9, 3, 7, 4)
UNSHUFFLED = tuple(SHUFFLED.index(v) for v in range(10))  # value -> digit


OBJECTIVES = {
    # the classifier: ten scores, softmax, cross-entropy
    "cross-entropy": Objective(10, CrossEntropy, lambda y, dtype: y, _argmax),
    # regression: one number, the digit's value, squared error; the prediction is the nearest digit
    "mse-digit": Objective(
        1,
        MSE,
        lambda y, dtype: y.to(dtype).unsqueeze(1),
        _nearest_digit,
    ),
    # the same with standardised targets (y - 4.5) / 2.87: a robustness check of the regression
    "mse-digit-std": Objective(
        1,
        MSE,
        lambda y, dtype: ((y.to(dtype) - DIGIT_MEAN) / DIGIT_STD).unsqueeze(1),
        lambda out: _nearest_digit(out * DIGIT_STD + DIGIT_MEAN),
    ),
    # the same with the digits' values shuffled: does the order of the digits on the line matter?
    "mse-shuffled": Objective(
        1,
        MSE,
        lambda y, dtype: torch.tensor(SHUFFLED, dtype=dtype)[y].unsqueeze(1),
        lambda out: torch.tensor(UNSHUFFLED)[_nearest_digit(out)],
    ),
    # the control: ten outputs and squared error against one-hot targets
    "mse-onehot": Objective(10, MSE, lambda y, dtype: torch.eye(10, dtype=dtype)[y], _argmax),
}


def objective(name: str) -> Objective:
    if name not in OBJECTIVES:
        raise UserError(f"unknown objective {name!r}; choose from {', '.join(OBJECTIVES)}")
    return OBJECTIVES[name]
