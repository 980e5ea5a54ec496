"""The non-finite guard: no NaN or infinity ever reaches the weights.

A minibatch step whose loss or gradient is not finite is skipped before the
optimizer runs; a step that leaves non-finite weights anyway (a finite
gradient times an absurd learning rate) is rolled back to the weights and
optimizer state of the start of the update. Either way the step counts;
``max_in_a_row`` skipped steps in a row stop training with
:class:`NonFiniteLossError`.
"""
from __future__ import annotations

import copy
import math
import warnings
from typing import Mapping, Sequence

import torch
from tensordict import TensorDictBase
from torchrl.objectives import LossModule


class NonFiniteLossError(RuntimeError):
    """Too many consecutive updates had a non-finite loss, gradient or resulting weights."""


class NonFiniteGuard:
    """Counts skipped steps and holds the start-of-update copy used to roll a step back."""

    def __init__(self, max_in_a_row: int) -> None:
        self.max_in_a_row = max_in_a_row
        self.streak = 0
        self._last_good: dict[str, tuple[list[torch.Tensor], list[dict]]] = {}

    def remember(self, losses: Mapping[str, LossModule],
                 optimizers: Mapping[str, Sequence[torch.optim.Optimizer]]) -> None:
        """Copy every group's parameters and optimizer states (once per update: cheap)."""
        self._last_good = {
            g: ([p.detach().clone() for p in loss.parameters()],
                [copy.deepcopy(opt.state_dict()) for opt in optimizers[g]])
            for g, loss in losses.items()
        }

    def rollback(self, group: str, loss: LossModule, opts: Sequence[torch.optim.Optimizer]) -> None:
        params, opt_states = self._last_good[group]
        with torch.no_grad():
            for p, saved in zip(loss.parameters(), params):
                p.copy_(saved)
        for opt, saved in zip(opts, opt_states):
            opt.load_state_dict(copy.deepcopy(saved))

    @staticmethod
    def first_bad(out: TensorDictBase, total: torch.Tensor, norms: list[float], terms: Sequence[str]) -> str | None:
        """The first non-finite loss term (or ``"gradient"``), ``None`` if all is finite."""
        if torch.isfinite(total).all() and all(math.isfinite(n) for n in norms):
            return None
        for term in terms:
            if term in out.keys() and not torch.isfinite(out[term]).all():
                return term
        return "gradient"

    @staticmethod
    def weights_finite(opts: Sequence[torch.optim.Optimizer]) -> bool:
        """Whether every weight the optimizers step is finite.

        A finite L2 norm proves its tensor finite (a NaN or an infinity makes it non-finite) and
        costs a fraction of the max-norm on a CPU; only where it overflowed (huge but finite
        weights) or is not finite does the exact max-norm decide."""
        params = [p for opt in opts for pg in opt.param_groups for p in pg["params"]]
        if bool(torch.isfinite(torch.stack(torch._foreach_norm(params, 2.0))).all()):
            return True
        return bool(torch.isfinite(torch.stack(torch._foreach_norm(params, float("inf")))).all())

    def passed(self) -> None:
        self.streak = 0

    def skip(self, group: str, term: str, opts: Sequence[torch.optim.Optimizer], iteration: int) -> None:
        """Drop this step's gradients and count it; raise once ``max_in_a_row`` are reached."""
        for opt in opts:
            opt.zero_grad(set_to_none=True)
        self.streak += 1
        warnings.warn(
            f"iteration {iteration}: group {group!r}: non-finite {term}; update skipped "
            f"({self.streak} in a row, stop at {self.max_in_a_row})",
            RuntimeWarning, stacklevel=3,
        )
        if self.streak >= self.max_in_a_row:
            raise NonFiniteLossError(
                f"{self.streak} consecutive updates with a non-finite {term} "
                f"(group {group!r}, iteration {iteration}); training stopped with the last finite weights"
            )


def clip_grad_norm(params: Sequence[torch.Tensor], max_norm: float) -> float:
    """``torch.nn.utils.clip_grad_norm_(params, max_norm)`` for parameters on one device and
    dtype, with its Python around the two foreach kernels left out: the same per-tensor norms,
    total and in-place scaling (bit-identical, tests/test_guard.py), returned as a float.

    Other parameters (several devices or dtypes, none with a gradient) go to torch's function.
    """
    grads = [p.grad for p in params if p.grad is not None]
    if not grads or any(g.device != grads[0].device or g.dtype != grads[0].dtype
                        or type(g) is not torch.Tensor or g.is_sparse for g in grads):
        return float(torch.nn.utils.clip_grad_norm_(params, max_norm))
    with torch.no_grad():
        total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads, 2.0)), 2.0)
        torch._foreach_mul_(grads, torch.clamp(float(max_norm) / (total + 1e-6), max=1.0))
    return float(total)
