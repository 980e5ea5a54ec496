"""``make_actor``: a decentralized policy for one group (local observation in, action out)."""
from __future__ import annotations

import torch
from tensordict.nn import AddStateIndependentNormalScale, TensorDictModule
from torch import nn
from torchrl.data import Categorical as CategoricalSpec
from torchrl.data import OneHot as OneHotSpec
from torchrl.envs import EnvBase
from torchrl.modules import OneHotCategorical, ProbabilisticActor, TanhNormal

from torchrl_mappo import keys
from torchrl_mappo.config import ModelConfig
from torchrl_mappo.modules.nets import make_agent_mlp


def group_sizes(env: EnvBase, group: str) -> tuple[int, int]:
    """``(n_agents, obs_dim)`` of ``group``; flat observations only."""
    if group not in env.group_map:
        raise ValueError(f"group {group!r} is not in the env; its groups are {list(env.group_map)}")
    obs_spec = env.observation_spec_unbatched[keys.observation(group)]
    if len(obs_spec.shape) != 2:
        raise ValueError(
            f"{keys.observation(group)} has shape {tuple(obs_spec.shape)}; "
            "the MLP actor/critic take flat per-agent observations [n_agents, obs_dim]"
        )
    n_agents, obs_dim = obs_spec.shape
    return n_agents, obs_dim


def make_actor(env: EnvBase, group: str, cfg_model: ModelConfig) -> ProbabilisticActor:
    """Build the policy of ``group``.

    Reads ``(group, "observation")``; writes ``(group, "action")`` and
    ``(group, "action_log_prob")`` (plus the distribution's parameters
    ``(group, "loc"/"scale")`` or ``(group, "logits")``).

    Continuous actions: ``TanhNormal`` squashed into the env's action bounds;
    its mean comes from the network, its log-std is a learned
    state-independent parameter (one per agent when ``share_params`` is
    false). Discrete actions: ``Categorical`` (``OneHotCategorical`` for
    one-hot specs) over the network's logits.

    ``cfg_model.share_params``: one network for all agents of the group, or
    one per agent evaluated in a single vmapped call.
    """
    n_agents, obs_dim = group_sizes(env, group)
    action_spec = env.full_action_spec_unbatched[keys.action(group)]
    share = cfg_model.share_params

    if isinstance(action_spec, (CategoricalSpec, OneHotSpec)):
        n_actions = action_spec.space.n
        net = make_agent_mlp(obs_dim, n_actions, n_agents, cfg_model, share_params=share)
        module = TensorDictModule(net, in_keys=[keys.observation(group)], out_keys=[keys.logits(group)])
        dist_class = OneHotCategorical if isinstance(action_spec, OneHotSpec) else torch.distributions.Categorical
        dist_keys, dist_kwargs = [keys.logits(group)], {}
    else:
        action_dim = action_spec.shape[-1]
        net = make_agent_mlp(obs_dim, action_dim, n_agents, cfg_model, share_params=share)
        log_std_shape = (action_dim,) if share else (n_agents, action_dim)
        module = TensorDictModule(
            nn.Sequential(
                net,
                AddStateIndependentNormalScale(
                    log_std_shape, scale_mapping="exp", init_value=cfg_model.init_log_std
                ),
            ),
            in_keys=[keys.observation(group)],
            out_keys=[keys.loc(group), keys.scale(group)],
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
