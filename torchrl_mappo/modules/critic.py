"""``make_critic``: the value function of one group, centralized by default."""
from __future__ import annotations

from tensordict.nn import TensorDictModule
from torch import nn
from torchrl.envs import EnvBase

from torchrl_mappo import keys
from torchrl_mappo.config import ModelConfig
from torchrl_mappo.modules.actor import group_sizes
from torchrl_mappo.modules.nets import (
    AgentValues,
    BroadcastToAgents,
    ConcatAgents,
    make_agent_mlp,
    make_mlp,
)


def has_global_state(env: EnvBase) -> bool:
    return keys.STATE in env.observation_spec.keys()


def make_critic(env: EnvBase, group: str, cfg_model: ModelConfig) -> TensorDictModule:
    """Build the critic of ``group``; writes ``(group, "state_value")``, ``[*B, n_agents, 1]``.

    Input, when ``cfg_model.centralized`` (MAPPO):

    - the env's global state (root ``"state"``) when the env has one;
    - otherwise every agent's observation of the group, concatenated
      (VMAS has no global state), read from ``(group, "observation")``.

    With ``share_params`` one network maps that input to one value per agent
    (one output unit per agent: values differ where rewards do). Without it,
    each agent has its own network on the same global input (vmapped).

    ``centralized: false`` gives IPPO's local critic: each agent's value
    depends on its own observation only.
    """
    n_agents, obs_dim = group_sizes(env, group)
    share = cfg_model.share_params

    if not cfg_model.centralized:
        net = make_agent_mlp(obs_dim, 1, n_agents, cfg_model, share_params=share)
        in_key = keys.observation(group)
    elif has_global_state(env):
        in_key = keys.STATE
        state_spec = env.observation_spec_unbatched[keys.STATE]
        state_dim = state_spec.shape.numel()
        flatten = nn.Flatten(-len(state_spec.shape), -1) if len(state_spec.shape) != 1 else nn.Identity()
        if share:
            net = nn.Sequential(flatten, make_mlp(state_dim, n_agents, cfg_model), AgentValues())
        else:
            net = nn.Sequential(
                flatten,
                BroadcastToAgents(n_agents),
                make_agent_mlp(state_dim, 1, n_agents, cfg_model, share_params=False),
            )
    else:
        in_key = keys.observation(group)
        if share:
            net = nn.Sequential(ConcatAgents(), make_mlp(n_agents * obs_dim, n_agents, cfg_model), AgentValues())
        else:
            net = make_agent_mlp(obs_dim, 1, n_agents, cfg_model, centralized=True, share_params=False)
    return TensorDictModule(net, in_keys=[in_key], out_keys=[keys.state_value(group)])
