"""Whether trained modules run in another env (more or fewer agents): ``eval`` overrides and curriculum stages.

A module transfers when the one its config builds for the new env has the same
parameter shapes as the trained one: shared parameters over local observations
(the default actor), the communicating actor (``model.communication: attention``), the attention critic (``model.critic: attention``) and the
local critic do; per-agent parameters, one-hot agent ids and an MLP critic over
concatenated inputs are sized by the agent count and do not. The error says which.
"""
from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from torchrl_mappo.config import ConfigError, ModelConfig


def first_mismatch(trained: Mapping[str, torch.Tensor], module: nn.Module) -> str | None:
    """``"name: trained [a, b], this env [c, d]"`` for the first entry whose shape differs, else ``None``."""
    here = module.state_dict()
    for name, value in trained.items():
        if name not in here:
            return f"{name}: in the trained module only"
        if tuple(value.shape) != tuple(here[name].shape):
            return f"{name}: trained {list(value.shape)}, this env {list(here[name].shape)}"
    missing = [n for n in here if n not in trained]
    return f"{missing[0]}: not in the trained module" if missing else None


def why(kind: str, cfg: ModelConfig) -> str:
    """What ties a ``kind`` (``actor``/``critic``) built from ``cfg`` to one env size, and the fix."""
    if not cfg.share_params:
        return f"model.share_params: false gives one {kind} per agent; train with model.share_params: true"
    if getattr(cfg, f"{kind}_agent_id"):
        return f"model.{kind}_agent_id sizes the {kind}'s input by the agent count; train without it"
    if kind == "critic" and cfg.critic == "mlp" and cfg.centralized and cfg.critic_input != "local":
        return (f"model.critic: mlp (critic_input {cfg.critic_input}) sizes its input by the agent count; "
                "train with model.critic: attention")
    if kind == "critic" and cfg.critic_joint_actions:
        return "model.critic_joint_actions sizes the critic's input by the agent count"
    return "the observations (or the global state) have another size in this env"


def check_fits(kind: str, group: str, cfg: ModelConfig, trained: Mapping[str, torch.Tensor],
               module: nn.Module, where: str, source: str = "trained") -> None:
    """Raise a one-line :class:`ConfigError` (prefixed with ``where``) unless ``trained`` (the ``source``
    module's weights) fits ``module``, the one ``cfg`` builds for the new env."""
    problem = first_mismatch(trained, module)
    if problem is not None:
        raise ConfigError(f"{where}: the {source} {kind} of group {group!r} cannot run in this env: "
                          f"{why(kind, cfg)} ({problem})")
