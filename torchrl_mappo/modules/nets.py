"""Plain ``nn.Module`` building blocks; the TensorDict wiring lives in actor.py/critic.py."""
from __future__ import annotations

import torch
from torch import nn
from torchrl.modules import MLP, MultiAgentMLP

from torchrl_mappo.config import ModelConfig


def _sigmoid_tanh(x: torch.Tensor) -> torch.Tensor:
    """tanh(x) as 2 * sigmoid(2x) - 1 (torch 2.13's CPU sigmoid kernel is several times faster than its tanh)."""
    return torch.sigmoid(x * 2).mul_(2).sub_(1)


class _SigmoidTanh(torch.autograd.Function):
    """tanh(x) computed as 2 * sigmoid(2x) - 1, with tanh's own backward (1 - y^2) * grad."""

    generate_vmap_rule = True  # MultiAgentMLP vmaps over per-agent parameters

    @staticmethod
    def forward(x: torch.Tensor) -> torch.Tensor:
        return _sigmoid_tanh(x)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.save_for_backward(output)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        return torch.ops.aten.tanh_backward(grad, y)


class _SigmoidTanhEager(torch.autograd.Function):
    """:class:`_SigmoidTanh` outside functorch transforms: a combined ``forward(ctx, x)`` spares
    ``Function.apply`` the ``inspect.signature`` binding it does for a separate ``setup_context``
    (~30 us per call, a few % of a small network's update)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        y = _sigmoid_tanh(x)
        ctx.save_for_backward(y)
        return y

    backward = _SigmoidTanh.backward


class Tanh(nn.Module):
    """``nn.Tanh`` for CPU training: the same function (within 2e-7) and gradient, ~3x faster.

    torch 2.13's CPU ``tanh`` kernel is several times slower than its
    ``sigmoid``; ``2 * sigmoid(2x) - 1`` is the same function, and the
    backward is tanh's own. Measured with ``benchmarks/activations.py``
    (forward + backward of a [1000, 3, 64] activation: 0.42 ms -> 0.14 ms;
    a navigation update 1.06x faster). ``model.activation: tanh`` uses it;
    off the CPU it is plain ``torch.tanh``. Parameter-free: checkpoints are
    the same as with ``nn.Tanh``.

    A bfloat16 input (``train.autocast``) stays in bfloat16: computing it in
    float32 and rounding back is slower (``benchmarks/activations.py``).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu":
            return torch.tanh(x)
        if torch._C._are_functorch_transforms_active():  # vmap (per-agent nets) needs setup_context
            return _SigmoidTanh.apply(x)
        if not (x.requires_grad and torch.is_grad_enabled()):
            return _sigmoid_tanh(x)  # no graph (collection): no Function needed
        return _SigmoidTanhEager.apply(x)


ACTIVATIONS: dict[str, type[nn.Module]] = {
    "tanh": Tanh,
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


class AgentValues(nn.Module):
    """``[*B, n_agents] -> [*B, n_agents, 1]``: one value per agent, TorchRL's layout."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(-1)


class AppendAgentId(nn.Module):
    """``[*B, n_agents, d] -> [*B, n_agents, d + n_agents]``: a one-hot agent id per agent."""

    def __init__(self, n_agents: int):
        super().__init__()
        self.n_agents = n_agents
        self.register_buffer("eye", torch.eye(n_agents), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.eye.expand(*x.shape[:-2], self.n_agents, self.n_agents)], dim=-1)


class PerAgentCriticInput(nn.Module):
    """Each agent's critic input: ``[*B, n_agents, width]``.

    Concatenates, per agent: the global input (flattened, the same for all),
    optionally the agent's own observation, a one-hot agent id, and the
    OTHER agents' actions (the agent's own action slot is zeroed, so the
    value stays a valid baseline for that agent's policy gradient).

    Inputs, in order: the global tensors (``len(global_ndims)`` of them,
    possibly none), then the group's observation if ``own_obs_ndim``, then
    the group's action if ``action_dim``.
    """

    def __init__(
        self,
        n_agents: int,
        global_ndims: list[int],
        own_obs_ndim: int | None = None,
        agent_id: bool = False,
        action_dim: int | None = None,
        n_actions: int | None = None,
    ):
        super().__init__()
        self.n_agents = n_agents
        self.flatten = FlattenTrailing(global_ndims) if global_ndims else None
        self.n_global = len(global_ndims)
        self.own_obs_ndim = own_obs_ndim
        self.agent_id = AppendAgentId(n_agents) if agent_id else None
        self.action_dim = action_dim
        self.n_actions = n_actions  # discrete: actions are indices, one-hot encoded
        self.register_buffer("others", 1.0 - torch.eye(n_agents), persistent=False)

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        parts = []
        i = 0
        if self.flatten is not None:
            g = self.flatten(*xs[: self.n_global])
            i = self.n_global
            parts.append(g.unsqueeze(-2).expand(*g.shape[:-1], self.n_agents, g.shape[-1]))
        if self.own_obs_ndim is not None:
            obs = xs[i]
            i += 1
            parts.append(obs.flatten(-self.own_obs_ndim, -1) if self.own_obs_ndim > 1 else obs)
        if self.action_dim is not None:
            act = xs[i]
            if self.n_actions is not None:
                act = torch.nn.functional.one_hot(act.long(), self.n_actions)
            act = act.to(parts[0].dtype if parts else torch.get_default_dtype())
            # [*, n, A] -> [*, n(receiver), n(sender), A] with the receiver's own slot zeroed.
            joint = act.unsqueeze(-3) * self.others.unsqueeze(-1)
            parts.append(joint.flatten(-2, -1))
        x = torch.cat(parts, dim=-1)
        return self.agent_id(x) if self.agent_id is not None else x


def orthogonal_init_(module: nn.Module, last_gain: float) -> nn.Module:
    """Orthogonal weights (gain sqrt(2), ``last_gain`` for the output layer), zero biases.

    Works on plain MLPs and on ``MultiAgentMLP``'s stacked per-agent weights.
    """
    hidden_gain = 2.0 ** 0.5
    if isinstance(module, MultiAgentMLP):
        weights = sorted(
            (k for k in module.params.keys(True, True) if (k[-1] if isinstance(k, tuple) else k) == "weight"),
            key=lambda k: int((k[0] if isinstance(k, tuple) else k.split(".")[0])),
        )
        with torch.no_grad():
            for j, key in enumerate(weights):
                w = module.params.get(key)
                if w.ndim < 3:  # LayerNorm weights are 1-D per agent
                    continue
                gain = last_gain if j == len(weights) - 1 else hidden_gain
                for a in range(w.shape[0]):
                    nn.init.orthogonal_(w.data[a], gain=gain)
            for key in module.params.keys(True, True):
                name = key[-1] if isinstance(key, tuple) else key
                parent = key[:-1] if isinstance(key, tuple) else ()
                if name == "bias" and module.params.get(key).ndim >= 2 and \
                        module.params.get((*parent, "weight")).ndim >= 3:
                    module.params.get(key).data.zero_()
        return module
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for j, lin in enumerate(linears):
            nn.init.orthogonal_(lin.weight, gain=last_gain if j == len(linears) - 1 else hidden_gain)
            if lin.bias is not None:
                lin.bias.zero_()
    return module


class Chain(nn.Module):
    """``body(head(*inputs))``: ``nn.Sequential`` for a head that takes several inputs."""

    def __init__(self, head: nn.Module, *body: nn.Module):
        super().__init__()
        self.head = head
        self.body = nn.Sequential(*body)

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return self.body(self.head(*xs))
