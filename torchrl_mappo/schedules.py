"""Values that move with training progress: learning rates, entropy coefficients, the log-std.

Progress is the fraction of the frame budget already used; every schedule
is linear in it. :meth:`Schedules.apply` sets all of them at once and returns
what it set (those become metrics columns).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
from tensordict.nn import AddStateIndependentNormalScale
from torch import nn
from torchrl.objectives import LossModule

LR_SCHEDULES = ("constant", "linear")


def log_std_params(actor: nn.Module) -> list[tuple[nn.Parameter, float]]:
    """The actor's state-independent log-std parameters, each with its current mean value."""
    return [
        (m.state_independent_scale, float(m.state_independent_scale.detach().mean()))
        for m in actor.modules() if isinstance(m, AddStateIndependentNormalScale)
    ]


class Schedules:
    """Linear schedules over ``total_frames``, for every learning group.

    Args:
        total_frames: the frame budget (progress = frames / total_frames).
        optimizers: ``{group: [optimizers]}``; with ``lr_schedule="linear"``
            every parameter group's learning rate goes from its initial
            value to 0.
        losses: ``{group: loss}``; groups named in ``entropy_coeff_end`` get
            their ``entropy_coeff`` moved linearly to that value.
        actors: ``{group: actor}``; with ``log_std_end`` their
            state-independent log-std goes from its initial value to it (it
            is then scheduled, not learned: ``requires_grad`` is turned off).
    """

    def __init__(
        self,
        total_frames: int | None,
        optimizers: Mapping[str, Sequence[torch.optim.Optimizer]],
        losses: Mapping[str, LossModule],
        actors: Mapping[str, nn.Module],
        *,
        lr_schedule: str = "constant",
        entropy_coeff_end: Mapping[str, float | None] | None = None,
        log_std_end: float | None = None,
    ) -> None:
        if lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be 'constant' or 'linear', got {lr_schedule!r}")
        self.total_frames = total_frames
        self.optimizers, self.losses = optimizers, losses
        self.lr_schedule = lr_schedule
        self.initial_lrs = {
            g: [[pg["lr"] for pg in o.param_groups] for o in opts] for g, opts in optimizers.items()
        }
        ends = entropy_coeff_end or {}
        self.entropy = {g: (float(loss.entropy_coeff), ends[g]) for g, loss in losses.items()
                        if ends.get(g) is not None}
        self.log_std_end = log_std_end
        self.log_std_start = {g: log_std_params(a) for g, a in actors.items()}
        if log_std_end is not None:
            for params in self.log_std_start.values():
                for p, _ in params:
                    p.requires_grad_(False)

    def apply(self, frames: int) -> dict[str, float]:
        """Set every scheduled value for ``frames`` frames used; returns ``{metric: value}``."""
        if not self.total_frames:
            return {}
        progress = min(1.0, frames / self.total_frames)
        out: dict[str, float] = {}
        if self.lr_schedule == "linear":
            for g, opts in self.optimizers.items():
                for opt, lrs in zip(opts, self.initial_lrs[g]):
                    for pg, lr0 in zip(opt.param_groups, lrs):
                        pg["lr"] = lr0 * (1.0 - progress)
                out[f"{g}/lr"] = opts[0].param_groups[0]["lr"]
        for g, (start, end) in self.entropy.items():
            value = start + (end - start) * progress
            self.losses[g].entropy_coeff.fill_(value)
            out[f"{g}/entropy_coeff"] = value
        if self.log_std_end is not None:
            for g, params in self.log_std_start.items():
                for p, start in params:
                    value = start + (self.log_std_end - start) * progress
                    with torch.no_grad():
                        p.fill_(value)
                    out[f"{g}/log_std"] = value
        return out
