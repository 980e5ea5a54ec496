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


def battle_cfg(blue: dict, **model):
    return config_from_dict({
        "env": {"family": "magent", "scenario": "battle_v4", "num_envs": 1, "max_steps": 15,
                "continuous_actions": False, "scenario_kwargs": {"map_size": 12}},
        "model": {"hidden_sizes": [8], "critic_input": "concat_obs", **model},
        "train": {"frames_per_batch": 30, "total_frames": 90, "minibatch_size": 15, "num_epochs": 1},
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
