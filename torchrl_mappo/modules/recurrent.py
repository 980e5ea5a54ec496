"""Multi-agent recurrent nets (rMAPPO): ``encoder MLP -> GRU (or LSTM) -> output layer``, vectorized over agents.

TorchRL's ``GRUModule`` wraps ``nn.GRU`` for one agent; it has no agent dim,
no per-agent parameters, and it restarts a training sequence at a reset by
splitting and padding it. Here the agent dim is part of every tensor:

- hidden state ``[*B, n_agents, layers, hidden]`` (an LSTM's: ``[h, c]``,
  ``2 * hidden`` wide), kept in the tensordict at
  ``(group, "actor_hidden" | "critic_hidden")`` (:mod:`torchrl_mappo.keys`)
  and written for the next step at ``("next", group, ...)``; TorchRL's
  collectors carry it from step to step (the net provides the
  ``TensorDictPrimer``, the collector adds it and an ``InitTracker``);
- shared parameters (one set for the group: plain matrix products, the
  agents are a batch dim) or one set per agent (stacked weights, one
  batched matrix product ``baddbmm`` for all agents): never a Python loop
  over agents;
- the hidden state is zeroed where ``"is_init"`` marks an episode's first
  step: the root ``[*B, 1]`` flag (the env's reset) or a per-agent
  ``[*B, n_agents, 1]`` one.

Two modes, chosen by TorchRL's :func:`~torchrl.modules.set_recurrent_mode`
(TorchRL's losses switch it on inside their ``forward``):

- step (collection, GAE): each element of the batch is one step, starting
  from its stored hidden state;
- sequence (the loss on chunks ``[*B, T]``): each sequence starts from the
  hidden state stored at its first step and runs through its ``T`` steps,
  resetting where ``is_init`` is set; the input projection of all ``T`` steps
  is one matrix product, only the hidden-to-hidden product loops over time.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torchrl.modules import recurrent_mode

from torchrl_mappo import keys

__all__ = ["CELLS", "AgentGRU", "AgentLSTM", "AgentLinear", "FirstAgent", "RecurrentNet", "is_recurrent", "recurrent_env_transforms"]


class FirstAgent(nn.Module):
    """``[*B, n_agents, d] -> [*B, 1, d]``: agent 0's copy of an input every agent shares."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., :1, :]


class AgentLinear(nn.Module):
    """``[*B, n_agents, in] -> [*B, n_agents, out]``: one ``Linear`` for all agents, or one per agent.

    Per-agent weights are stacked ``[n_agents, out, in]`` and applied in one
    ``baddbmm`` with the agents as its batch.
    """

    def __init__(self, in_features: int, out_features: int, n_agents: int, share_params: bool = True):
        super().__init__()
        lead = () if share_params else (n_agents,)
        self.weight = nn.Parameter(torch.empty(*lead, out_features, in_features))
        self.bias = nn.Parameter(torch.empty(*lead, out_features))
        self.reset_parameters(1.0 / math.sqrt(in_features))

    def reset_parameters(self, bound: float) -> None:
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.weight.ndim == 2:
            return F.linear(x, self.weight, self.bias)
        n, d_in = self.weight.shape[0], x.shape[-1]
        lead = x.shape[:-2]
        xa = x.reshape(-1, n, d_in).transpose(0, 1)  # [n_agents, N, in]
        out = torch.baddbmm(self.bias.unsqueeze(1), xa, self.weight.transpose(1, 2))
        return out.transpose(0, 1).reshape(*lead, n, -1)


class AgentGRU(nn.Module):
    """A stacked GRU over ``[*B, n_agents, in]`` (PyTorch's GRU equations and initialisation).

    :meth:`step` advances one step; :meth:`sequence` runs ``T`` steps with resets.
    ``keep`` is ``1 - is_init`` broadcast to the hidden state: 0 zeroes it.
    """

    def __init__(self, in_features: int, hidden: int, layers: int, n_agents: int, share_params: bool = True):
        super().__init__()
        self.hidden, self.layers = hidden, layers
        self.state_size = hidden  # the width of one layer's stored state
        self.ih = nn.ModuleList(
            AgentLinear(in_features if i == 0 else hidden, 3 * hidden, n_agents, share_params) for i in range(layers)
        )
        self.hh = nn.ModuleList(AgentLinear(hidden, 3 * hidden, n_agents, share_params) for _ in range(layers))
        for lin in (*self.ih, *self.hh):
            lin.reset_parameters(1.0 / math.sqrt(hidden))

    @staticmethod
    def _cell(gi: torch.Tensor, gh: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        i_r, i_z, i_n = gi.chunk(3, -1)
        h_r, h_z, h_n = gh.chunk(3, -1)
        r = torch.sigmoid(i_r + h_r)
        z = torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        return n + z * (h - n)  # (1 - z) * n + z * h

    def step(self, x: torch.Tensor, h: torch.Tensor, keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x [*B, A, in]``, ``h [*B, A, layers, H]``, ``keep [*B, A|1, 1, 1]`` -> (output, next hidden)."""
        out = []
        for i, h_i in enumerate((h * keep).unbind(-2)):
            x = self._cell(self.ih[i](x), self.hh[i](h_i), h_i)
            out.append(x)
        return x, torch.stack(out, -2)

    def sequence(self, x: torch.Tensor, h0: torch.Tensor, keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x [*B, T, A, in]``, ``h0 [*B, A, layers, H]`` (the hidden state before step 0),
        ``keep [*B, T, A|1, 1]`` -> (outputs ``[*B, T, A, H]``, hidden after each step ``[*B, T, A, layers, H]``)."""
        keeps = keep.unbind(-3)
        hidden = []
        for i, h in enumerate(h0.unbind(-2)):
            # Every step's input projection at once; ``unbind`` (not indexing per step), whose
            # backward is one ``stack`` instead of a full-size zero tensor per step.
            ys = []
            for g_t, k_t in zip(self.ih[i](x).unbind(-3), keeps):
                h = h * k_t
                h = self._cell(g_t, self.hh[i](h), h)
                ys.append(h)
            x = torch.stack(ys, -3)
            hidden.append(x)
        return x, torch.stack(hidden, -2)


class AgentLSTM(nn.Module):
    """A stacked LSTM over ``[*B, n_agents, in]`` (PyTorch's LSTM equations, gates ``i, f, g, o``),
    with :class:`AgentGRU`'s interface: one layer's stored state is ``[h, c]`` concatenated
    (``state_size = 2 * hidden``), so primers, chunks, checkpoints and resets handle it as a GRU's.
    """

    def __init__(self, in_features: int, hidden: int, layers: int, n_agents: int, share_params: bool = True):
        super().__init__()
        self.hidden, self.layers = hidden, layers
        self.state_size = 2 * hidden
        self.ih = nn.ModuleList(
            AgentLinear(in_features if i == 0 else hidden, 4 * hidden, n_agents, share_params) for i in range(layers)
        )
        self.hh = nn.ModuleList(AgentLinear(hidden, 4 * hidden, n_agents, share_params) for _ in range(layers))
        for lin in (*self.ih, *self.hh):
            lin.reset_parameters(1.0 / math.sqrt(hidden))

    def _cell(self, gi: torch.Tensor, state: torch.Tensor, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """One step of ``layer`` from the input projection ``gi`` and ``state = [h, c]`` -> (h', [h', c'])."""
        h, c = state.split(self.hidden, -1)
        i, f, g, o = (gi + self.hh[layer](h)).chunk(4, -1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, torch.cat([h, c], -1)

    def step(self, x: torch.Tensor, s: torch.Tensor, keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x [*B, A, in]``, ``s [*B, A, layers, 2H]``, ``keep [*B, A|1, 1, 1]`` -> (output, next state)."""
        out = []
        for i, s_i in enumerate((s * keep).unbind(-2)):
            x, s_i = self._cell(self.ih[i](x), s_i, i)
            out.append(s_i)
        return x, torch.stack(out, -2)

    def sequence(self, x: torch.Tensor, s0: torch.Tensor, keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """As :meth:`AgentGRU.sequence`; the states after each step are ``[*B, T, A, layers, 2H]``."""
        keeps = keep.unbind(-3)
        states = []
        for i, s in enumerate(s0.unbind(-2)):
            ys, ss = [], []
            for g_t, k_t in zip(self.ih[i](x).unbind(-3), keeps):
                h, s = self._cell(g_t, s * k_t, i)
                ys.append(h)
                ss.append(s)
            x = torch.stack(ys, -3)
            states.append(torch.stack(ss, -3))
        return x, torch.stack(states, -2)


CELLS = {"gru": AgentGRU, "lstm": AgentLSTM}  # model.recurrent / model.critic_recurrent -> the recurrent layer


class RecurrentNet(nn.Module):
    """``encoder(*inputs) -> AgentGRU | AgentLSTM -> output layer [-> post]``, called with ``(*inputs, hidden, is_init)``.

    Returns ``(*outputs, next hidden)``. With ``global_input`` (a shared
    critic on an input that is the same for every agent: the global state or
    all observations) the encoder and GRU run once, on agent 0's copy, and
    the output layer gives one value per agent (as the feed-forward critic's
    ``AgentValues``); the hidden state is stored once per agent all the same
    (equal copies), so every net keeps one layout.

    ``hidden_key`` names where the hidden state lives; :meth:`make_tensordict_primer`
    gives the ``TensorDictPrimer`` that adds it (zeros) to an env's specs and resets.
    """

    def __init__(self, encoder: nn.Module, gru: AgentGRU | AgentLSTM, out: nn.Module, *, n_agents: int, hidden_key,
                 post: nn.Module | None = None, global_input: bool = False):
        super().__init__()
        self.encoder, self.gru, self.out, self.post = encoder, gru, out, post
        self.n_agents, self.hidden_key, self.global_input = n_agents, hidden_key, global_input

    def forward(self, *xs: torch.Tensor):
        *inputs, hidden, is_init = xs
        feats = self.encoder(*inputs)  # [*B, A, F] ([*B, 1, F] for a global input)
        if self.global_input:
            hidden = hidden[..., :1, :, :]
        keep = (~is_init.bool()).to(feats.dtype)
        per_agent = keep.ndim == feats.ndim  # [*B, A, 1] rather than the root [*B, 1]
        if recurrent_mode():
            keep = keep if per_agent else keep.unsqueeze(-2)  # [*B, T, A|1, 1]
            y, next_hidden = self.gru.sequence(feats, hidden.select(-4, 0), keep)
        else:
            keep = keep.unsqueeze(-1) if per_agent else keep.unsqueeze(-1).unsqueeze(-1)  # [*B, A|1, 1, 1]
            y, next_hidden = self.gru.step(feats, hidden, keep)
        y = self.out(y)
        if self.global_input:  # [*B, 1, n_agents] -> [*B, n_agents, 1]; equal hidden copies per agent
            y = y.transpose(-1, -2)
            next_hidden = next_hidden.expand(*next_hidden.shape[:-3], self.n_agents, *next_hidden.shape[-2:])
        y = self.post(y) if self.post is not None else y
        return (*y, next_hidden) if isinstance(y, tuple) else (y, next_hidden)

    def make_tensordict_primer(self):
        """The ``TensorDictPrimer`` putting a zero hidden state in the env's specs and at every reset."""
        from torchrl.data import Composite, Unbounded
        from torchrl.envs import TensorDictPrimer

        group, name = self.hidden_key
        spec = Unbounded(shape=(self.n_agents, self.gru.layers, self.gru.state_size))
        # Episodes start together for all agents (the root reset; PettingZoo envs also have per-group ones).
        return TensorDictPrimer(Composite({group: Composite({name: spec}, shape=(self.n_agents,))}),
                                expand_specs=True, reset_key="_reset")


def is_recurrent(module: nn.Module | None) -> bool:
    """Whether ``module`` holds a :class:`RecurrentNet`."""
    return module is not None and any(isinstance(m, RecurrentNet) for m in module.modules())


def recurrent_env_transforms(env, policy: nn.Module):
    """``env`` (a ``TransformedEnv``) with the ``InitTracker`` and hidden-state primers ``policy``
    needs, TorchRL's own (``get_env_transforms_from_module``); unchanged for a feed-forward policy.
    The collectors add the same themselves (``auto_register_policy_transforms``)."""
    if not is_recurrent(policy):
        return env
    from torchrl.modules.utils import get_env_transforms_from_module

    return env.append_transform(get_env_transforms_from_module(policy, init_key=keys.IS_INIT))
