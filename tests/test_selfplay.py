"""Self-play (issue 16): mirror groups share one policy, pools play frozen snapshots, the league rates them."""
import json
import math

import pytest
import torch

from conftest import REPO
from torchrl_mappo import Trainer
from torchrl_mappo.build import build
from torchrl_mappo.cli import main
from torchrl_mappo.config import ConfigError, GroupConfig, config_from_dict
from torchrl_mappo.selfplay import OpponentPool, elo_ratings
from torchrl_mappo.trainer import NonFiniteLossError


def battle_cfg(blue: dict, minibatch_size: int = 15, **model):
    return config_from_dict({
        "env": {"family": "magent", "scenario": "battle_v4", "num_envs": 1, "max_steps": 15,
                "continuous_actions": False, "scenario_kwargs": {"map_size": 12}},
        "model": {"hidden_sizes": [8], "critic_input": "concat_obs", **model},
        "train": {"frames_per_batch": 30, "total_frames": 90, "minibatch_size": minibatch_size, "num_epochs": 1},
        "per_group": {"blue": blue},
        "run": {"progress_bar": False},
    })


def test_mirror_shares_parameters_gradients_and_the_optimizer():
    p = build(battle_cfg({"policy": "mirror red"}))
    red, blue = p.losses["red"], p.losses["blue"]
    red_params = {id(x) for x in red.parameters()}
    assert red_params and red_params == {id(x) for x in blue.parameters()}
    assert p.optimizers["blue"] is p.optimizers["red"]
    batch = next(iter(p.collector))
    from torchrl_mappo.loss import compute_advantages
    compute_advantages(batch, p.losses, p.actors)
    out = blue(batch.reshape(-1))
    (out["loss_objective"] + out["loss_critic"]).backward()
    grads = [x.grad for x in red.actor_network.parameters()]
    assert all(g is not None for g in grads) and any(float(g.abs().sum()) > 0 for g in grads)
    # Both teams act with one network: same observation, same action distribution.
    td = batch[..., 0].clone()
    td["blue", "observation"] = td["red", "observation"].clone()
    with torch.no_grad():
        logits_red = p.actors["red"](td.clone())["red", "logits"]
        logits_blue = p.actors["blue"](td.clone())["blue", "logits"]
    torch.testing.assert_close(logits_red, logits_blue)
    p.collector.shutdown()


def test_a_mirrored_critic_on_the_global_state_is_refused():
    with pytest.raises(ConfigError, match="the critic reads the global state"):
        build(battle_cfg({"policy": "mirror red"}, critic_input="state"))


@pytest.mark.parametrize("blue,message", [
    ({"policy": "mirror blue"}, "per_group.blue.policy: 'blue' is not another learning group"),
    ({"policy": "mirror green"}, "'green' is not another learning group"),
    ({"policy": "pool", "pool_of": "blue"}, "per_group.blue.pool_of: 'blue' is not another learning group"),
])
def test_a_policy_source_must_be_another_learning_group(blue, message):
    with pytest.raises(ConfigError, match=message):
        battle_cfg(blue).check_groups(["red", "blue"])


@pytest.mark.parametrize("group,message", [
    (GroupConfig(policy="mirror"), "policy='mirror': use one of learn, random, mirror <group>, pool"),
    (GroupConfig(policy="learn", pool_size=3), "pool_size=3: only used with per_group.b.policy: pool"),
    (GroupConfig(policy="pool", lr=1e-3), "lr=0.001: the group plays frozen snapshots and never trains"),
    (GroupConfig(policy="pool", snapshot_every=0), "snapshot_every=0: must be >= 1"),
])
def test_group_policy_fields_are_checked(group, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        group.check("f: per_group.b")


def test_pool_snapshots_are_frozen_taken_every_n_iterations_and_restored():
    source, target = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    pool = OpponentPool(source, target, size=3, every=2, sampling="uniform", seed=0)
    torch.testing.assert_close(target.weight, source.weight)  # the first snapshot: the initial policy
    assert not any(p.requires_grad for p in target.parameters())
    sizes = []
    for it in range(1, 9):
        with torch.no_grad():
            source.weight.add_(1.0)  # "an update"
        sizes.append(pool.after_update(it)["pool_size"])
    assert sizes == [1, 2, 2, 3, 3, 3, 3, 3]  # a snapshot every 2 iterations, at most 3 kept
    assert float(pool.snapshots[-1]["weight"][0, 0] - pool.snapshots[0]["weight"][0, 0]) == 4.0  # iterations 4, 6, 8
    state = pool.state_dict()
    other = OpponentPool(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2), size=3, every=2, sampling="uniform", seed=9)
    other.load_state_dict(state)
    torch.testing.assert_close(other.target.weight, target.weight)
    # The same draws from here on: the generator is restored too.
    assert [pool.after_update(9)["pool_index"] for _ in range(5)] == [other.after_update(9)["pool_index"]
                                                                     for _ in range(5)]


def test_latest_sampling_prefers_new_snapshots():
    source, target = torch.nn.Linear(1, 1), torch.nn.Linear(1, 1)
    pool = OpponentPool(source, target, size=4, every=1, sampling="latest", seed=0)
    for it in range(1, 4):
        pool.after_update(it)  # 4 snapshots
    counts = torch.zeros(4)
    pool.every = 10**9
    for _ in range(4000):
        counts[int(pool.after_update(1)["pool_index"])] += 1
    share = counts / counts.sum()
    torch.testing.assert_close(share, torch.tensor([0.1, 0.2, 0.3, 0.4]), atol=0.03, rtol=0)


def test_a_pool_group_trains_nothing_and_resumes_with_its_snapshots(tmp_path):
    cfg = battle_cfg({"policy": "pool", "snapshot_every": 1})
    trainer = Trainer.from_config(cfg, run_dir=tmp_path)
    history = trainer.train()
    assert "blue/loss_objective" not in history[-1] and "red/loss_objective" in history[-1]
    assert [row["blue/pool_size"] for row in history] == [2.0, 3.0, 4.0]
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    cfg.train.total_frames = 120
    resumed = Trainer.from_config(cfg, resume=state)
    pool, saved = resumed.pools["blue"], state["pools"]["blue"]
    assert len(pool.snapshots) == 4 and pool.current == saved["current"]
    for k, v in saved["snapshots"][saved["current"]].items():
        torch.testing.assert_close(pool.target.state_dict()[k], v)
    resumed.collector.shutdown()


def test_elo_recovers_the_ratings_behind_a_known_win_matrix():
    truth = torch.tensor([1000.0, 1200.0, 1400.0, 1100.0])
    p = 1 / (1 + 10 ** ((truth[None, :] - truth[:, None]) / 400))
    games = torch.full((4, 4), 10_000.0).fill_diagonal_(0)
    wins = p * games
    elo = torch.tensor(elo_ratings(wins, games, anchor=0))
    torch.testing.assert_close(elo, truth, atol=2.0, rtol=0)
    assert elo_ratings(wins, games)[2] == max(elo_ratings(wins, games))


@pytest.mark.slow
def test_league_of_a_mirror_run_a_pool_run_and_random(tmp_path, capsys):
    base = [str(REPO / "configs/magent_battle.yaml"), f"run.dir={tmp_path}", "env.num_envs=1", "env.max_steps=15",
            "env.scenario_kwargs.map_size=12", "model.hidden_sizes=[8]", "model.critic_input=concat_obs",
            "train.frames_per_batch=30", "train.total_frames=60", "train.minibatch_size=15", "train.num_epochs=1",
            "run.progress_bar=false"]
    assert main(["train", *base, "run.name=mirror", "per_group.blue.policy=mirror red"]) == 0
    assert main(["train", *base, "run.name=pool", "per_group.blue.policy=pool"]) == 0
    out = tmp_path / "league"
    assert main(["league", str(tmp_path / "mirror"), str(tmp_path / "pool"), "random", "--episodes", "2",
                 "--out", str(out), "--json"]) == 0
    result = json.loads((out / "league.json").read_text())
    assert result["players"][-1] == "random" and result["elo"][-1] == 1000
    rates = result["win_rate"]
    for i in range(3):
        for j in range(3):
            if i != j:  # a draw is half a win for each: the pair's rates add up to one
                assert math.isclose(rates[i][j] + rates[j][i], 1.0, abs_tol=1e-6)
                # each pair plays both sides: the overall rate is the mean of the two sides' scores
                by_side = result["first_side_win_rate"]
                assert math.isclose(rates[i][j], (by_side[i][j] + 1 - by_side[j][i]) / 2, abs_tol=1e-6)
    assert (out / "league.png").stat().st_size > 0 and "| random |" in (out / "league.md").read_text()
    assert "By side: row on red vs column on blue" in (out / "league.md").read_text()


# --------------------------------------------------------------------------- pool_swap_sides
def swap_cfg(share=1.0, **blue):
    return battle_cfg({"policy": "pool", "snapshot_every": 1, "pool_swap_sides": share, **blue})


def log_prob(actor, td, group):
    with torch.no_grad():
        dist = actor.get_dist(td.clone())
        return dist.log_prob(td[group, "action"])


def test_swapped_batches_are_played_and_trained_by_the_learner_on_the_other_side():
    trainer = Trainer.from_config(swap_cfg(1.0, snapshot_every=100))  # the snapshot stays the initial policy
    pool, red_loss = trainer.pools["blue"], trainer.losses["red"]
    live, swap = trainer.actors["red"], pool.swap_loss
    assert {id(p) for p in swap.actor_network.parameters()} == {id(p) for p in live.parameters()}
    assert {id(p) for p in swap.critic_network.parameters()} == {id(p) for p in red_loss.critic_network.parameters()}
    batches = iter(trainer.collector)
    first = next(batches)
    assert not pool.swapped  # the first batch is played on the learner's own side
    trainer.iterate(first)
    assert pool.swapped  # share 1: every later batch swaps
    batch = next(batches)
    # Blue's actions came from the learner's live weights, red's from the frozen snapshot.
    torch.testing.assert_close(batch["blue", "action_log_prob"], log_prob(swap.actor_network, batch, "blue"))
    frozen = trainer.collector.policy.swapped.module[0]  # red's actor of a swapped batch
    frozen = getattr(frozen, "actor", frozen)  # train.lean: the collector samples it through a LeanSampler
    torch.testing.assert_close(batch["red", "action_log_prob"], log_prob(frozen, batch, "red"))
    assert not torch.allclose(log_prob(live, batch, "red"), batch["red", "action_log_prob"])
    # The update reads blue's data only: red's observations poisoned with NaN change nothing...
    poisoned = batch.clone()
    poisoned["red", "observation"] = torch.full_like(poisoned["red", "observation"], float("nan"))
    poisoned["next", "red", "observation"] = poisoned["red", "observation"].clone()
    snapshot = {k: v.clone() for k, v in pool.target.state_dict().items()}
    before = [p.detach().clone() for p in live.parameters()]
    metrics, _ = trainer.iterate(poisoned)
    assert metrics["blue/pool_swapped"] == 1.0 and math.isfinite(metrics["red/loss_objective"])
    assert "blue/explained_variance" in metrics and "red/explained_variance" not in metrics
    after = list(live.parameters())
    assert all(torch.isfinite(p).all() for p in after)
    assert any(not torch.equal(a, b) for a, b in zip(before, after))  # ...and the learner moved
    for k, v in pool.target.state_dict().items():  # the snapshot did not
        torch.testing.assert_close(v, snapshot[k], rtol=0, atol=0)
    assert not any(p.requires_grad for p in pool.target.parameters())
    # ...while blue's observations poisoned the same way break the update.
    bad = next(batches)
    bad["blue", "observation"] = torch.full_like(bad["blue", "observation"], float("nan"))
    with pytest.raises((RuntimeError, NonFiniteLossError)):
        trainer.iterate(bad)
    trainer.collector.shutdown()


def test_swapped_batches_step_the_learner_like_a_loss_on_blue_data():
    """The swap loss is the learner's networks read through blue's keys: on a swapped batch the
    learner's actor gets exactly the gradient of a fresh loss built on blue's side for that data."""
    from torchrl_mappo.loss import compute_advantages, make_loss
    from torchrl_mappo.modules import make_actor, make_critic
    from torchrl_mappo.selfplay import tie

    trainer = Trainer.from_config(swap_cfg(1.0))
    batches = iter(trainer.collector)
    trainer.iterate(next(batches))
    batch = next(batches)
    env, cfg = trainer.collector.env, trainer.config
    actor, critic = make_actor(env, "blue", cfg.group_model("red")), make_critic(env, "blue", cfg.group_model("red"))
    tie(actor, trainer.actors["red"])
    tie(critic, trainer.losses["red"].critic_network)
    reference = make_loss(actor, critic, env, "blue", cfg.group_loss("red"))
    b1, b2 = batch.clone(), batch.clone()
    compute_advantages(b1, {"blue": reference}, {"blue": actor})
    trainer.compute_advantages(b2, trainer.batch_losses()[1])
    torch.testing.assert_close(b1["blue", "advantage"], b2["blue", "advantage"])
    grads = []
    for loss, data in ((reference, b1), (trainer.pools["blue"].swap_loss, b2)):
        trainer.optimizers["red"][0].zero_grad()
        out = loss(data.reshape(-1))
        (out["loss_objective"] + out["loss_critic"] + out["loss_entropy"]).backward()
        grads.append([p.grad.clone() for p in trainer.actors["red"].parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)
    assert any(float(g.abs().sum()) > 0 for g in grads[0])
    trainer.collector.shutdown()


def test_a_side_swapping_pool_resumes_exactly(tmp_path):
    cfg = swap_cfg(0.5, pool_size=2)
    cfg.train.total_frames, cfg.run.checkpoint_every, cfg.run.keep_checkpoints = 180, 1, 10
    timing = {"collect_time", "train_time", "fps", "wall_time"}
    strip = lambda rows: [{k: v for k, v in r.items() if k not in timing} for r in rows]
    whole = strip(Trainer.from_config(cfg, run_dir=tmp_path).train())
    sides = [row["blue/pool_swapped"] for row in whole]
    assert 0.0 in sides[1:] and 1.0 in sides  # both sides played (seeded draws)
    for k in (2, 3):  # resumed before a swapped and before an own-side batch
        state = torch.load(tmp_path / "checkpoints" / f"iter_{k:06d}.pt", weights_only=False)
        assert state["pools"]["blue"]["swapped"] == bool(sides[k]) and "swap_loss" in state["pools"]["blue"]
        resumed = Trainer.from_config(cfg, resume=state)
        assert strip(resumed.train()) == whole[k:]
    plain = battle_cfg({"policy": "pool", "snapshot_every": 1, "pool_size": 2})
    plain.train.total_frames = 180
    with pytest.raises(ConfigError, match="saved with pool_swap_sides > 0"):
        Trainer.from_config(plain, resume=state)


@pytest.mark.parametrize("blue,model,message", [
    ({}, {"critic_input": "state"}, "pool_swap_sides=0.5: the critic reads the global state"),
    ({}, {"recurrent": "gru"}, "pool_swap_sides=0.5: recurrent models cannot swap sides"),
])
def test_side_swaps_that_cannot_work_are_refused(blue, model, message):
    cfg = battle_cfg({"policy": "pool", "pool_swap_sides": 0.5, **blue}, minibatch_size=10, **model)
    with pytest.raises(ConfigError, match=message):
        build(cfg)


@pytest.mark.parametrize("group,message", [
    (GroupConfig(policy="pool", pool_swap_sides=1.5), "pool_swap_sides=1.5: must be a share of batches between 0 and 1"),
    (GroupConfig(policy="random", pool_swap_sides=0.5), "pool_swap_sides=0.5: only used with per_group.b.policy: pool"),
])
def test_pool_swap_sides_is_checked(group, message):
    with pytest.raises(ConfigError, match=message):
        group.check("f: per_group.b")


def test_a_pool_without_swaps_draws_as_before():
    """pool_swap_sides 0 keeps the pool's draws (and so earlier runs) unchanged."""
    source, target = torch.nn.Linear(1, 1), torch.nn.Linear(1, 1)
    plain = OpponentPool(source, target, size=4, every=1, sampling="latest", seed=3)
    zero = OpponentPool(source, target, size=4, every=1, sampling="latest", seed=3, swap_sides=0.0)
    assert [plain.after_update(i)["pool_index"] for i in range(1, 20)] == \
           [zero.after_update(i)["pool_index"] for i in range(1, 20)]
    assert not zero.swapped


def test_a_side_swap_with_a_curriculum_is_refused():
    from torchrl_mappo.config import config_to_dict

    data = config_to_dict(battle_cfg({"policy": "pool", "pool_swap_sides": 0.5}))
    data["train"]["curriculum"] = [{"overrides": {"env.max_steps": 15}, "until": {"frames": 30}},
                                   {"overrides": {"env.max_steps": 20}}]
    with pytest.raises(ConfigError, match="pool_swap_sides=0.5: a curriculum stage change rebuilds"):
        build(config_from_dict(data))
