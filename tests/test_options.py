"""MAPPO fidelity options: each one changes what it should."""
import math

import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torch import nn

from conftest import route_loss_call, small_cfg
from torchrl_mappo import Trainer, keys, make_actor, make_critic, make_env, make_loss
from torchrl_mappo.config import ConfigError, LossConfig, ModelConfig
from torchrl_mappo.schedules import log_std_params

G, N, OBS = "agents", 3, 18


@pytest.fixture(scope="module")
def env():
    return make_env(small_cfg().env, seed=0)


@pytest.fixture(scope="module")
def denv():
    return make_env(small_cfg(env={"continuous_actions": False}).env, seed=0)


def obs_td(batch=4, actions=None):
    td = TensorDict({keys.observation(G): torch.randn(batch, N, OBS)}, batch_size=[batch])
    if actions is not None:
        td[keys.action(G)] = actions
    return td


# --------------------------------------------------------------------------- #
# Critic inputs
# --------------------------------------------------------------------------- #
def test_agent_specific_critic_sees_global_own_obs_and_id(env):
    critic = make_critic(env, G, ModelConfig(hidden_sizes=[16], critic_input="agent_specific"))
    assert critic.in_keys == [keys.observation(G), keys.observation(G)]
    td = obs_td()
    v0 = critic(td.clone())[keys.state_value(G)]
    td[keys.observation(G)][:, 0] += 1.0
    v1 = critic(td)[keys.state_value(G)]
    assert not torch.allclose(v0[:, 1:], v1[:, 1:])  # global part: others see agent 0
    # Identical observations still give agents different values (the one-hot id).
    same = obs_td(1)
    same[keys.observation(G)] = torch.ones(1, N, OBS)
    v = critic(same)[keys.state_value(G)][0, :, 0]
    assert not torch.allclose(v[0], v[1])
    # width: global (3*18) + own obs (18) + id (3)
    first = [m for m in critic.modules() if isinstance(m, nn.Linear)][0]
    assert first.in_features == N * OBS + OBS + N


def test_all_obs_critic_sees_the_other_groups_and_concat_obs_does_not():
    env = make_env(small_cfg(env={"scenario": "simple_tag", "scenario_kwargs": {}}).env, seed=0)
    td = env.reset()
    for mode, sees_prey in (("all_obs", True), ("concat_obs", False), ("auto", False), ("agent_specific", False)):
        critic = make_critic(env, "adversary", ModelConfig(hidden_sizes=[16], critic_input=mode))
        v0 = critic(td.clone())[keys.state_value("adversary")]
        moved = td.clone()
        moved["agent", "observation"] += 1.0  # only the other group's observation
        v1 = critic(moved)[keys.state_value("adversary")]
        assert (not torch.allclose(v0, v1)) == sees_prey, mode


@pytest.mark.parametrize("share", [True, False], ids=["shared", "per_agent"])
def test_critic_agent_id_tells_agents_apart(env, share):
    same = obs_td(1)
    same[keys.observation(G)] = torch.ones(1, N, OBS)
    cfg = ModelConfig(hidden_sizes=[16], critic_input="local", share_params=share)
    without = make_critic(env, G, cfg)(same.clone())[keys.state_value(G)][0, :, 0]
    if share:  # one network: identical observations, identical values, until the id is added
        assert torch.allclose(without[0], without[1])
    else:  # the id would be a constant input of each agent's own network: refused
        with pytest.raises(ConfigError, match="critic_agent_id"):
            small_cfg(model={"critic_agent_id": True, "share_params": False})
        return
    critic = make_critic(env, G, ModelConfig(hidden_sizes=[16], critic_input="local", critic_agent_id=True))
    with_id = critic(same.clone())[keys.state_value(G)][0, :, 0]
    assert not torch.allclose(with_id[0], with_id[1])
    first = [m for m in critic.modules() if isinstance(m, nn.Linear)][0]
    assert first.in_features == OBS + N


def test_local_critic_input_is_ippo(env):
    critic = make_critic(env, G, ModelConfig(hidden_sizes=[16], critic_input="local"))
    td = obs_td()
    v0 = critic(td.clone())[keys.state_value(G)]
    td[keys.observation(G)][:, 0] += 1.0
    v1 = critic(td)[keys.state_value(G)]
    assert not torch.allclose(v0[:, 0], v1[:, 0]) and torch.allclose(v0[:, 1:], v1[:, 1:])


@pytest.mark.parametrize("critic_input", ["auto", "agent_specific"])
@pytest.mark.parametrize("discrete", [False, True], ids=["continuous", "discrete"])
def test_joint_action_critic_sees_only_the_other_agents_actions(env, denv, discrete, critic_input):
    e = denv if discrete else env
    critic = make_critic(e, G, ModelConfig(hidden_sizes=[16], critic_joint_actions=True, critic_input=critic_input))
    assert keys.action(G) in critic.in_keys
    actions = torch.randint(0, 9, (4, N)) if discrete else torch.rand(4, N, 2)
    td = obs_td(actions=actions)
    v0 = critic(td.clone())[keys.state_value(G)]
    changed = actions.clone()
    if discrete:
        changed[:, 0] = (changed[:, 0] + 1) % 9
    else:
        changed[:, 0] += 0.5
    td[keys.action(G)] = changed
    v1 = critic(td)[keys.state_value(G)]
    assert torch.allclose(v0[:, 0], v1[:, 0]), "an agent's own action must not enter its baseline"
    assert not torch.allclose(v0[:, 1:], v1[:, 1:]), "the others must see agent 0's action"


def test_joint_action_critic_values_the_next_state_with_the_policys_next_actions():
    """GAE's V(s', a'_-i) needs a' from the current policy at s' (not the batch's a, not zeros)."""
    from torchrl.envs.utils import ExplorationType, set_exploration_type

    # A near-deterministic policy: its sample is its mean up to exp(-12).
    trainer = Trainer.from_config(small_cfg(model={"critic_joint_actions": True, "init_log_std": -12.0}))
    batch = next(iter(trainer.collector))
    trainer.compute_advantages(batch)
    with torch.no_grad(), set_exploration_type(ExplorationType.DETERMINISTIC):
        expected = trainer.actors[G](batch["next"].clone(False).exclude(keys.action(G)))[keys.action(G)]
    torch.testing.assert_close(batch["next", G, "action"], expected, atol=1e-3, rtol=0)
    assert not torch.allclose(batch["next", G, "action"], batch[keys.action(G)], atol=1e-3)
    trainer.collector.shutdown()


def test_joint_action_critic_trains(env):
    cfg = small_cfg(model={"critic_joint_actions": True})
    trainer = Trainer.from_config(cfg)
    history = trainer.train()
    assert all(math.isfinite(h["agents/loss_critic"]) for h in history)


# --------------------------------------------------------------------------- #
# Actor options
# --------------------------------------------------------------------------- #
def test_actor_agent_id_tells_shared_agents_apart(env):
    same = obs_td(1)
    same[keys.observation(G)] = torch.ones(1, N, OBS)
    with_id = make_actor(env, G, ModelConfig(hidden_sizes=[16], actor_agent_id=True))(same.clone())[keys.loc(G)][0]
    without = make_actor(env, G, ModelConfig(hidden_sizes=[16]))(same.clone())[keys.loc(G)][0]
    assert not torch.allclose(with_id[0], with_id[1])
    assert torch.allclose(without[0], without[1])


def test_layer_norm_and_activation_switches(env):
    with_ln = make_actor(env, G, ModelConfig(hidden_sizes=[16]))
    no_ln = make_actor(env, G, ModelConfig(hidden_sizes=[16], layer_norm=False, activation="relu"))
    assert any(isinstance(m, nn.LayerNorm) for m in with_ln.modules())
    assert not any(isinstance(m, nn.LayerNorm) for m in no_ln.modules())
    assert any(isinstance(m, nn.ReLU) for m in no_ln.modules())


@pytest.mark.parametrize("share", [True, False], ids=["shared", "per_agent"])
def test_orthogonal_init(env, share):
    actor = make_actor(env, G, ModelConfig(hidden_sizes=[16, 16], orthogonal_init=True, share_params=share))
    if share:
        ws = [m.weight.detach() for m in actor.modules() if isinstance(m, nn.Linear)]
        biases = [m.bias.detach() for m in actor.modules() if isinstance(m, nn.Linear)]
    else:
        mlp = next(m for m in actor.modules() if hasattr(m, "params") and hasattr(m, "n_agents"))
        ws = [v[0] for k, v in mlp.params.items(True, True) if k[-1] == "weight" and v.ndim == 3]
        biases = [v for k, v in mlp.params.items(True, True) if k[-1] == "bias" and v.shape[-1] in (16, 2)]
    hidden, head = ws[1], ws[-1]  # 16x16 hidden layer, 2x16 policy head
    torch.testing.assert_close(hidden @ hidden.T, 2.0 * torch.eye(16), atol=1e-4, rtol=0)
    torch.testing.assert_close(head @ head.T, 1e-4 * torch.eye(2), atol=1e-7, rtol=0)
    assert all((b == 0).all() for b in biases)


# --------------------------------------------------------------------------- #
# Loss options
# --------------------------------------------------------------------------- #
class ConstantCritic(nn.Module):
    """A critic whose prediction is a free parameter: v = theta (per agent)."""

    def __init__(self, values):
        super().__init__()
        self.theta = nn.Parameter(torch.tensor(values))

    def forward(self, obs):
        return self.theta.expand(*obs.shape[:-1]).unsqueeze(-1)


def handmade_batch(env, actor):
    with torch.no_grad():
        td = actor(obs_td(4))
    td[keys.state_value(G)] = torch.tensor([0.0, 1.0, 2.0]).expand(4, N).unsqueeze(-1).clone()  # old values
    td[keys.value_target(G)] = torch.tensor([1.0, -1.0, 2.5]).expand(4, N).unsqueeze(-1).clone()
    td[keys.advantage(G)] = torch.randn(4, N, 1)
    return td


@pytest.mark.parametrize("critic_type", ["l2", "smooth_l1"])
def test_value_clipping_is_the_clipped_form(env, critic_type):
    actor = make_actor(env, G, ModelConfig(hidden_sizes=[8]))
    critic = TensorDictModule(ConstantCritic([0.9, 0.0, 2.05]), in_keys=[keys.observation(G)],
                              out_keys=[keys.state_value(G)])
    cfg = LossConfig(clip_value=0.2, critic_coeff=1.0, loss_critic_type=critic_type)
    loss = make_loss(actor, critic, env, G, cfg)
    td = handmade_batch(env, actor)
    got = loss(td)["loss_critic"]

    v_new = torch.tensor([0.9, 0.0, 2.05])
    v_old, target = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, -1.0, 2.5])
    clipped = v_old + (v_new - v_old).clamp(-0.2, 0.2)
    dist = (lambda a, b: (a - b) ** 2) if critic_type == "l2" else (
        lambda a, b: torch.nn.functional.smooth_l1_loss(a, b, reduction="none"))
    expected = torch.maximum(dist(v_new, target), dist(clipped, target)).mean()
    torch.testing.assert_close(got, expected)
    unclipped = make_loss(actor, critic, env, G, LossConfig(critic_coeff=1.0, loss_critic_type=critic_type))(td)
    torch.testing.assert_close(unclipped["loss_critic"], dist(v_new, target).mean())
    assert not torch.allclose(got, unclipped["loss_critic"])


@pytest.mark.parametrize("critic_type", ["l1", "l2", "smooth_l1"])
def test_critic_loss_is_the_named_distance(env, critic_type):
    actor = make_actor(env, G, ModelConfig(hidden_sizes=[8]))
    critic = TensorDictModule(ConstantCritic([0.9, 0.0, 4.0]), in_keys=[keys.observation(G)],
                              out_keys=[keys.state_value(G)])
    loss = make_loss(actor, critic, env, G, LossConfig(critic_coeff=1.0, loss_critic_type=critic_type))
    got = loss(handmade_batch(env, actor))["loss_critic"]
    diff = torch.tensor([0.9, 0.0, 4.0]) - torch.tensor([1.0, -1.0, 2.5])  # |diff| = 0.1, 1, 1.5
    expected = {"l1": diff.abs(), "l2": diff ** 2,
                "smooth_l1": torch.where(diff.abs() < 1, 0.5 * diff ** 2, diff.abs() - 0.5)}[critic_type]
    torch.testing.assert_close(got, expected.mean())


@pytest.mark.parametrize("normalize", [True, False])
def test_normalize_advantage_switch(env, normalize):
    """At ratio 1 the clipped objective is -mean(advantage): raw without normalisation, 0 with it."""
    actor = make_actor(env, G, ModelConfig(hidden_sizes=[8]))
    critic = make_critic(env, G, ModelConfig(hidden_sizes=[8]))
    loss = make_loss(actor, critic, env, G, LossConfig(normalize_advantage=normalize, entropy_coeff=0.0))
    td = handmade_batch(env, actor)  # log-probs from this very actor: ratio 1
    td[keys.advantage(G)] = torch.randn(4, N, 1) + 3.0
    got = loss(td.clone())["loss_objective"]
    expected = 0.0 if normalize else -float(td[keys.advantage(G)].mean())
    assert float(got.detach()) == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("kind", ["popart", "running"])
def test_value_norm_normalises_critic_targets(env, kind):
    from torchrl.modules import PopArtValueNorm, RunningValueNorm

    actor = make_actor(env, G, ModelConfig(hidden_sizes=[8]))
    critic = TensorDictModule(ConstantCritic([0.0, 0.0, 0.0]), in_keys=[keys.observation(G)],
                              out_keys=[keys.state_value(G)])
    loss = make_loss(actor, critic, env, G, LossConfig(value_norm=kind, critic_coeff=1.0))
    assert isinstance(loss.value_norm, PopArtValueNorm if kind == "popart" else RunningValueNorm)
    td = handmade_batch(env, actor)
    td[keys.value_target(G)] = td[keys.value_target(G)] * 1000.0  # huge returns
    plain = make_loss(actor, critic, env, G, LossConfig(critic_coeff=1.0))(td.clone())["loss_critic"]
    normed = loss(td)["loss_critic"]
    assert normed < plain / 100  # the critic loss lives in normalised units


@pytest.mark.parametrize("kind", ["popart", "running"])
def test_value_norm_divides_the_critic_loss_by_the_running_variance(env, kind):
    """What ``loss.value_norm`` is with TorchRL 0.14 (README): target AND real-scale prediction are
    normalised with the same statistics, so the mean cancels and the critic loss is the plain one
    over the running variance. Nothing rescales the critic's output layer (no PopArt output
    preservation): if TorchRL changes that, this test and the README must change with it."""
    actor = make_actor(env, G, ModelConfig(hidden_sizes=[8]))
    critic = TensorDictModule(ConstantCritic([0.5, -0.5, 3.0]), in_keys=[keys.observation(G)],
                              out_keys=[keys.state_value(G)])
    loss = make_loss(actor, critic, env, G, LossConfig(value_norm=kind, critic_coeff=1.0))
    td = handmade_batch(env, actor)
    td[keys.value_target(G)] = td[keys.value_target(G)] * 100.0 + 50.0
    plain = make_loss(actor, critic, env, G, LossConfig(critic_coeff=1.0))(td.clone())["loss_critic"]
    before = critic(td.clone())[keys.state_value(G)]
    normed = loss(td.clone())["loss_critic"]
    torch.testing.assert_close(normed, plain / loss.value_norm.scale().squeeze() ** 2)
    torch.testing.assert_close(critic(td.clone())[keys.state_value(G)], before)


def test_popart_and_running_value_norms_hold_the_same_statistics():
    """PopArt's EMA (beta 0.99999, debiased) over equal-sized batches is the exact running mean
    and variance to ~1e-4: the two options train the same (README)."""
    from torchrl.modules import PopArtValueNorm, RunningValueNorm

    popart, running = PopArtValueNorm(shape=1), RunningValueNorm(shape=1)
    for step in range(200):
        target = torch.randn(64, 1) * (1.0 + step / 20) + step / 10  # drifting returns
        popart.update(target)
        running.update(target)
    x = torch.linspace(-20, 20, 9).unsqueeze(-1)
    torch.testing.assert_close(popart.normalize(x), running.normalize(x), rtol=2e-3, atol=2e-3)


def test_advantage_is_normalised_over_the_batch_not_per_agent(env):
    loss = make_loss(make_actor(env, G, ModelConfig(hidden_sizes=[8])),
                     make_critic(env, G, ModelConfig(hidden_sizes=[8])), env, G, LossConfig())
    assert loss.normalize_advantage and tuple(loss.normalize_advantage_exclude_dims) == ()
    adv = torch.tensor([[10.0], [1.0], [1.0]]).expand(8, N, 1)
    td = TensorDict({}, batch_size=[8])
    out = loss._standardize_advantage(adv.clone(), td)
    # Per-agent standardisation would zero every agent (constant per agent); batch-wide keeps the order.
    assert (out[:, 0] > 0).all() and (out[:, 1:] < 0).all()


# --------------------------------------------------------------------------- #
# Trainer options
# --------------------------------------------------------------------------- #
def trainer_with(**train):
    return Trainer.from_config(small_cfg(train=train))


def test_separate_optimizers_and_critic_lr():
    trainer = trainer_with(separate_optimizers=True, critic_lr=1e-2, lr=1e-4)
    loss = trainer.losses[G]
    actor_opt, critic_opt = trainer.optimizers[G]
    assert actor_opt.param_groups[0]["lr"] == 1e-4 and critic_opt.param_groups[0]["lr"] == 1e-2
    ids = lambda opt: {id(p) for pg in opt.param_groups for p in pg["params"]}
    assert ids(actor_opt) == {id(p) for p in loss.actor_network.parameters()}
    assert ids(critic_opt) == {id(p) for p in loss.critic_network.parameters()}
    assert ids(actor_opt) | ids(critic_opt) == {id(p) for p in loss.parameters()}
    batch = next(iter(trainer.collector))
    trainer.compute_advantages(batch)
    assert math.isfinite(trainer.update(batch)[f"{G}/loss_critic"])
    trainer.collector.shutdown()


def test_schedules_follow_the_frame_budget():
    cfg = small_cfg(train={"lr_schedule": "linear", "lr": 1e-3, "log_std_end": -1.0, "total_frames": 960,
                           "frames_per_batch": 80, "minibatch_size": 40},
                    loss={"entropy_coeff": 0.02, "entropy_coeff_end": 0.0})
    trainer = Trainer.from_config(cfg)
    trainer.frames = 480
    values = trainer.apply_schedules()
    assert values[f"{G}/lr"] == pytest.approx(5e-4)
    assert trainer.optimizers[G][0].param_groups[0]["lr"] == pytest.approx(5e-4)
    assert float(trainer.losses[G].entropy_coeff) == pytest.approx(0.01)
    td = trainer.actors[G](obs_td(2))
    torch.testing.assert_close(td[keys.scale(G)], torch.full((2, N, 2), math.exp(-0.5)))
    scale_param = log_std_params(trainer.actors[G])[0][0]
    assert not scale_param.requires_grad  # scheduled, not learned
    trainer.collector.shutdown()


def scheduled_updates(**overrides):
    """Train 4 batches of 80 frames; per update: the lr, entropy coeff and log-std it used,
    and the log-std the batch was collected with."""
    cfg = small_cfg(train={"total_frames": 320, "num_epochs": 1, **overrides.pop("train", {})}, **overrides)
    trainer = Trainer.from_config(cfg)
    seen, update = [], trainer.update

    def spy(batch):
        seen.append({
            "lr": trainer.optimizers[G][0].param_groups[0]["lr"],
            "entropy_coeff": float(trainer.losses[G].entropy_coeff),
            "log_std": float(log_std_params(trainer.actors[G])[0][0].detach().mean()),
            "collected_log_std": float(batch[keys.scale(G)].log().mean()),
        })
        return update(batch)

    trainer.update = spy
    history = trainer.train()
    return seen, history


def test_linear_schedules_start_at_full_value_and_never_train_at_zero():
    """Batch k of K trains at lr * (1 - k/K): the first at the full rate, the last at lr/K (issue 19)."""
    seen, history = scheduled_updates(train={"lr_schedule": "linear", "lr": 1e-3},
                                      loss={"entropy_coeff": 0.02, "entropy_coeff_end": 0.0})
    assert [s["lr"] for s in seen] == pytest.approx([1e-3, 7.5e-4, 5e-4, 2.5e-4])
    assert [s["entropy_coeff"] for s in seen] == pytest.approx([0.02, 0.015, 0.01, 0.005])
    # The metrics report the values each update used.
    assert [h[f"{G}/lr"] for h in history] == pytest.approx([1e-3, 7.5e-4, 5e-4, 2.5e-4])
    assert [h[f"{G}/entropy_coeff"] for h in history] == pytest.approx([0.02, 0.015, 0.01, 0.005])


def test_log_std_schedule_trains_a_batch_with_the_log_std_that_collected_it():
    """Moving the log-std between collection and update starts PPO's ratio far from 1 (issue 19)."""
    seen, history = scheduled_updates(train={"log_std_end": -1.0}, model={"init_log_std": 0.6})
    assert [s["log_std"] for s in seen] == pytest.approx([0.6, 0.2, -0.2, -0.6])
    assert [s["collected_log_std"] for s in seen] == pytest.approx([s["log_std"] for s in seen], abs=1e-6)
    assert [h[f"{G}/log_std"] for h in history] == pytest.approx([0.6, 0.2, -0.2, -0.6])


def test_resumed_scheduled_run_equals_an_uninterrupted_one(tmp_path):
    """Schedules are recomputed from the frames done: resuming at iteration 2 of 4 changes nothing."""
    cfg = small_cfg(train={"total_frames": 320, "num_epochs": 1, "lr_schedule": "linear", "log_std_end": -1.0},
                    loss={"entropy_coeff_end": 0.0}, run={"checkpoint_every": 1, "keep_checkpoints": 4})
    timing = {"collect_time", "train_time", "fps", "wall_time"}
    strip = lambda rows: [{k: v for k, v in r.items() if k not in timing} for r in rows]
    whole = strip(Trainer.from_config(cfg, run_dir=tmp_path).train())
    state = torch.load(tmp_path / "checkpoints" / "iter_000002.pt", weights_only=False)
    resumed = Trainer.from_config(cfg, resume=state)
    assert resumed.optimizers[G][0].param_groups[0]["lr"] == pytest.approx(3e-4 * 0.5)
    assert strip(resumed.train()) == whole[2:]


def test_target_kl_stops_after_the_first_epoch():
    tiny = trainer_with(target_kl=1e-12, num_epochs=4)
    batch = next(iter(tiny.collector))
    tiny.compute_advantages(batch)
    assert tiny.update(batch)["epochs"] == 1
    tiny.collector.shutdown()
    free = trainer_with(num_epochs=4, target_kl=0.5)  # far above one epoch's KL
    batch = next(iter(free.collector))
    free.compute_advantages(batch)
    assert free.update(batch)["epochs"] == 4
    free.collector.shutdown()


def test_autocast_runs_the_networks_in_bfloat16():
    trainer = trainer_with(autocast=True)
    seen = []
    first = next(m for m in trainer.actors[G].modules() if isinstance(m, nn.Linear))
    first.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    batch = next(iter(trainer.collector))
    trainer.compute_advantages(batch)
    seen.clear()
    metrics = trainer.update(batch)
    assert torch.bfloat16 in seen
    assert math.isfinite(metrics[f"{G}/loss_objective"])
    trainer.collector.shutdown()
    plain = trainer_with()
    first = next(m for m in plain.actors[G].modules() if isinstance(m, nn.Linear))
    first.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    batch = next(iter(plain.collector))
    plain.compute_advantages(batch)
    seen.clear()
    plain.update(batch)
    assert set(seen) == {torch.float32}
    plain.collector.shutdown()


@pytest.mark.parametrize("lean", [True, False], ids=["lean", "mappo_loss"])
@pytest.mark.parametrize("coeff,end,bonus", [(0.0, None, False), (0.01, None, True), (0.0, 0.01, True)])
def test_entropy_is_skipped_only_when_its_coefficient_stays_zero(coeff, end, bonus, lean):
    """Coefficient 0 all along: no entropy term in the loss, yet the trainer still reports the entropy."""
    trainer = Trainer.from_config(small_cfg(loss={"entropy_coeff": coeff, "entropy_coeff_end": end},
                                            train={"num_epochs": 2, "lean": lean}))
    loss = trainer.losses[G]
    assert loss.entropy_bonus is bonus and (G in trainer._lean) == lean
    batch = next(iter(trainer.collector))
    trainer.compute_advantages(batch)
    counted = []

    def spy(call, data):  # which minibatches computed the entropy
        out = call(data)
        counted.append("entropy" in out.keys())
        return out

    route_loss_call(trainer, G, spy)
    metrics = trainer.update(batch)
    assert loss.entropy_bonus is bonus  # the probe is put back
    assert math.isfinite(metrics[f"{G}/entropy"]) and metrics[f"{G}/entropy"] != 0
    # 80 frames / minibatch 40 = 2 minibatches per epoch, 2 epochs
    assert counted == ([True, False, True, False] if not bonus else [True] * 4)
    trainer.collector.shutdown()


def test_adam_is_fused_on_cpu():
    trainer = trainer_with(separate_optimizers=True)
    assert all(opt.defaults["fused"] for opt in trainer.optimizers[G])
    trainer.collector.shutdown()


class _TwoGroups:
    """What ``alike_at_reset`` reads of an env: a reset where group "a"'s agents 0 and 2 see the same."""

    batch_size = torch.Size([2])

    def reset(self):
        a = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(2, 3, 4)
        a[1, 2] = a[1, 0]
        return TensorDict({keys.observation("a"): a, keys.observation("b"): torch.randn(2, 2, 4)}, batch_size=[2])


def test_auto_agent_ids_resolve_per_group_into_the_config():
    from torchrl_mappo.build import resolve_agent_ids
    from torchrl_mappo.config import config_from_dict

    env = _TwoGroups()
    cfg = config_from_dict({"model": {"actor_agent_id": "auto"}})
    out = resolve_agent_ids(cfg, env, ["a", "b"])
    assert cfg.model.actor_agent_id == "auto"  # the caller's config is not changed
    assert out.group_model("a").actor_agent_id is True and out.group_model("b").actor_agent_id is False
    assert out.model.actor_agent_id is False and out.group("a").model == {"actor_agent_id": True}
    # one group's own auto, the other's explicit value kept
    cfg = config_from_dict({"per_group": {"b": {"model": {"actor_agent_id": "auto"}}}})
    out = resolve_agent_ids(cfg, env, ["a", "b"])
    assert out.group_model("b").actor_agent_id is False and out.model.actor_agent_id is False
    # alike, but per-agent networks or communicating actors already tell agents apart: no id
    for model in ({"share_params": False}, {"communication": "attention"}):
        cfg = config_from_dict({"model": {"actor_agent_id": "auto", **model}})
        assert resolve_agent_ids(cfg, env, ["a"]).group_model("a").actor_agent_id is False
    # nothing to resolve: the same object back
    cfg = config_from_dict({})
    assert resolve_agent_ids(cfg, env, ["a", "b"]) is cfg


def test_auto_agent_ids_in_make_actor(env):
    """make_actor on its own resolves ``auto`` too: navigation's agents start apart, so no id."""
    from torchrl_mappo.modules.nets import AppendAgentId

    actor = make_actor(env, G, ModelConfig(hidden_sizes=[16], actor_agent_id="auto"))
    assert not any(isinstance(m, AppendAgentId) for m in actor.modules())
