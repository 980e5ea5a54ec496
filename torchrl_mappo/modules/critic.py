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
    FlattenTrailing,
    make_agent_mlp,
    make_mlp,
)


def has_global_state(env: EnvBase) -> bool:
    return keys.STATE in env.observation_spec.keys()


def critic_inputs(env: EnvBase, group: str, cfg_model: ModelConfig) -> tuple[list, list[int], int]:
    """What the centralized critic of ``group`` reads: ``(in_keys, ndims, width)``.

    ``ndims[i]``: trailing dims of ``in_keys[i]`` flattened into the input;
    ``width``: the flat input size.
    """
    choice = cfg_model.critic_input
    if choice == "auto":
        choice = "state" if has_global_state(env) else "concat_obs"
    spec = env.observation_spec_unbatched
    if choice == "state":
        if not has_global_state(env):
            raise ValueError(
                "model.critic_input='state' but this env has no global state (root 'state'); "
                "use 'concat_obs' or 'all_obs' (VMAS has no state; PettingZoo needs env.return_state: true)"
            )
        in_keys = [keys.STATE]
        shapes = [spec[keys.STATE].shape]
        ndims = [len(shapes[0])]
    else:
        groups = [group] if choice == "concat_obs" else list(env.group_map)
        in_keys = [keys.observation(g) for g in groups]
        shapes = [spec[k].shape for k in in_keys]
        ndims = [len(s) for s in shapes]  # agent dim + observation dims
    width = sum(s.numel() for s in shapes)
    return in_keys, ndims, width


def make_critic(env: EnvBase, group: str, cfg_model: ModelConfig) -> TensorDictModule:
    """Build the critic of ``group``; writes ``(group, "state_value")``, ``[*B, n_agents, 1]``.

    Input, when ``cfg_model.centralized`` (MAPPO), by ``cfg_model.critic_input``:

    - ``auto``: the env's global state (root ``"state"``) when it has one,
      otherwise ``concat_obs`` (VMAS has no global state);
    - ``state``: root ``"state"``;
    - ``concat_obs``: every agent's ``(group, "observation")``, concatenated;
    - ``all_obs``: every group's observations, concatenated.

    With ``share_params`` one network maps that input to one value per agent
    (one output unit per agent: values differ where rewards do). Without it,
    each agent has its own network on the same global input (vmapped).

    ``centralized: false`` gives IPPO's local critic: each agent's value
    depends on its own observation only.
    """
    n_agents, obs_dim = group_sizes(env, group)
    share = cfg_model.share_params

    if not cfg_model.centralized:
        obs_ndim = len(env.observation_spec_unbatched[keys.observation(group)].shape) - 1
        net = nn.Sequential(
            FlattenTrailing([obs_ndim]),
            make_agent_mlp(obs_dim, 1, n_agents, cfg_model, share_params=share),
        )
        return TensorDictModule(net, in_keys=[keys.observation(group)], out_keys=[keys.state_value(group)])

    in_keys, ndims, width = critic_inputs(env, group, cfg_model)
    if share:
        net = nn.Sequential(FlattenTrailing(ndims), make_mlp(width, n_agents, cfg_model), AgentValues())
    else:
        net = nn.Sequential(
            FlattenTrailing(ndims),
            BroadcastToAgents(n_agents),
            make_agent_mlp(width, 1, n_agents, cfg_model, share_params=False),
        )
    return TensorDictModule(net, in_keys=in_keys, out_keys=[keys.state_value(group)])
