"""``AttentionCritic``: one value per agent from self-attention over the agents (any number of them).

A plain ``nn.Module``; :func:`torchrl_mappo.modules.critic.make_critic` wraps it
in a ``TensorDictModule`` (``model.critic: attention``).
"""
from __future__ import annotations

import torch
from torch import nn

from torchrl_mappo.config import ModelConfig
from torchrl_mappo.modules.nets import ACTIVATIONS, make_mlp


class AttentionCritic(nn.Module):
    """Values ``[*B, n, 1]`` of a group's ``n`` agents, for any ``n``.

    Each agent's observation is embedded by one shared encoder (``Linear ->
    LayerNorm -> activation``, ``embed_dim`` wide); the agents' embeddings
    attend (multi-head self-attention, no positional code) over the tokens
    of every agent of the group, of the other groups' agents (one encoder
    per other group) and of the global state (one token) when there is one.
    A shared MLP head maps ``[own embedding, attended]`` to the value.
    Nothing depends on ``n`` or on the agents' order: permuting the agents
    permutes the values, and the same weights run on 2 or 20 agents.

    Inputs, in order: the group's observations ``[*B, n, *obs]``, each other
    group's ``[*B, n_g, *obs_g]``, the state ``[*B, *state]`` (if
    ``state_dim``), the group's live-agent mask ``[*B, n]`` (if ``masked``):
    a dead agent is no key for the others (each agent still sees itself).
    """

    def __init__(
        self,
        obs_shape: tuple[int, ...],
        cfg: ModelConfig,
        *,
        other_shapes: tuple[tuple[int, ...], ...] = (),
        state_shape: tuple[int, ...] | None = None,
        masked: bool = False,
    ):
        super().__init__()
        self.ndims = [len(obs_shape), *(len(s) for s in other_shapes)]
        self.state_ndim = len(state_shape) if state_shape is not None else None
        embed = cfg.hidden_sizes[-1]
        self.heads = cfg.attention_heads
        self.masked = masked

        def encoder(d: int) -> nn.Module:
            return nn.Sequential(nn.Linear(d, embed), nn.LayerNorm(embed), ACTIVATIONS[cfg.activation]())

        def numel(shape: tuple[int, ...]) -> int:
            return int(torch.Size(shape).numel())

        self.encoder = encoder(numel(obs_shape))
        self.other_encoders = nn.ModuleList(encoder(numel(s)) for s in other_shapes)
        self.state_encoder = encoder(numel(state_shape)) if state_shape is not None else None
        self.attention = nn.MultiheadAttention(embed, self.heads, batch_first=True)
        self.norm = nn.LayerNorm(embed)
        self.head = make_mlp(2 * embed, 1, cfg)

    def forward(self, obs: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
        rest = list(rest)
        mask = rest.pop() if self.masked else None
        state = rest.pop() if self.state_encoder is not None else None
        def flat(x: torch.Tensor, k: int) -> torch.Tensor:  # the last k dims -> one
            return x.flatten(-k, -1) if k > 1 else (x.unsqueeze(-1) if k == 0 else x)

        n = obs.shape[-1 - self.ndims[0]]
        own = self.encoder(flat(obs, self.ndims[0]))  # [*B, n, E]
        tokens = [own]
        for enc, x, k in zip(self.other_encoders, rest, self.ndims[1:]):
            tokens.append(enc(flat(x, k)))
        if state is not None:
            tokens.append(self.state_encoder(flat(state, self.state_ndim)).unsqueeze(-2))
        kv = torch.cat(tokens, dim=-2)  # [*B, m, E], the group's own agents first
        q2 = own.reshape(-1, n, own.shape[-1])
        kv2 = kv.reshape(-1, kv.shape[-2], kv.shape[-1])
        attn_mask = None
        if mask is not None:
            # allowed[b, i, j]: key j is alive (or is agent i itself); the other tokens always are.
            alive = mask.reshape(-1, n).bool()
            allowed = alive.unsqueeze(-2) | torch.eye(n, dtype=torch.bool, device=alive.device)
            extra = kv2.shape[1] - n
            if extra:
                allowed = torch.cat([allowed, allowed.new_ones(*allowed.shape[:-1], extra)], dim=-1)
            attn_mask = (~allowed).repeat_interleave(self.heads, dim=0)
        attended, _ = self.attention(q2, kv2, kv2, attn_mask=attn_mask, need_weights=False)
        attended = self.norm(attended + q2).reshape(own.shape)
        return self.head(torch.cat([own, attended], dim=-1))
