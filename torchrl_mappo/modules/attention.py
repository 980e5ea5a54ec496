"""Attention over a group's agents, for any number of them: the critic and the communicating actor.

``AttentionCritic`` (one value per agent, ``model.critic: attention``) and
``CommunicatingNet`` (the actor's network with learned messages,
``model.communication: attention``) share their building blocks:
:func:`token_encoder` (one token per agent) and :class:`AgentAttention`
(the agents' tokens attend over the others', a dead agent is no key).
Plain ``nn.Module``\\ s; :func:`~torchrl_mappo.modules.critic.make_critic` and
:func:`~torchrl_mappo.modules.actor.make_actor` wrap them in TensorDict modules.
"""
from __future__ import annotations

import torch
from torch import nn

from torchrl_mappo.config import ModelConfig
from torchrl_mappo.modules.nets import ACTIVATIONS, make_mlp


def numel(shape: tuple[int, ...]) -> int:
    return int(torch.Size(shape).numel())


def flat(x: torch.Tensor, k: int) -> torch.Tensor:
    """The last ``k`` dims of ``x`` as one (a scalar per agent, ``k == 0``, as a 1-vector)."""
    return x.flatten(-k, -1) if k > 1 else (x.unsqueeze(-1) if k == 0 else x)


def token_encoder(in_features: int, embed: int, activation: str) -> nn.Module:
    """``Linear -> LayerNorm -> activation``: one ``embed``-wide token from each agent's flat input."""
    return nn.Sequential(nn.Linear(in_features, embed), nn.LayerNorm(embed), ACTIVATIONS[activation]())


class AgentAttention(nn.Module):
    """The ``n`` tokens of a group's agents attend over ``m >= n`` key tokens, the group's own first.

    Multi-head attention (no positional code, so permuting the agents
    permutes the outputs and nothing depends on ``n``), then a residual
    connection and a ``LayerNorm``. ``alive`` (``[*B, n]``, optional): a dead
    agent is no key for the others (each agent still sees itself; the keys
    after the group's ``n`` are always seen).
    """

    def __init__(self, embed: int, heads: int):
        super().__init__()
        self.heads = heads
        self.attention = nn.MultiheadAttention(embed, heads, batch_first=True)
        self.norm = nn.LayerNorm(embed)

    def forward(self, own: torch.Tensor, kv: torch.Tensor, alive: torch.Tensor | None = None) -> torch.Tensor:
        n, e = own.shape[-2], own.shape[-1]
        q2 = own.reshape(-1, n, e)
        kv2 = kv.reshape(-1, kv.shape[-2], e)
        attn_mask = None
        if alive is not None:
            # allowed[b, i, j]: key j is alive (or is agent i itself); the other tokens always are.
            alive = alive.reshape(-1, n).bool()
            allowed = alive.unsqueeze(-2) | torch.eye(n, dtype=torch.bool, device=alive.device)
            extra = kv2.shape[1] - n
            if extra:
                allowed = torch.cat([allowed, allowed.new_ones(*allowed.shape[:-1], extra)], dim=-1)
            attn_mask = (~allowed).repeat_interleave(self.heads, dim=0)
        attended, _ = self.attention(q2, kv2, kv2, attn_mask=attn_mask, need_weights=False)
        return self.norm(attended + q2).reshape(own.shape)


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
        self.masked = masked
        self.encoder = token_encoder(numel(obs_shape), embed, cfg.activation)
        self.other_encoders = nn.ModuleList(token_encoder(numel(s), embed, cfg.activation) for s in other_shapes)
        self.state_encoder = (token_encoder(numel(state_shape), embed, cfg.activation)
                              if state_shape is not None else None)
        self.attend = AgentAttention(embed, cfg.attention_heads)
        self.head = make_mlp(2 * embed, 1, cfg)

    def forward(self, obs: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
        rest = list(rest)
        mask = rest.pop() if self.masked else None
        state = rest.pop() if self.state_encoder is not None else None
        own = self.encoder(flat(obs, self.ndims[0]))  # [*B, n, E]
        tokens = [own]
        for enc, x, k in zip(self.other_encoders, rest, self.ndims[1:]):
            tokens.append(enc(flat(x, k)))
        if state is not None:
            tokens.append(self.state_encoder(flat(state, self.state_ndim)).unsqueeze(-2))
        kv = torch.cat(tokens, dim=-2)  # [*B, m, E], the group's own agents first
        return self.head(torch.cat([own, self.attend(own, kv, mask)], dim=-1))


class CommunicatingNet(nn.Module):
    """A group's policy network with learned messages: ``[*B, n, *obs] -> [*B, n, out_features]``, any ``n``.

    Each agent embeds its own observation (:func:`token_encoder`); that
    embedding is the message it sends. Each agent then attends over the
    messages of its group's agents (:class:`AgentAttention`: its own and
    the others', a dead agent's left out) and a shared MLP head maps
    ``[own embedding, attended]`` to its outputs (logits, or the mean of a
    continuous action). The only thing an agent gets from the others is
    their messages, within the same step (no memory), and the gradient of
    its loss flows through them into the senders' encoder. Shared weights:
    permuting the agents permutes the outputs, and the same module runs on
    any number of agents.

    Inputs: the observations ``[*B, n, *obs]``, then (if ``masked``) the
    group's live-agent mask ``[*B, n]``.
    """

    def __init__(self, obs_shape: tuple[int, ...], out_features: int, cfg: ModelConfig, *, masked: bool = False):
        super().__init__()
        self.obs_ndim = len(obs_shape)
        self.masked = masked
        embed = cfg.hidden_sizes[-1]
        self.encoder = token_encoder(numel(obs_shape), embed, cfg.activation)
        self.attend = AgentAttention(embed, cfg.attention_heads)
        self.head = make_mlp(2 * embed, out_features, cfg)

    def forward(self, obs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        own = self.encoder(flat(obs, self.obs_ndim))  # [*B, n, E]: each agent's message
        return self.head(torch.cat([own, self.attend(own, own, mask if self.masked else None)], dim=-1))
