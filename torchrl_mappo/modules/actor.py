"""``make_actor``: a decentralized policy for one group (local observation in, action out)."""
from __future__ import annotations

import math

import torch
from tensordict import TensorDictBase
from tensordict.nn import AddStateIndependentNormalScale, NormalParamExtractor, TensorDictModule, TensorDictModuleBase
from torch import nn
from torchrl.data import Categorical as CategoricalSpec
from torchrl.data import OneHot as OneHotSpec
from torchrl.envs import EnvBase
from torchrl.modules import MaskedCategorical, MaskedOneHotCategorical, OneHotCategorical, ProbabilisticActor, TanhNormal

from torchrl_mappo import keys
from torchrl_mappo.config import ConfigError, ModelConfig
from torchrl_mappo.modules.attention import CommunicatingNet
from torchrl_mappo.modules.nets import AppendAgentId, Chain, FlattenTrailing, make_agent_mlp, orthogonal_init_
from torchrl_mappo.modules.recurrent import CELLS, AgentLinear, RecurrentNet


def group_sizes(env: EnvBase, group: str) -> tuple[int, int]:
    """``(n_agents, obs_dim)`` of ``group``; ``obs_dim`` is the flattened size.

    Observations with more than one dim per agent (MAgent2's ``13x13x5``
    views) are flattened before the MLP.
    """
    if group not in env.group_map:
        raise ValueError(f"group {group!r} is not in the env; its groups are {list(env.group_map)}")
    obs_spec = env.observation_spec_unbatched[keys.observation(group)]
    n_agents = obs_spec.shape[0]
    return n_agents, obs_spec.shape[1:].numel()


def actor_agent_id(env: EnvBase, group: str, cfg_model: ModelConfig) -> bool:
    """``cfg_model.actor_agent_id`` for ``group``, with ``auto`` resolved: an id where the actor is
    shared and not communicating, and two of the group's agents observe the same on a reset of
    ``env`` (:func:`~torchrl_mappo.envs.check.alike_at_reset`, which resets it once)."""
    if cfg_model.actor_agent_id != "auto":
        return bool(cfg_model.actor_agent_id)
    if not cfg_model.share_params or cfg_model.communication != "none":
        return False
    from torchrl_mappo.envs.check import alike_at_reset

    return group in alike_at_reset(env, [group])


def make_actor(env: EnvBase, group: str, cfg_model: ModelConfig) -> ProbabilisticActor:
    """Build the policy of ``group``.

    Reads ``(group, "observation")``; writes ``(group, "action")`` and
    ``(group, "action_log_prob")`` (plus the distribution's parameters
    ``(group, "loc"/"scale")`` or ``(group, "logits")``).

    Continuous actions: ``TanhNormal`` squashed into the env's action bounds;
    its mean comes from the network, its log-std is a learned
    state-independent parameter (one per agent when ``share_params`` is
    false), or with ``state_dependent_std`` a second output of the network
    (TorchRL's ``NormalParamExtractor``, biased softplus). Discrete actions: ``Categorical`` (``OneHotCategorical`` for
    one-hot specs) over the network's logits.

    ``cfg_model.share_params``: one network for all agents of the group, or
    one per agent evaluated in a single vmapped call. Where the env gives
    ``(group, "action_mask")`` (PettingZoo), the Categorical is TorchRL's
    ``MaskedCategorical``: a forbidden action has probability 0. ``actor_agent_id``
    appends a one-hot agent id to each agent's observation (``auto``: see
    :func:`actor_agent_id`, which resets ``env`` once);
    ``orthogonal_init`` initialises the network orthogonally.

    ``cfg_model.recurrent: gru``: ``MLP -> GRU -> linear head``
    (:class:`~torchrl_mappo.modules.recurrent.RecurrentNet`); the network
    also reads ``(group, "actor_hidden")`` and ``"is_init"`` and writes
    ``("next", group, "actor_hidden")``. Its env needs TorchRL's
    ``InitTracker`` and the net's ``TensorDictPrimer``
    (:func:`~torchrl_mappo.modules.recurrent.recurrent_env_transforms`; the
    collectors of :func:`~torchrl_mappo.make_collector` add them).

    ``cfg_model.communication: attention``: communicating actors
    (:class:`~torchrl_mappo.modules.attention.CommunicatingNet`): each
    agent's observation embedding is its message, and each agent attends over
    its group's messages before its head; the network also reads
    ``(group, "mask")`` where the env marks live agents (a dead agent sends
    nothing). Its weights do not depend on the agent count.
    """
    n_agents, obs_dim = group_sizes(env, group)
    agent_id = actor_agent_id(env, group, cfg_model)
    obs_ndim = len(env.observation_spec_unbatched[keys.observation(group)].shape) - 1
    action_spec = env.full_action_spec_unbatched[keys.action(group)]
    share = cfg_model.share_params

    recurrent = cfg_model.recurrent != "none"
    communicating = cfg_model.communication != "none"
    masked = communicating and keys.mask(group) in env.observation_spec.keys(True)
    # A communicating actor also reads the live-agent mask: a dead agent's message is left out.
    comm_in = [keys.mask(group)] if masked else []

    def mlp(out_features: int) -> nn.Module:
        if communicating:
            obs_shape = tuple(env.observation_spec_unbatched[keys.observation(group)].shape[1:])
            net = CommunicatingNet(obs_shape, out_features, cfg_model, masked=masked)
            if cfg_model.orthogonal_init:
                orthogonal_init_(net.head, last_gain=0.01)
            return net
        extra = n_agents if agent_id else 0
        if recurrent:
            return _recurrent(obs_dim + extra, out_features)
        net = make_agent_mlp(obs_dim + extra, out_features, n_agents, cfg_model, share_params=share)
        if cfg_model.orthogonal_init:
            orthogonal_init_(net, last_gain=0.01)
        layers = [FlattenTrailing([obs_ndim])] if obs_ndim > 1 else []
        if agent_id:
            layers.append(AppendAgentId(n_agents))
        return nn.Sequential(*layers, net) if layers else net

    def _recurrent(in_features: int, out_features: int) -> RecurrentNet:
        h = cfg_model.recurrent_hidden
        encoder = make_agent_mlp(in_features, h, n_agents, cfg_model, share_params=share)
        head = AgentLinear(h, out_features, n_agents, share)
        if cfg_model.orthogonal_init:
            orthogonal_init_(encoder, last_gain=2.0 ** 0.5)
            for w in head.weight.view(-1, *head.weight.shape[-2:]):
                nn.init.orthogonal_(w, gain=0.01)
            nn.init.zeros_(head.bias)
        first = [AppendAgentId(n_agents)] if agent_id else []
        return RecurrentNet(
            Chain(FlattenTrailing([obs_ndim]), *first, encoder),
            CELLS[cfg_model.recurrent](h, h, cfg_model.recurrent_layers, n_agents, share), head,
            n_agents=n_agents, hidden_key=keys.actor_hidden(group),
        )

    # A recurrent net also reads its hidden state and the reset flag, and writes the next state.
    memory_in = [keys.actor_hidden(group), keys.IS_INIT] if recurrent else []
    memory_out = [(keys.NEXT, *keys.actor_hidden(group))] if recurrent else []
    if isinstance(action_spec, (CategoricalSpec, OneHotSpec)):
        if cfg_model.init_log_std != 0.0:
            raise ConfigError(
                f"model.init_log_std={cfg_model.init_log_std}: group {group!r} has discrete actions "
                "(a Categorical policy), which have no log-std; drop it, or use continuous actions"
            )
        if cfg_model.state_dependent_std:
            raise ConfigError(
                f"model.state_dependent_std: true: group {group!r} has discrete actions (a Categorical "
                "policy), which have no std; drop it, or use continuous actions"
            )
        n_actions = action_spec.space.n
        net = mlp(n_actions)
        module = TensorDictModule(net, in_keys=[keys.observation(group), *memory_in, *comm_in],
                                  out_keys=[keys.logits(group), *memory_out])
        one_hot = isinstance(action_spec, OneHotSpec)
        if keys.action_mask(group) in env.observation_spec.keys(True):
            # Only the actions the env allows now (PettingZoo's action masks): TorchRL's masked Categorical.
            dist_class = MaskedOneHotCategorical if one_hot else MaskedCategorical
            dist_keys = {"logits": keys.logits(group), "mask": keys.action_mask(group)}
        else:
            dist_class = OneHotCategorical if one_hot else torch.distributions.Categorical
            dist_keys = [keys.logits(group)]
        dist_kwargs = {}
    else:
        action_dim = action_spec.shape[-1]
        if cfg_model.state_dependent_std:  # the net outputs [loc, pre-scale]; split as BenchMARL does
            net = mlp(2 * action_dim)
            scale = NormalParamExtractor(scale_mapping=f"biased_softplus_{math.exp(cfg_model.init_log_std)}")
        else:
            net = mlp(action_dim)
            log_std_shape = (action_dim,) if share else (n_agents, action_dim)
            scale = AddStateIndependentNormalScale(log_std_shape, scale_mapping="exp",
                                                   init_value=cfg_model.init_log_std)
        if recurrent:
            net.post = scale
        module = TensorDictModule(
            net if recurrent else (Chain(net, scale) if communicating else nn.Sequential(net, scale)),
            in_keys=[keys.observation(group), *memory_in, *comm_in],
            out_keys=[keys.loc(group), keys.scale(group), *memory_out],
        )
        dist_class = TanhNormal
        dist_keys = [keys.loc(group), keys.scale(group)]
        dist_kwargs = {"low": action_spec.space.low, "high": action_spec.space.high}

    return ProbabilisticActor(
        module,
        in_keys=dist_keys,
        out_keys=[keys.action(group)],
        spec=action_spec,
        distribution_class=dist_class,
        distribution_kwargs=dist_kwargs,
        return_log_prob=True,
        log_prob_key=keys.action_log_prob(group),
    )


class RandomGroupPolicy(TensorDictModuleBase):
    """Uniformly random actions for one group (an untrained opponent).

    Writes ``(group, "action")`` sampled from the env's action spec for every
    element of the input's batch (among the allowed actions where the env
    gives ``(group, "action_mask")``); it has no parameters and is never trained.
    """

    def __init__(self, env: EnvBase, group: str):
        super().__init__()
        self.group = group
        self.spec = env.full_action_spec_unbatched[keys.action(group)]
        self.in_keys = [keys.observation(group)]
        self.out_keys = [keys.action(group)]

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        allowed = tensordict.get(keys.action_mask(self.group), None)
        if allowed is None:
            tensordict.set(keys.action(self.group), self.spec.rand(tensordict.batch_size))
            return tensordict
        choice = torch.distributions.Categorical(probs=allowed.float()).sample()
        if isinstance(self.spec, OneHotSpec):
            choice = torch.nn.functional.one_hot(choice, allowed.shape[-1]).to(self.spec.dtype)
        tensordict.set(keys.action(self.group), choice)
        return tensordict


def make_random_actor(env: EnvBase, group: str) -> RandomGroupPolicy:
    """A policy for ``group`` that acts uniformly at random (``per_group.<g>.policy: random``)."""
    if group not in env.group_map:
        raise ValueError(f"group {group!r} is not in the env; its groups are {list(env.group_map)}")
    return RandomGroupPolicy(env, group)
