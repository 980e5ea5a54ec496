"""Multi-group training: regrouping, reward sharing, per-group updates, dead agents, MAgent2."""
import math

import pytest
import torch
from tensordict import TensorDict

from conftest import CONFIGS
from torchrl_mappo import ConfigError, Trainer, keys, load_config, make_actor, make_critic, make_env, make_loss
from torchrl_mappo.config import config_from_dict
from torchrl_mappo.envs.family_magent import fix_magent_reset
from torchrl_mappo.envs.transforms import RewardSharing
from torchrl.modules import MultiAgentMLP


def nav4(**env):
    return config_from_dict({"env": {"num_envs": 2, "max_steps": 10, "scenario_kwargs": {"n_agents": 4}, **env},
                             "model": {"hidden_sizes": [8]}}).env


# --------------------------------------------------------------------------- #
# group_map
# --------------------------------------------------------------------------- #
def test_group_map_teams_regroup_agents():
    env = make_env(nav4(group_map={"red": ["agent_0", "agent_1"], "blue": ["agent_2", "agent_3"]}))
    assert env.group_map == {"red": ["agent_0", "agent_1"], "blue": ["agent_2", "agent_3"]}
    td = env.rand_step(env.reset())
    assert td["red", "observation"].shape == (2, 2, 18)
    assert td["next", "blue", "episode_reward"].shape == (2, 2, 1)


def test_group_map_presets():
    assert list(make_env(nav4(group_map="per_agent")).group_map) == ["agent_0", "agent_1", "agent_2", "agent_3"]
    assert len(make_env(nav4(group_map="all_in_one")).group_map) == 1
    assert list(make_env(nav4()).group_map) == ["agents"]


@pytest.mark.parametrize("group_map,words", [
    ({"red": ["agent_0", "agent_9"], "blue": ["agent_2", "agent_3", "agent_1"]}, "unknown agent(s) ['agent_9']"),
    ({"red": ["agent_0", "agent_1"], "blue": ["agent_2"]}, "agent(s) ['agent_3'] are in no team"),
])
def test_group_map_against_the_env(group_map, words):
    with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")):
        make_env(nav4(group_map=group_map))


@pytest.mark.parametrize("group_map,words", [
    ({"red": ["agent_0", "agent_1"], "blue": ["agent_1", "agent_2"]}, "is in two teams"),
    ({"red": []}, "non-empty list"),
    ({}, "empty"),
    ("by_name", "per_agent, all_in_one"),
])
def test_group_map_config_errors(group_map, words):
    with pytest.raises(ConfigError, match=words):
        nav4(group_map=group_map)


def test_all_in_one_with_different_observation_sizes_is_a_config_error():
    cfg = config_from_dict({"env": {"family": "pettingzoo", "scenario": "simple_tag_v3", "num_envs": 1,
                                    "max_steps": 5, "continuous_actions": False, "group_map": "all_in_one"}})
    with pytest.raises(ConfigError, match="observations differ in shape"):
        make_env(cfg.env)


def test_per_group_settings_must_name_env_groups():
    cfg = config_from_dict({"env": {"num_envs": 2, "max_steps": 10}, "per_group": {"agnets": {"lr": 1e-3}},
                            "train": {"frames_per_batch": 20, "total_frames": 20, "minibatch_size": 10}})
    with pytest.raises(ConfigError, match="per_group.agnets: the env has no group 'agnets'; did you mean 'agents'"):
        Trainer.from_config(cfg)
    with pytest.raises(ConfigError, match="per_group.agents.model.share_param"):
        config_from_dict({"per_group": {"agents": {"model": {"share_param": False}}}})
    with pytest.raises(ConfigError, match="per_group.agents.loss.gamma"):
        config_from_dict({"per_group": {"agents": {"loss": {"gamma": 3}}}})


# --------------------------------------------------------------------------- #
# Reward sharing
# --------------------------------------------------------------------------- #
def test_reward_sharing_arithmetic():
    r = torch.tensor([[1.0], [2.0], [6.0]])  # 3 agents, team mean 3
    assert torch.equal(RewardSharing.share(r, 0.0), r)
    assert torch.allclose(RewardSharing.share(r, 1.0), torch.full((3, 1), 3.0))
    assert torch.allclose(RewardSharing.share(r, 0.25), torch.tensor([[1.5], [2.25], [5.25]]))
    # Dead agents (mask False) are left out of the team mean and keep their own reward.
    mask = torch.tensor([True, True, False])
    assert torch.allclose(RewardSharing.share(r, 1.0, mask), torch.tensor([[1.5], [1.5], [6.0]]))


def test_reward_sharing_means_over_each_envs_live_agents():
    reward = torch.tensor([[[1.0], [2.0], [6.0]], [[3.0], [5.0], [7.0]]])  # 2 envs x 3 agents
    alive = torch.tensor([[True, True, False], [False, True, False]])
    td = TensorDict({"next": {"a": {"reward": reward.clone(), "mask": alive}}}, batch_size=[2])
    RewardSharing({"a": "shared"})(td)
    # env 0: the two live agents share 1.5; env 1: the only live agent keeps 5; the dead keep their own
    assert td["next", "a", "reward"].squeeze(-1).tolist() == [[1.5, 1.5, 6.0], [3.0, 5.0, 7.0]]


def test_reward_sharing_modes_and_weights_are_checked():
    t = RewardSharing({"a": "shared", "b": "individual", "c": ("mixed", 0.25)})
    assert {g: (r.mode, r.weight) for g, r in t.shares.items()} == {
        "a": ("shared", 1.0), "b": ("individual", 0.0), "c": ("mixed", 0.25)}
    assert t.in_keys == t.out_keys == [("a", "reward"), ("b", "reward"), ("c", "reward")]
    for bad in (1.5, -0.1):
        with pytest.raises(ValueError, match=r"group 'a': mixed needs a weight in \[0, 1\]"):
            RewardSharing({"a": ("mixed", bad)})
    with pytest.raises(ValueError, match="a weight only applies to mode 'mixed'"):
        RewardSharing({"a": ("shared", 0.3)})  # a weight the mode would ignore


def test_reward_sharing_transform_on_a_batch_and_modes():
    td = TensorDict({"next": {"a": {"reward": torch.tensor([[[0.0], [4.0]]])},
                              "b": {"reward": torch.tensor([[[1.0], [3.0]]])},
                              "c": {"reward": torch.tensor([[[2.0], [6.0]]])}}}, batch_size=[1])
    RewardSharing({"a": "shared", "b": ("mixed", 0.5), "c": "individual"})(td)
    assert td["next", "a", "reward"].flatten().tolist() == [2.0, 2.0]
    assert td["next", "b", "reward"].flatten().tolist() == [1.5, 2.5]
    assert td["next", "c", "reward"].flatten().tolist() == [2.0, 6.0]
    with pytest.raises(ValueError, match="mode"):
        RewardSharing({"a": "everyone"})


def test_reward_sharing_in_the_env_trains_on_shared_but_reports_raw_returns():
    env = make_env(nav4(reward_sharing={"agents": "shared"}))
    td = env.rollout(5, break_when_any_done=False)
    reward = td["next", "agents", "reward"]
    assert torch.allclose(reward, reward.mean(-2, keepdim=True).expand_as(reward))
    raw = make_env(nav4(), seed=0).rollout(1)
    assert raw["next", "agents", "episode_reward"].shape == (2, 1, 4, 1)


def test_shared_rewards_train_but_episode_returns_stay_the_envs_own():
    """RewardSum sits before RewardSharing: the reported return sums each agent's raw reward,
    whose team mean is the shared reward the agents train on."""
    env = make_env(nav4(reward_sharing={"agents": "shared"}, max_steps=50,
                        scenario_kwargs={"n_agents": 4, "shared_rew": False}), seed=0)
    td = env.rollout(6, break_when_any_done=False)
    reward = td["next", "agents", "reward"]  # [envs, steps, agents, 1]
    assert torch.allclose(reward, reward.mean(-2, keepdim=True).expand_as(reward))
    ep = td["next", "agents", "episode_reward"]
    raw = torch.cat([ep[:, :1], ep[:, 1:] - ep[:, :-1]], dim=1)  # no episode ends in 6 steps
    torch.testing.assert_close(raw.mean(-2, keepdim=True).expand_as(reward), reward, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(raw, raw.mean(-2, keepdim=True).expand_as(raw))  # not the shared one


def test_reward_sharing_config_errors():
    with pytest.raises(ConfigError, match="mixed needs a weight"):
        nav4(reward_sharing={"agents": {"mode": "mixed"}})
    with pytest.raises(ConfigError, match="not one of individual, shared, mixed"):
        nav4(reward_sharing={"agents": "communism"})
    with pytest.raises(ConfigError, match="env.reward_sharing.robots: the env has no group"):
        make_env(nav4(reward_sharing={"robots": "shared"}))


# --------------------------------------------------------------------------- #
# Two groups
# --------------------------------------------------------------------------- #
def tag_trainer(**per_group):
    cfg = config_from_dict({
        "env": {"scenario": "simple_tag", "num_envs": 4, "max_steps": 20},
        "model": {"hidden_sizes": [16]},
        "train": {"frames_per_batch": 80, "total_frames": 160, "minibatch_size": 40, "num_epochs": 1},
        "run": {"progress_bar": False},
        "per_group": per_group,
    })
    return Trainer.from_config(cfg)


def test_two_group_update_moves_each_group_with_its_own_loss_only():
    trainer = tag_trainer(agent={"lr": 1e-2, "model": {"share_params": False}})
    assert set(trainer.losses) == {"adversary", "agent"}
    adv, prey = trainer.losses["adversary"], trainer.losses["agent"]
    # Separate parameters and optimizers; the per-group lr and model override applied.
    assert not {id(p) for p in adv.parameters()} & {id(p) for p in prey.parameters()}
    assert trainer.optimizers["agent"][0].param_groups[0]["lr"] == 1e-2
    assert trainer.optimizers["adversary"][0].param_groups[0]["lr"] == pytest.approx(3e-4)
    assert any(isinstance(m, MultiAgentMLP) for m in prey.actor_network.modules())
    assert not any(isinstance(m, MultiAgentMLP) for m in adv.actor_network.modules())

    batch = next(iter(trainer.collector))
    trainer.compute_advantages(batch)
    # One group's loss gives no gradient to the other group's parameters.
    out = adv(batch.reshape(-1))
    (out["loss_objective"] + out["loss_critic"]).backward()
    assert all(p.grad is None for p in prey.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in adv.parameters())
    adv.zero_grad(set_to_none=True)

    before = {g: [p.detach().clone() for p in loss.parameters()] for g, loss in trainer.losses.items()}
    metrics = trainer.update(batch)
    for g, loss in trainer.losses.items():
        assert any(not torch.equal(b, p) for b, p in zip(before[g], loss.parameters())), g
        assert math.isfinite(metrics[f"{g}/loss_objective"])
    trainer.collector.shutdown()


def test_per_group_loss_overrides_reach_that_groups_loss_only():
    trainer = tag_trainer(agent={"loss": {"clip_epsilon": 0.1, "gamma": 0.5, "entropy_coeff": 0.0}})
    prey, adv = trainer.losses["agent"], trainer.losses["adversary"]
    assert float(prey.clip_epsilon) == pytest.approx(0.1) and float(adv.clip_epsilon) == pytest.approx(0.2)
    assert float(prey.value_estimator.gamma) == pytest.approx(0.5)
    assert float(adv.value_estimator.gamma) == pytest.approx(0.99)
    assert not prey.entropy_bonus and adv.entropy_bonus
    trainer.collector.shutdown()


def test_random_group_acts_but_does_not_learn():
    trainer = tag_trainer(agent={"policy": "random"})
    assert list(trainer.losses) == ["adversary"] and trainer.groups == ["adversary", "agent"]
    history = trainer.train()
    assert "agent/episode_return" in history[-1] and "agent/loss_objective" not in history[-1]
    assert "adversary/loss_objective" in history[-1]


# --------------------------------------------------------------------------- #
# MAgent2: dead agents, the reset fix
# --------------------------------------------------------------------------- #
def magent_cfg():
    return config_from_dict({
        "env": {"family": "magent", "scenario": "battle_v4", "num_envs": 1, "max_steps": 30,
                "continuous_actions": False, "scenario_kwargs": {"map_size": 12}},
        "model": {"hidden_sizes": [16]},
    })


def test_magent_reset_counts_teams_after_placing_them():
    from magent2.environments import battle_v4

    raw = battle_v4.parallel_env(map_size=12, max_cycles=10)
    raw.reset()
    assert raw.team_sizes == [0, 0], "magent2 fixed its reset bug: drop fix_magent_reset"
    fixed = fix_magent_reset(battle_v4.parallel_env(map_size=12, max_cycles=10))
    fixed.reset()
    assert fixed.team_sizes == [fixed.env.get_num(h) for h in fixed.handles] == [2, 2]
    # On the first step each team receives exactly its own agents' actions.
    sent = []
    original = fixed.env.set_action
    fixed.env.set_action = lambda handle, acts: (sent.append((handle.value, list(acts))), original(handle, acts))[1]
    fixed.step({"red_0": 1, "red_1": 2, "blue_0": 3, "blue_1": 4})
    assert sent == [(0, [1, 2]), (1, [3, 4])]


def test_dead_agents_steps_carry_no_loss():
    cfg = magent_cfg()
    env = make_env(cfg.env, seed=0)
    actor, critic = make_actor(env, "red", cfg.model), make_critic(env, "red", cfg.model)
    loss = make_loss(actor, critic, env, "red", cfg.loss)
    assert loss.loss_mask_key == keys.mask("red")
    from torchrl_mappo.modules import make_random_actor
    from tensordict.nn import TensorDictSequential
    with torch.no_grad():
        batch = env.rollout(20, TensorDictSequential(actor, make_random_actor(env, "blue")), break_when_any_done=False)
        loss.value_estimator(batch, params=loss.critic_network_params, target_params=loss.target_critic_network_params)
    mask = batch[keys.mask("red")].clone()
    mask[10:, 0] = False  # red_0 "dies" at step 10
    batch[keys.mask("red")] = mask

    def loss_and_grads(b):
        loss.zero_grad(set_to_none=True)
        out = loss(b)
        total = out["loss_objective"] + out["loss_critic"] + out["loss_entropy"]
        total.backward()
        return total.detach(), [p.grad.clone() for p in loss.parameters() if p.grad is not None]

    base_loss, base_grads = loss_and_grads(batch.clone())
    poisoned = batch.clone()
    dead = ~mask
    # Whatever a dead agent's steps hold, they must not count.
    poisoned[keys.advantage("red")] = torch.where(dead.unsqueeze(-1), 1e6, batch[keys.advantage("red")])
    poisoned[keys.value_target("red")] = torch.where(dead.unsqueeze(-1), -1e6, batch[keys.value_target("red")])
    poisoned[keys.action_log_prob("red")] = torch.where(dead, -50.0, batch[keys.action_log_prob("red")])
    new_loss, new_grads = loss_and_grads(poisoned)
    assert torch.allclose(base_loss, new_loss, rtol=1e-4, atol=1e-5)
    for a, b in zip(base_grads, new_grads):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)


def test_trainer_zeroes_dead_agents_advantages():
    cfg = config_from_dict({**{k: v for k, v in {"env": magent_cfg().env.__dict__}.items()},
                            "model": {"hidden_sizes": [16]},
                            "train": {"frames_per_batch": 40, "total_frames": 40, "minibatch_size": 20},
                            "per_group": {"blue": {"policy": "random"}}, "run": {"progress_bar": False}})
    trainer = Trainer.from_config(cfg)
    batch = next(iter(trainer.collector))
    batch[keys.mask("red")][20:, 1] = False
    trainer.compute_advantages(batch)
    adv = batch[keys.advantage("red")]
    assert (adv[20:, 1] == 0).all() and (adv[:20] != 0).any()
    trainer.collector.shutdown()


# --------------------------------------------------------------------------- #
# Every config trains one tiny iteration
# --------------------------------------------------------------------------- #
def tiny(path):
    cfg = load_config(path)
    small = ["model.hidden_sizes=[8]", "train.num_epochs=1", "run.progress_bar=false"]
    if cfg.env.family == "vmas":
        small += ["env.num_envs=2", "train.frames_per_batch=20", "train.total_frames=20", "train.minibatch_size=10"]
    else:
        small += ["env.num_envs=2", "train.frames_per_batch=50", "train.total_frames=50", "train.minibatch_size=25"]
    if cfg.env.family == "magent":
        small += ["env.scenario_kwargs.map_size=12"]
    if cfg.model.is_recurrent:  # chunks that fit the tiny batch (10 or 25 steps per env)
        small += ["train.chunk_length=5"]
    return load_config(path, small)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_config_trains_one_tiny_iteration(path):
    trainer = Trainer.from_config(tiny(path))
    history = trainer.train()
    assert len(history) == 1
    for g in trainer.groups:
        assert f"{g}/episode_return" in history[0]
    for g in trainer.losses:
        assert math.isfinite(history[0][f"{g}/loss_objective"])


def test_magent_state_survives_a_wiped_out_team():
    from magent2.environments import battle_v4

    env = fix_magent_reset(battle_v4.parallel_env(map_size=12, max_cycles=10))
    env.reset()
    full = env.state()
    red, blue = env.env.get_handles()
    get_pos = env.env.get_pos
    env.env.get_pos = lambda h: [] if h.value == blue.value else get_pos(h)  # blue wiped out
    state = env.state()
    assert (state[..., 3:5] == 0).all()  # no blue left on the map
    assert (state[..., :3] == full[..., :3]).all()  # walls and red unchanged


def test_survivors_at_episode_end():
    from torchrl_mappo.metrics import survivors

    def batch(red_mask, red_term, blue_mask, blue_term):
        t = lambda x: torch.tensor(x)
        return TensorDict({
            "red": {"mask": t([red_mask])}, "blue": {"mask": t([blue_mask])},
            "next": {"done": t([[True]]), "red": {"terminated": t([red_term]).unsqueeze(-1)},
                     "blue": {"terminated": t([blue_term]).unsqueeze(-1)}},
        }, batch_size=[1])

    # Ends at max_cycles: red_1 was killed in the last step, blue_1 died earlier.
    out = survivors(batch([True, True], [False, True], [True, False], [False, True]), ["red", "blue"])
    assert out["red"].tolist() == [1] and out["blue"].tolist() == [1]
    # Game over (a team wiped out): MAgent2 terminates everyone; count who was alive.
    out = survivors(batch([True, True], [True, True], [True, False], [True, True]), ["red", "blue"])
    assert out["red"].tolist() == [2] and out["blue"].tolist() == [1]


@pytest.mark.parametrize("scenario,map_size", [("battlefield_v5", 46), ("adversarial_pursuit_v4", 20),
                                               ("tiger_deer_v4", 20), ("combined_arms_v6", 20)])
def test_every_magent2_scenario_builds_with_its_teams_and_the_fixes(scenario, map_size):
    """The magent family takes any magent2 env (not only battle): its teams as groups, live-agent masks,
    and magent2's reset fix (the first step's actions reach each team's own agents)."""
    from torchrl_mappo.envs.family_magent import magent_scenarios

    assert scenario in magent_scenarios()
    cfg = config_from_dict({"env": {"family": "magent", "scenario": scenario, "num_envs": 1, "max_steps": 5,
                                    "continuous_actions": False, "scenario_kwargs": {"map_size": map_size}}})
    env = make_env(cfg.env, seed=0)
    raw = env.base_env._env
    assert raw.state.__qualname__.startswith("fix_magent_reset")
    td = env.rollout(3)
    assert len(env.group_map) >= 2 and all(td.get((g, "mask")).any() for g in env.group_map)
    assert raw.team_sizes == [raw.env.get_num(h) for h in raw.handles] and min(raw.team_sizes) > 0


def test_a_magent2_env_named_by_import_path_gets_the_magent_fixes():
    cfg = config_from_dict({"env": {"family": "pettingzoo", "scenario": "magent2.environments.tiger_deer_v4",
                                    "num_envs": 1, "max_steps": 5, "scenario_kwargs": {"map_size": 20}}})
    env = make_env(cfg.env, seed=0)
    raw = env.base_env._env
    assert raw.state.__qualname__.startswith("fix_magent_reset")
    env.reset()
    assert raw.team_sizes == [raw.env.get_num(h) for h in raw.handles] and min(raw.team_sizes) > 0
