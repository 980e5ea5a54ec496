"""Both sides learn by pool (issue 16, target 2): alternating turns, each resting group playing a
snapshot of its own past; and the cross-play returns league (``league --returns``)."""
import json

import pytest
import torch

from conftest import REPO
from torchrl_mappo import Trainer
from torchrl_mappo.alternate import TurnPool, turn_of
from torchrl_mappo.cli import main
from torchrl_mappo.config import config_from_dict
from torchrl_mappo.crossplay import improvement

TAG = str(REPO / "configs/vmas_simple_tag.yaml")
TINY = ["env.num_envs=4", "env.max_steps=10", "train.frames_per_batch=40", "train.total_frames=160",
        "train.minibatch_size=20", "train.num_epochs=1", "model.hidden_sizes=[8]", "run.progress_bar=false",
        "train.num_threads=1"]


def tag_cfg(**alternate):
    return config_from_dict({
        "env": {"family": "vmas", "scenario": "simple_tag", "num_envs": 4, "max_steps": 10,
                "scenario_kwargs": {"num_good_agents": 1, "num_adversaries": 2, "num_landmarks": 1}},
        "model": {"hidden_sizes": [8]},
        "train": {"frames_per_batch": 40, "total_frames": 160, "minibatch_size": 20, "num_epochs": 2,
                  "num_threads": 1},
        "alternate": {"groups": ["adversary", "agent"], "snapshot_every": 1, "pool_size": 2, **alternate},
        "run": {"progress_bar": False},
    })


def params(module):
    return [p.detach().clone() for p in module.parameters()]


def same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b))


def test_turns_follow_the_order_and_turn_length():
    assert [turn_of(k, ["a", "b"], 1) for k in range(1, 6)] == ["a", "b", "a", "b", "a"]
    assert [turn_of(k, ["a", "b", "c"], 2) for k in range(1, 8)] == ["a", "a", "b", "b", "c", "c", "a"]


def test_a_turn_pool_snapshots_its_own_updates_only_keeps_them_frozen_and_restores():
    live, acting = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    pool = TurnPool("b", live, acting, groups=["a", "b"], turn_iterations=1, size=3, every=2, sampling="uniform",
                    seed=0)
    assert not any(p.requires_grad for p in acting.parameters())
    assert pool.current >= 0  # iteration 1 is a's turn: b plays its pool (its initial policy)
    torch.testing.assert_close(acting.weight, pool.snapshots[0]["weight"])
    first = pool.snapshots[0]["weight"].clone()
    rows = []
    for it in range(1, 11):
        if pool.trains(it):
            with torch.no_grad():
                live.weight.add_(1.0)  # "an update", on b's turns only
        rows.append(pool.after_update(it))
        if pool.trains(it + 1):  # b's turn next: it acts with its live weights
            assert pool.current == -1 and torch.equal(acting.weight, live.weight)
        else:  # it rests: a snapshot of its past, never the live weights
            assert pool.current >= 0 and torch.equal(acting.weight, pool.snapshots[pool.current]["weight"])
    assert [r["learned"] for r in rows] == [0.0, 1.0] * 5
    # b updated on iterations 2, 4, 6, 8, 10: a snapshot after its 2nd and 4th update, at most 3 kept
    assert [r["pool_size"] for r in rows] == [1, 1, 1, 2, 2, 2, 2, 3, 3, 3]
    assert torch.equal(pool.snapshots[0]["weight"], first)  # a snapshot never moves
    assert [float(s["weight"][0, 0] - first[0, 0]) for s in pool.snapshots] == [0.0, 2.0, 4.0]
    other = TurnPool("b", torch.nn.Linear(2, 2), torch.nn.Linear(2, 2), groups=["a", "b"], turn_iterations=1,
                     size=3, every=2, sampling="uniform", seed=7)
    other.live.load_state_dict(live.state_dict())
    other.load_state_dict(pool.state_dict())
    assert other.updates == pool.updates == 5 and other.current == pool.current
    torch.testing.assert_close(other.acting.weight, acting.weight)
    # the same draws from here on: the generator is restored too
    assert [pool.after_update(11)["played"] for _ in range(6)] == [other.after_update(11)["played"] for _ in range(6)]


def test_only_the_group_whose_turn_it_is_updates_and_it_collects_with_its_live_policy():
    trainer = Trainer.from_config(tag_cfg())
    live = trainer.actors
    acting = {g: pool.acting for g, pool in trainer.pools.items()}
    seen = []
    for k, batch in enumerate(trainer.collector, start=1):
        turn = turn_of(k, ["adversary", "agent"], 1)
        rest = "agent" if turn == "adversary" else "adversary"
        # this batch: the learner acted with its live weights, the resting group with a snapshot
        assert same(params(acting[turn]), params(live[turn]))
        pool = trainer.pools[rest]
        assert pool.current >= 0
        assert all(torch.equal(v, pool.snapshots[pool.current][k]) for k, v in acting[rest].state_dict().items())
        before = {g: params(live[g]) for g in live}
        metrics, _ = trainer.iterate(batch)
        assert not same(before[turn], params(live[turn])), f"iteration {k}: {turn} did not update"
        assert same(before[rest], params(live[rest])), f"iteration {k}: {rest} updated on its rest"
        assert f"{turn}/loss_objective" in metrics and f"{rest}/loss_objective" not in metrics
        assert metrics[f"{turn}/learned"] == 1.0 and metrics[f"{rest}/learned"] == 0.0
        assert metrics[f"{turn}/played"] == -1.0 and metrics[f"{rest}/played"] >= 0
        seen.append(turn)
    assert seen == ["adversary", "agent", "adversary", "agent"]
    trainer.collector.shutdown()


def log_prob(actor, td, group):
    with torch.no_grad():
        return actor.get_dist(td).log_prob(td[group, "action"])


@pytest.mark.parametrize("kind", ["sync", pytest.param("multi_sync", marks=pytest.mark.slow)])
def test_the_batch_comes_from_the_learners_live_policy_and_the_resting_groups_snapshot(kind):
    cfg = tag_cfg(snapshot_every=2)
    cfg.collector.kind, cfg.collector.workers = kind, 2 if kind != "sync" else 1
    trainer = Trainer.from_config(cfg)
    initial = {g: {k: v.clone() for k, v in a.state_dict().items()} for g, a in trainer.actors.items()}
    for k, batch in enumerate(trainer.collector, start=1):
        if k == 3:  # the adversaries' turn; the prey has updated once, its pool holds only its initial policy
            td = batch.reshape(-1)
            torch.testing.assert_close(log_prob(trainer.actors["adversary"], td, "adversary"),
                                       td["adversary", "action_log_prob"], atol=1e-4, rtol=1e-4)  # PPO's ratio: 1
            assert trainer.pools["agent"].current == 0
            live_prey = log_prob(trainer.actors["agent"], td, "agent")
            trainer.actors["agent"].load_state_dict(initial["agent"])
            torch.testing.assert_close(log_prob(trainer.actors["agent"], td, "agent"),
                                       td["agent", "action_log_prob"], atol=1e-4, rtol=1e-4)
            assert not torch.allclose(live_prey, td["agent", "action_log_prob"], atol=1e-4)
            break
        trainer.iterate(batch)
    trainer.collector.shutdown()


def test_resume_restores_the_pools(tmp_path):
    cfg = tag_cfg()
    trainer = Trainer.from_config(cfg, run_dir=tmp_path)
    trainer.train()
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert set(state["pools"]) == {"adversary", "agent"}
    cfg.train.total_frames = 240
    resumed = Trainer.from_config(cfg, resume=state)
    for g, pool in resumed.pools.items():
        saved = state["pools"][g]
        assert pool.updates == saved["updates"] == 2 and pool.current == saved["current"]
        assert len(pool.snapshots) == len(saved["snapshots"]) == 2
        for a, b in zip(pool.snapshots, saved["snapshots"]):
            assert all(torch.equal(a[k], b[k]) for k in a)
        want = saved["snapshots"][saved["current"]] if saved["current"] >= 0 else state["actors"][g]
        got = pool.acting.state_dict()
        assert all(torch.equal(got[k], want[k]) for k in want)
    # the checkpoint holds the live actors, not the snapshots the resting groups played
    for g in ("adversary", "agent"):
        live = resumed.actors[g].state_dict()
        assert all(torch.equal(live[k], state["actors"][g][k]) for k in live)
    history = resumed.train()  # iteration 5: the adversaries' turn again
    assert history[0]["adversary/learned"] == 1.0 and history[0]["agent/learned"] == 0.0


@pytest.mark.parametrize("overrides,words", [
    (["alternate.groups=[adversary]"], "alternate.groups=['adversary']: list at least two learning groups"),
    (["alternate.groups=[agent,agent]"], "alternate.groups=['agent', 'agent']: a group is listed twice"),
    (["alternate.pool_size=3"], "alternate.pool_size=3: only used with alternate.groups"),
    (["alternate.groups=[adversary,agent]", "alternate.turn_iterations=0"], "alternate.turn_iterations=0: must be >= 1"),
    (["alternate.groups=[adversary,agent]", "alternate.snapshot_every=0"], "alternate.snapshot_every=0: must be >= 1"),
    (["alternate.groups=[adversary,agent]", "alternate.pool_size=0"], "alternate.pool_size=0: must be >= 1"),
    (["alternate.groups=[adversary,agent]", "alternate.pool_sampling=newest"], "alternate.pool_sampling"),
    (["alternate.groups=[adversary,agent]", "train.log_std_end=-1"], "drop train.log_std_end with alternating groups"),
    (["alternate.groups=[adversary,agent]", "collector.kind=multi_async", "collector.workers=2"],
     "use collector.kind: sync or multi_sync"),
    (["alternate.groups=[adversary,prey]"], "alternate.groups: the env has no group 'prey'"),
    (["alternate.groups=[adversary,agent]", "per_group.agent.policy=random"],
     "alternate.groups: 'agent' has per_group.agent.policy='random'; only groups with policy: learn take turns"),
])
def test_bad_alternate_input_is_one_line_exit_2(tmp_path, capsys, overrides, words):
    code = main(["train", TAG, f"run.dir={tmp_path}", *TINY, *overrides])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert words in err and "Traceback" not in err, err


def test_improvement_on_a_known_matrix():
    # rows (predators): later rows earn more against every column except one pair; columns (prey): later
    # columns earn more (lose less) against every row.
    rows = torch.tensor([[1.0, 0.5, 0.0],
                         [3.0, 2.0, 1.0],
                         [2.0, 2.5, 2.0]])
    cols = -rows
    out = improvement(rows, cols)
    # rows: pairs (0,1), (0,2), (1,2) in 3 columns = 9; row 2 < row 1 in column 0 only
    assert out["pairs"] == 9
    assert out["rows_later_beats_earlier"] == pytest.approx(8 / 9)
    # columns: -rows; within each row the later column earns more in 0,2 ... count by hand:
    # row 0: 1, .5, 0 -> -1 < -.5 < 0: 3 of 3; row 1: 3 of 3; row 2: -2, -2.5, -2: (0,1) no, (0,2) tie, (1,2) yes
    assert out["cols_later_beats_earlier"] == pytest.approx((3 + 3 + 1.5) / 9)
    assert out["rows_last_minus_first"] == pytest.approx(((2 - 1) + (2.5 - 0.5) + (2 - 0)) / 3)
    assert out["cols_last_minus_first"] == pytest.approx(((-0.0 + 1) + (-1 + 3) + (-2 + 2)) / 3)
    # with standard errors 0.1 (a difference counts beyond 2 * sqrt(0.02) = 0.28) and 1.0 (beyond 2.83)
    se = torch.full((3, 3), 0.1)
    out = improvement(rows, cols, se, se)
    assert out["rows_clearly_better"] == pytest.approx(8 / 9) and out["rows_clearly_worse"] == pytest.approx(1 / 9)
    assert out["cols_clearly_better"] == pytest.approx(7 / 9) and out["cols_clearly_worse"] == pytest.approx(1 / 9)
    out = improvement(rows, cols, se * 10, se * 10)
    assert out["rows_clearly_better"] == 0 and out["rows_clearly_worse"] == 0


@pytest.mark.slow
def test_league_returns_over_the_checkpoints_of_an_alternating_run(tmp_path, capsys):
    assert main(["train", TAG, f"run.dir={tmp_path}", "run.name=tag", *TINY, "run.checkpoint_every=2",
                 "run.keep_checkpoints=5", "alternate.groups=[adversary,agent]", "alternate.snapshot_every=1"]) == 0
    ckpts = sorted(str(p) for p in (tmp_path / "tag" / "checkpoints").glob("iter_*.pt"))
    assert len(ckpts) == 3  # iterations 1, 2, 4
    out = tmp_path / "xp"
    assert main(["league", *ckpts, "random", "--returns", "--episodes", "4", "--out", str(out), "--json"]) == 0
    result = json.loads((out / "crossplay.json").read_text())
    assert result["sides"] == ["adversary", "agent"] and result["players"][-1] == "random"
    assert all(e == 4 for row in result["episodes"] for e in row)
    assert len(result["return_mean"]["adversary"]) == 4 and len(result["return_mean"]["agent"][0]) == 4
    assert result["improvement"]["players"] == ckpts and result["improvement"]["pairs"] == 9
    md = (out / "crossplay.md").read_text()
    assert "adversary (rows): a later snapshot earns more" in md and (out / "crossplay.png").stat().st_size > 0
    # a checkpoint of a run whose prey did not learn cannot lend a prey
    assert main(["train", TAG, f"run.dir={tmp_path}", "run.name=norandom", *TINY, "per_group.agent.policy=random"]) == 0
    capsys.readouterr()
    code = main(["league", ckpts[0], str(tmp_path / "norandom"), "--returns", "--episodes", "2"])
    err = capsys.readouterr().err
    assert code == 2 and "has no trained group 'agent'" in err and err.count("\n") == 1
