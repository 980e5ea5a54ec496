"""``make_critic``: the value function of one group, centralized by default."""
from __future__ import annotations

import torch
from tensordict.nn import TensorDictModule
from torchrl.data import Categorical as CategoricalSpec
from torchrl.envs import EnvBase

from torchrl_mappo import keys
from torchrl_mappo.config import ConfigError, ModelConfig
from torchrl_mappo.modules.actor import group_sizes
from torchrl_mappo.modules.attention import AttentionCritic
from torchrl_mappo.modules.nets import (
    AgentValues,
    Chain,
    FlattenTrailing,
    PerAgentCriticInput,
    make_agent_mlp,
    make_mlp,
    orthogonal_init_,
)
from torchrl_mappo.modules.recurrent import CELLS, AgentLinear, FirstAgent, RecurrentNet


def has_global_state(env: EnvBase) -> bool:
    return keys.STATE in env.observation_spec.keys()


def critic_mode(env: EnvBase, cfg_model: ModelConfig) -> str:
    """The critic input ``cfg_model`` asks for, with ``auto`` and ``centralized`` resolved."""
    if not cfg_model.centralized or cfg_model.critic_input == "local":
        return "local"
    if cfg_model.critic_input == "auto":
        return "state" if has_global_state(env) else "concat_obs"
    return cfg_model.critic_input


def global_inputs(env: EnvBase, group: str, mode: str) -> tuple[list, list[int], int]:
    """The global part of the critic's input: ``(in_keys, trailing ndims, flat width)``."""
    spec = env.observation_spec_unbatched
    if mode == "agent_specific":
        mode = "state" if has_global_state(env) else "concat_obs"
    if mode == "local":
        return [], [], 0
    if mode == "state":
        if not has_global_state(env):
            raise ConfigError(
                "model.critic_input='state' but this env has no global state (root 'state'); "
                "use 'concat_obs' or 'all_obs' (VMAS has no state; PettingZoo needs env.return_state: true)"
            )
        in_keys = [keys.STATE]
    else:
        groups = [group] if mode == "concat_obs" else list(env.group_map)
        in_keys = [keys.observation(g) for g in groups]
    shapes = [spec[k].shape for k in in_keys]
    return in_keys, [len(s) for s in shapes], sum(s.numel() for s in shapes)


def make_critic(env: EnvBase, group: str, cfg_model: ModelConfig) -> TensorDictModule:
    """Build the critic of ``group``; writes ``(group, "state_value")``, ``[*B, n_agents, 1]``.

    Input, by ``cfg_model.critic_input`` (``centralized: false`` = ``local``):

    - ``auto``: the env's global state (root ``"state"``) when it has one,
      otherwise ``concat_obs`` (VMAS has no global state);
    - ``state``: root ``"state"``;
    - ``concat_obs``: every agent's ``(group, "observation")``, concatenated;
    - ``all_obs``: every group's observations, concatenated;
    - ``agent_specific``: the global input + the agent's own observation + a
      one-hot agent id (MAPPO paper);
    - ``local``: the agent's own observation only (IPPO).

    ``cfg_model.critic: attention``: :func:`make_attention_critic` instead.

    ``critic_joint_actions`` adds the OTHER agents' actions
    (``(group, "action")``) to each agent's input; ``critic_agent_id`` a
    one-hot agent id.

    A global input with nothing per agent goes through one network with one
    output unit per agent (``share_params``; values differ where rewards do)
    or one network per agent (vmapped). Per-agent inputs go through one
    shared network, or one per agent without ``share_params``.

    ``cfg_model.critic_memory`` ``gru`` (``critic_recurrent``, or
    ``recurrent`` when that is null): every agent's input goes through
    ``MLP -> GRU -> value head`` (:class:`~torchrl_mappo.modules.recurrent.RecurrentNet`;
    a shared critic on a global input keeps one value head per agent);
    the critic also reads ``(group, "critic_hidden")`` and ``"is_init"``
    and writes ``("next", group, "critic_hidden")``.
    """
    if cfg_model.critic == "attention":
        return make_attention_critic(env, group, cfg_model)
    n_agents, obs_dim = group_sizes(env, group)
    share = cfg_model.share_params
    mode = critic_mode(env, cfg_model)
    in_keys, ndims, width = global_inputs(env, group, mode)

    own_obs = mode in ("local", "agent_specific")
    agent_id = mode == "agent_specific" or cfg_model.critic_agent_id
    action_dim = n_actions = None
    if cfg_model.critic_joint_actions:
        spec = env.full_action_spec_unbatched[keys.action(group)]
        if isinstance(spec, CategoricalSpec):
            n_actions = action_dim = spec.space.n
        else:  # one-hot or continuous: the last dim
            action_dim = spec.shape[-1]

    per_agent = own_obs or agent_id or action_dim is not None
    if cfg_model.critic_memory != "none":
        return _recurrent_critic(env, group, cfg_model, in_keys, ndims, width, own_obs, agent_id, action_dim,
                                 n_actions, global_input=share and not per_agent)
    if not per_agent and share:
        body = make_mlp(width, n_agents, cfg_model)
        net = Chain(FlattenTrailing(ndims), body, AgentValues())
    else:
        builder, in_width = _per_agent_input(env, group, ndims, width, own_obs, agent_id, action_dim, n_actions)
        body = make_agent_mlp(in_width, 1, n_agents, cfg_model, share_params=share)
        net = Chain(builder, body)
        if own_obs:
            in_keys = in_keys + [keys.observation(group)]
        if action_dim is not None:
            in_keys = in_keys + [keys.action(group)]
    if cfg_model.orthogonal_init:
        orthogonal_init_(body, last_gain=1.0)
    return TensorDictModule(net, in_keys=in_keys, out_keys=[keys.state_value(group)])


def _per_agent_input(env, group, ndims, width, own_obs, agent_id, action_dim, n_actions):
    """Each agent's critic input (global input, own observation, agent id, the others' actions)
    and its width."""
    n_agents, obs_dim = group_sizes(env, group)
    obs_ndim = len(env.observation_spec_unbatched[keys.observation(group)].shape) - 1
    builder = PerAgentCriticInput(
        n_agents, ndims, own_obs_ndim=obs_ndim if own_obs else None, agent_id=agent_id,
        action_dim=action_dim, n_actions=n_actions,
    )
    in_width = (width + (obs_dim if own_obs else 0) + (n_agents if agent_id else 0)
                + (n_agents * action_dim if action_dim else 0))
    return builder, in_width


def _recurrent_critic(env, group, cfg_model, in_keys, ndims, width, own_obs, agent_id, action_dim, n_actions,
                      *, global_input: bool) -> TensorDictModule:
    n_agents, obs_dim = group_sizes(env, group)
    share, h = cfg_model.share_params, cfg_model.recurrent_hidden
    builder, in_width = _per_agent_input(env, group, ndims, width, own_obs, agent_id, action_dim, n_actions)
    encoder = make_agent_mlp(in_width, h, n_agents, cfg_model, share_params=share)
    head = AgentLinear(h, n_agents if global_input else 1, n_agents, share)
    if cfg_model.orthogonal_init:
        orthogonal_init_(encoder, last_gain=2.0 ** 0.5)
        for w in head.weight.view(-1, *head.weight.shape[-2:]):
            torch.nn.init.orthogonal_(w, gain=1.0)
        torch.nn.init.zeros_(head.bias)
    # A global input is the same for every agent: encode it once (agent 0's copy).
    first = [FirstAgent()] if global_input else []
    cell = CELLS[cfg_model.critic_memory](h, h, cfg_model.recurrent_layers, n_agents, share)
    net = RecurrentNet(Chain(builder, *first, encoder), cell, head, n_agents=n_agents, hidden_key=keys.critic_hidden(group), global_input=global_input)
    if own_obs:
        in_keys = in_keys + [keys.observation(group)]
    if action_dim is not None:
        in_keys = in_keys + [keys.action(group)]
    return TensorDictModule(net, in_keys=[*in_keys, keys.critic_hidden(group), keys.IS_INIT],
                            out_keys=[keys.state_value(group), (keys.NEXT, *keys.critic_hidden(group))])


def make_attention_critic(env: EnvBase, group: str, cfg_model: ModelConfig) -> TensorDictModule:
    """The attention critic of ``group`` (``model.critic: attention``); writes ``(group, "state_value")``.

    Reads ``(group, "observation")`` (one token per agent), for ``all_obs``
    every other group's observation too (one token per agent), the root
    ``"state"`` where the critic input is ``state`` (or ``auto`` and the env
    has one) as one more token, and ``(group, "mask")`` where the env marks
    live agents (a dead agent is no key for the others). Its weights do not
    depend on the number of agents (:class:`AttentionCritic`).
    """
    spec = env.observation_spec_unbatched
    mode = critic_mode(env, cfg_model)
    own = keys.observation(group)
    others = [keys.observation(g) for g in env.group_map if g != group] if mode == "all_obs" else []
    state = mode == "state"
    if state:
        global_inputs(env, group, "state")  # the one clear error when the env has no state
    masked = keys.mask(group) in env.observation_spec.keys(True)
    net = AttentionCritic(
        tuple(spec[own].shape[1:]), cfg_model,
        other_shapes=tuple(tuple(spec[k].shape[1:]) for k in others),
        state_shape=tuple(spec[keys.STATE].shape) if state else None, masked=masked,
    )
    if cfg_model.orthogonal_init:
        orthogonal_init_(net.head, last_gain=1.0)
    in_keys = [own, *others] + ([keys.STATE] if state else []) + ([keys.mask(group)] if masked else [])
    return TensorDictModule(net, in_keys=in_keys, out_keys=[keys.state_value(group)])
