"""Evaluation: trained groups vs random or frozen-checkpoint opponents, from Python and the CLI."""
import json

import torch

from conftest import REPO
from torchrl_mappo.cli import main
from torchrl_mappo.evaluate import evaluate_checkpoint

BATTLE = ["env.num_envs=1", "env.max_steps=15", "env.scenario_kwargs.map_size=12", "model.hidden_sizes=[8]",
          "train.frames_per_batch=30", "train.total_frames=30", "train.minibatch_size=15", "train.num_epochs=1",
          "run.progress_bar=false"]
TAG = ["env.num_envs=2", "env.max_steps=10", "model.hidden_sizes=[8]", "train.frames_per_batch=20",
       "train.total_frames=20", "train.minibatch_size=10", "train.num_epochs=1", "run.progress_bar=false"]


def train(tmp_path, config, name, overrides):
    assert main(["train", str(REPO / "configs" / config), f"run.dir={tmp_path}", f"run.name={name}", *overrides]) == 0
    return tmp_path / name


def test_battle_eval_reports_returns_survivors_and_win_rates(tmp_path, capsys):
    run = train(tmp_path, "magent_battle.yaml", "battle", BATTLE)
    capsys.readouterr()
    assert main(["eval", str(run), "--episodes", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["episodes"] >= 3
    assert result["policies"] == {"red": "trained", "blue": "random"}
    red, blue = result["groups"]["red"], result["groups"]["blue"]
    for g in (red, blue):
        assert set(g) == {"return_mean", "return_std", "survivors_mean", "win_rate"}
        assert 0.0 <= g["win_rate"] <= 1.0 and 0 <= g["survivors_mean"] <= 2
    assert red["win_rate"] + blue["win_rate"] <= 1.0  # a draw counts for nobody
    assert main(["eval", str(run), "--episodes", "1"]) == 0
    assert "red (trained): return" in capsys.readouterr().out


def test_win_rates_count_more_survivors_then_the_higher_return():
    from torchrl_mappo.evaluate import win_rates

    survivors = torch.tensor([[2.0, 1.0, 1.0, 2.0], [1.0, 1.0, 2.0, 2.0]])  # red, blue x 4 episodes
    returns = torch.tensor([[0.0, 5.0, 0.0, 1.0], [0.0, 1.0, 9.0, 1.0]])
    # red: more survivors (ep 0), tie broken by return (ep 1); blue: more survivors (ep 2); ep 3: a draw
    assert win_rates(survivors, returns) == [0.5, 0.25]
    three = torch.tensor([[2.0], [2.0], [1.0]])
    assert win_rates(three, torch.tensor([[1.0], [3.0], [9.0]])) == [0.0, 1.0, 0.0]


def test_eval_against_a_frozen_checkpoint(tmp_path):
    a = train(tmp_path, "vmas_simple_tag.yaml", "a", TAG)
    b = train(tmp_path, "vmas_simple_tag.yaml", "b", TAG + ["train.seed=1"])
    result = evaluate_checkpoint(a, episodes=2, opponent=str(b / "checkpoint.pt"), opponent_groups=["agent"])
    assert result["policies"] == {"adversary": "trained", "agent": f"checkpoint {b / 'checkpoint.pt'}"}
    assert result["episodes"] >= 2
    # The frozen opponent really plays b's weights, the trained group a's.
    from torchrl_mappo.config import config_from_dict
    from torchrl_mappo.envs import make_env
    from torchrl_mappo.evaluate import build_policy, load_checkpoint

    state_a, state_b = load_checkpoint(a)[0], load_checkpoint(b)[0]
    cfg = config_from_dict(state_a["config"])
    policy, _ = build_policy(cfg, make_env(cfg.env), state_a["actors"], str(b), ["agent"])
    adversary, agent = policy.module
    for module, expected in ((adversary, state_a["actors"]["adversary"]), (agent, state_b["actors"]["agent"])):
        got = module.state_dict()
        assert all(torch.equal(got[k], v) for k, v in expected.items())
    assert not all(torch.equal(state_a["actors"]["agent"][k], v) for k, v in state_b["actors"]["agent"].items())


def test_eval_bad_input_exits_2(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "nothing")]) == 2
    assert "no checkpoint at" in capsys.readouterr().err
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["eval", str(bad)]) == 2
    assert "not a readable checkpoint" in capsys.readouterr().err
    torch.save({"hello": 1}, tmp_path / "other.pt")
    assert main(["eval", str(tmp_path / "other.pt")]) == 2
    assert "not a torchrl_mappo checkpoint" in capsys.readouterr().err
    run = train(tmp_path, "magent_battle.yaml", "battle", BATTLE)
    capsys.readouterr()
    assert main(["eval", str(run), "--opponent", str(run), "--opponent-groups", "blue"]) == 2
    assert "has no trained group 'blue'" in capsys.readouterr().err
    assert main(["eval", str(run), "--episodes", "0"]) == 2


NAV_TINY = ["env.num_envs=4", "env.max_steps=10", "model.hidden_sizes=[8]", "train.frames_per_batch=40",
            "train.total_frames=40", "train.minibatch_size=20", "train.num_epochs=1", "run.progress_bar=false",
            "env.scenario_kwargs.n_agents=3"]


def test_zero_shot_transfer_to_other_agent_counts(tmp_path, capsys):
    """A shared actor trained with 3 agents plays 2 and 5 (``eval RUN env.scenario_kwargs.n_agents=N``)."""
    run = train(tmp_path, "vmas_navigation.yaml", "nav", [*NAV_TINY, "model.critic=attention"])
    for n in (2, 5):
        result = evaluate_checkpoint(run, episodes=2, overrides=[f"env.scenario_kwargs.n_agents={n}"])
        assert result["episodes"] == 2 and result["policies"] == {"agents": "trained"}
        assert torch.isfinite(torch.tensor(result["groups"]["agents"]["return_mean"]))
    capsys.readouterr()
    assert main(["eval", str(run), "env.scenario_kwargs.n_agents=4", "--episodes", "1"]) == 0
    assert "agents (trained): return" in capsys.readouterr().out


def test_transfer_is_refused_for_per_agent_actors(tmp_path, capsys):
    run = train(tmp_path, "vmas_navigation.yaml", "nav", [*NAV_TINY, "model.share_params=false"])
    capsys.readouterr()
    assert main(["eval", str(run), "env.scenario_kwargs.n_agents=5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert ("eval env.scenario_kwargs.n_agents=5: the trained actor of group 'agents' cannot run in this env: "
            "model.share_params: false gives one actor per agent") in err
    # the same agent count still evaluates
    assert main(["eval", str(run), "env.scenario_kwargs.n_agents=3", "--episodes", "1"]) == 0
