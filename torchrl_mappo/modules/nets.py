"""Plain ``nn.Module`` building blocks; the TensorDict wiring lives in actor.py/critic.py."""
from __future__ import annotations

import torch
from torch import nn
from torchrl.modules import MLP, MultiAgentMLP

from torchrl_mappo.config import ModelConfig

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "leaky_relu": nn.LeakyReLU,
}


def _mlp_kwargs(cfg: ModelConfig) -> dict:
    kwargs = dict(
        num_cells=list(cfg.hidden_sizes),
        activation_class=ACTIVATIONS[cfg.activation],
    )
    if cfg.layer_norm:
        # [Linear -> LayerNorm -> activation] per hidden layer (MAPPO spec).
        kwargs["norm_class"] = nn.LayerNorm
        kwargs["norm_kwargs"] = [{"normalized_shape": h} for h in cfg.hidden_sizes]
    return kwargs


def make_mlp(in_features: int, out_features: int, cfg: ModelConfig) -> nn.Module:
    """One MLP on the last dimension (leading dims, the agent dim included, are batch)."""
    return MLP(in_features=in_features, out_features=out_features, **_mlp_kwargs(cfg))


def make_agent_mlp(
    in_features: int,
    out_features: int,
    n_agents: int,
    cfg: ModelConfig,
    *,
    centralized: bool = False,
    share_params: bool = True,
) -> nn.Module:
    """An MLP over ``[*B, n_agents, in_features]`` giving ``[*B, n_agents, out_features]``.

    A shared, decentralized net is a plain MLP (the agent dim is a batch dim,
    cheapest on CPU). Anything else is TorchRL's ``MultiAgentMLP``: one
    vmapped call over the per-agent parameter stack, never a Python loop.
    """
    if share_params and not centralized:
        return make_mlp(in_features, out_features, cfg)
    return MultiAgentMLP(
        n_agent_inputs=in_features,
        n_agent_outputs=out_features,
        n_agents=n_agents,
        centralized=centralized,
        share_params=share_params,
        **_mlp_kwargs(cfg),
    )


class FlattenTrailing(nn.Module):
    """Flatten the last ``ndim`` dims of each input and concatenate them.

    ``FlattenTrailing([3])`` turns image observations ``[*B, n, H, W, C]`` into
    ``[*B, n, H*W*C]``; ``FlattenTrailing([2, 2])`` turns two groups'
    ``[*B, n_g, d_g]`` observations into one ``[*B, n_1*d_1 + n_2*d_2]`` vector.
    """

    def __init__(self, ndims: list[int]):
        super().__init__()
        self.ndims = list(ndims)

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        flat = [x.flatten(-k, -1) if k > 1 else x for x, k in zip(xs, self.ndims)]
        return flat[0] if len(flat) == 1 else torch.cat(flat, dim=-1)


class BroadcastToAgents(nn.Module):
    """``[*B, d] -> [*B, n_agents, d]``: hand a global input to every agent's net."""

    def __init__(self, n_agents: int):
        super().__init__()
        self.n_agents = n_agents

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(-2).expand(*x.shape[:-1], self.n_agents, x.shape[-1])


class AgentValues(nn.Module):
    """``[*B, n_agents] -> [*B, n_agents, 1]``: one value per agent, TorchRL's layout."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(-1)
