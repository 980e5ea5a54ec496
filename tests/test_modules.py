"""Actor and critic: shapes, parameter counts, and what the critic really sees."""
import math

import pytest
import torch
from tensordict import TensorDict
from torchrl.data import Composite, Unbounded

from conftest import small_cfg
from torchrl_mappo import keys, make_actor, make_critic, make_env
from torchrl_mappo.modules import make_random_actor
from torchrl_mappo.config import ConfigError, ModelConfig
from torchrl_mappo.modules.critic import has_global_state

N_AGENTS, OBS_DIM, ACT_DIM = 3, 18, 2  # VMAS navigation with 3 agents
GROUP = "agents"


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def mlp_params(sizes):
    """Linear + LayerNorm parameters of an MLP with the given layer sizes."""
    total = 0
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        total += a * b + b
        if i < len(sizes) - 2:
            total += 2 * b  # LayerNorm weight + bias
    return total


@pytest.fixture(scope="module", params=[True, False], ids=["continuous", "discrete"])
def env(request):
    return make_env(small_cfg(env={"continuous_actions": request.param}).env, seed=0)


def obs_td(batch=5):
    return TensorDict({keys.observation(GROUP): torch.randn(batch, N_AGENTS, OBS_DIM)}, batch_size=[batch])


@pytest.mark.parametrize("share", [True, False], ids=["shared", "per_agent"])
def test_actor_shapes_and_params(env, share):
    cfg = ModelConfig(hidden_sizes=[16, 16], share_params=share)
    actor = make_actor(env, GROUP, cfg)
    td = actor(obs_td())
    continuous = env.full_action_spec_unbatched[keys.action(GROUP)].dtype.is_floating_point
    assert td[keys.action_log_prob(GROUP)].shape == (5, N_AGENTS)
    if continuous:
        assert td[keys.action(GROUP)].shape == (5, N_AGENTS, ACT_DIM)
        spec = env.full_action_spec_unbatched[keys.action(GROUP)]
        a = td[keys.action(GROUP)]
        assert (a >= spec.space.low).all() and (a <= spec.space.high).all()
        out_dim, log_std = ACT_DIM, ACT_DIM
    else:
        assert td[keys.action(GROUP)].shape == (5, N_AGENTS)
        n_actions = env.full_action_spec_unbatched[keys.action(GROUP)].space.n
        assert td[keys.action(GROUP)].max() < n_actions
        out_dim, log_std = n_actions, 0
    per_net = mlp_params([OBS_DIM, 16, 16, out_dim]) + log_std
    assert n_params(actor) == (per_net if share else N_AGENTS * per_net)


def test_per_agent_actor_gives_agents_different_outputs(env):
    """Without sharing, identical observations still give each agent its own output."""
    actor = make_actor(env, GROUP, ModelConfig(hidden_sizes=[16, 16], share_params=False))
    td = obs_td(1)
    td[keys.observation(GROUP)] = torch.ones(1, N_AGENTS, OBS_DIM)
    key = keys.loc(GROUP) if keys.loc(GROUP) in actor.out_keys else keys.logits(GROUP)
    out = actor(td)[key][0]
    assert not torch.allclose(out[0], out[1])
    shared = make_actor(env, GROUP, ModelConfig(hidden_sizes=[16, 16], share_params=True))
    out = shared(td.clone())[key][0]
    assert torch.allclose(out[0], out[1])


@pytest.mark.parametrize("share", [True, False], ids=["shared", "per_agent"])
@pytest.mark.parametrize("centralized", [True, False], ids=["central", "local"])
def test_critic_shapes_and_params(env, share, centralized):
    cfg = ModelConfig(hidden_sizes=[16, 16], share_params=share, centralized=centralized)
    critic = make_critic(env, GROUP, cfg)
    assert critic(obs_td())[keys.state_value(GROUP)].shape == (5, N_AGENTS, 1)
    if centralized and share:
        expected = mlp_params([N_AGENTS * OBS_DIM, 16, 16, N_AGENTS])
    elif centralized:
        expected = N_AGENTS * mlp_params([N_AGENTS * OBS_DIM, 16, 16, 1])
    else:
        expected = (1 if share else N_AGENTS) * mlp_params([OBS_DIM, 16, 16, 1])
    assert n_params(critic) == expected


@pytest.mark.parametrize("share", [True, False], ids=["shared", "per_agent"])
@pytest.mark.parametrize("centralized", [True, False], ids=["central", "local"])
def test_critic_sees_every_agent_only_when_centralized(env, share, centralized):
    critic = make_critic(env, GROUP, ModelConfig(hidden_sizes=[16, 16], share_params=share, centralized=centralized))
    td = obs_td()
    before = critic(td.clone())[keys.state_value(GROUP)]
    td[keys.observation(GROUP)][:, 0] += 1.0  # perturb agent 0 only
    after = critic(td)[keys.state_value(GROUP)]
    agent0_changed = not torch.allclose(before[:, 0], after[:, 0])
    others_changed = not torch.allclose(before[:, 1:], after[:, 1:])
    assert agent0_changed
    assert others_changed == centralized


class _StateEnv:
    """The three things make_critic reads from an env, for an env with a global state."""

    def __init__(self, state_dim=7):
        self.group_map = {GROUP: [f"agent_{i}" for i in range(N_AGENTS)]}
        self.observation_spec_unbatched = Composite(
            {GROUP: Composite(observation=Unbounded(shape=(N_AGENTS, OBS_DIM)), shape=(N_AGENTS,)),
             keys.STATE: Unbounded(shape=(state_dim,))}
        )
        self.observation_spec = self.observation_spec_unbatched


@pytest.mark.parametrize("share", [True, False], ids=["shared", "per_agent"])
def test_critic_uses_global_state_when_env_has_one(share):
    env = _StateEnv()
    assert has_global_state(env)
    critic = make_critic(env, GROUP, ModelConfig(hidden_sizes=[16, 16], share_params=share))
    assert critic.in_keys == [keys.STATE]
    td = TensorDict({keys.STATE: torch.randn(5, 7)}, batch_size=[5])
    values = critic(td.clone())[keys.state_value(GROUP)]
    assert values.shape == (5, N_AGENTS, 1)
    td[keys.STATE][:, 0] += 1.0
    assert not torch.allclose(values, critic(td)[keys.state_value(GROUP)])


def test_agent_specific_critic_takes_the_global_state_and_own_observation():
    critic = make_critic(_StateEnv(), GROUP, ModelConfig(hidden_sizes=[8], critic_input="agent_specific"))
    assert critic.in_keys == [keys.STATE, keys.observation(GROUP)]
    first = [m for m in critic.modules() if isinstance(m, torch.nn.Linear)][0]
    assert first.in_features == 7 + OBS_DIM + N_AGENTS  # state + own observation + one-hot id


def test_state_critic_without_a_state_is_a_clear_error(env):
    with pytest.raises(ConfigError, match="model.critic_input='state' but this env has no global state"):
        make_critic(env, GROUP, ModelConfig(critic_input="state"))


@pytest.mark.parametrize("share", [True, False], ids=["shared", "per_agent"])
def test_orthogonal_critic_has_a_unit_gain_value_head(env, share):
    critic = make_critic(env, GROUP, ModelConfig(hidden_sizes=[16], orthogonal_init=True, share_params=share,
                                                 critic_input="local"))
    if share:
        head = [m.weight.detach() for m in critic.modules() if isinstance(m, torch.nn.Linear)][-1]
    else:
        mlp = next(m for m in critic.modules() if hasattr(m, "params") and hasattr(m, "n_agents"))
        head = [v[0] for k, v in mlp.params.items(True, True) if k[-1] == "weight" and v.ndim == 3][-1]
    torch.testing.assert_close(head @ head.T, torch.eye(1), atol=1e-5, rtol=0)  # a 1x16 head, gain 1


def test_unknown_group_is_a_clear_error(env):
    with pytest.raises(ValueError, match="group 'nope' is not in the env"):
        make_actor(env, "nope", ModelConfig())
    with pytest.raises(ValueError, match=r"group 'nope' is not in the env; its groups are \['agents'\]"):
        make_random_actor(env, "nope")


def test_discrete_actor_refuses_an_initial_log_std(env):
    if env.full_action_spec_unbatched[keys.action(GROUP)].dtype.is_floating_point:
        assert make_actor(env, GROUP, ModelConfig(hidden_sizes=[8], init_log_std=-1.0)) is not None
        return
    with pytest.raises(ConfigError, match="model.init_log_std=-1.0: group 'agents' has discrete actions"):
        make_actor(env, GROUP, ModelConfig(hidden_sizes=[8], init_log_std=-1.0))


def test_checkpoints_hold_parameters_only(env):
    """The agent-id and other-agents masks are constants rebuilt by the builders, not state."""
    actor = make_actor(env, GROUP, ModelConfig(hidden_sizes=[8], actor_agent_id=True))
    critic = make_critic(env, GROUP, ModelConfig(hidden_sizes=[8], critic_joint_actions=True,
                                                 critic_input="agent_specific"))
    for module in (actor, critic):
        assert set(module.state_dict()) == {name for name, _ in module.named_parameters()}


@pytest.mark.parametrize("share", [True, False], ids=["shared", "per_agent"])
def test_local_critic_flattens_image_observations(share):
    """Per-agent image observations [*B, n, H, W] (MAgent2's views) are flattened per agent."""
    env = _StateEnv()
    env.observation_spec_unbatched[GROUP, "observation"] = Unbounded(shape=(N_AGENTS, 2, 3))
    critic = make_critic(env, GROUP, ModelConfig(hidden_sizes=[8], critic_input="local", share_params=share))
    td = TensorDict({keys.observation(GROUP): torch.randn(4, 5, N_AGENTS, 2, 3)}, batch_size=[4, 5])
    before = critic(td.clone())[keys.state_value(GROUP)]
    assert before.shape == (4, 5, N_AGENTS, 1)
    td[keys.observation(GROUP)][..., 0, 1, 2] += 1.0  # one pixel of agent 0
    after = critic(td)[keys.state_value(GROUP)]
    assert not torch.allclose(before[..., 0, :], after[..., 0, :])
    assert torch.allclose(before[..., 1:, :], after[..., 1:, :])


@pytest.mark.parametrize("share", [True, False], ids=["shared", "per_agent"])
@pytest.mark.parametrize("recurrent", ["none", "gru"])
def test_state_dependent_std_is_an_output_of_the_network(share, recurrent):
    env = make_env(small_cfg(env={"continuous_actions": True}).env, seed=0)
    cfg = ModelConfig(hidden_sizes=[16], share_params=share, state_dependent_std=True, init_log_std=-1.0,
                      recurrent=recurrent)
    actor = make_actor(env, GROUP, cfg)
    td = obs_td(batch=6)
    if recurrent != "none":
        td[keys.actor_hidden(GROUP)] = torch.zeros(6, N_AGENTS, cfg.recurrent_layers, cfg.recurrent_hidden)
        td[keys.IS_INIT] = torch.ones(6, 1, dtype=torch.bool)
    td[keys.observation(GROUP)][1] += 5.0  # another state
    out = actor(td)
    scale = out[keys.scale(GROUP)]
    assert scale.shape == (6, N_AGENTS, ACT_DIM)
    assert not any("log_std" in name for name, _ in actor.named_parameters())
    assert not torch.allclose(scale[0], scale[1])  # it depends on the observation
    scale.sum().backward()  # and the network learns it
    assert all(p.grad is not None for p in actor.parameters())


def test_state_dependent_std_starts_at_exp_init_log_std():
    env = make_env(small_cfg(env={"continuous_actions": True}).env, seed=0)
    cfg = ModelConfig(hidden_sizes=[16], state_dependent_std=True, init_log_std=-1.0, orthogonal_init=True)
    scale = make_actor(env, GROUP, cfg)(obs_td(batch=50))[keys.scale(GROUP)]
    assert torch.allclose(scale, torch.full_like(scale, math.exp(-1.0)), rtol=0.05)
