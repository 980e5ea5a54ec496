"""Bring your own env (issue 13): env.family torchrl / pettingzoo by import path / gymnasium_ma, a ready
EnvBase, the env checker on deliberately broken envs, action masks, dead agents."""
import math
import sys

import pytest
import torch
from tensordict import TensorDict
from torchrl.envs import SerialEnv

from conftest import REPO
from torchrl_mappo import Trainer, keys
from torchrl_mappo.cli import main
from torchrl_mappo.config import ConfigError, config_from_dict, load_config
from torchrl_mappo.envs import make_env
from torchrl_mappo.envs.check import check_env
from torchrl_mappo.modules import make_actor, make_random_actor

BROKEN = f"{REPO / 'tests' / 'broken_envs.py'}"
CUSTOM = str(REPO / "configs" / "custom_env.yaml")
TINY_TRAIN = {"frames_per_batch": 80, "total_frames": 160, "minibatch_size": 40, "num_epochs": 1}


def torchrl_cfg(make, train=TINY_TRAIN, model=None, **env):
    return config_from_dict({
        "env": {"family": "torchrl", "make": make, "num_envs": 4, **env},
        "model": model or {"hidden_sizes": [16]}, "train": train, "run": {"progress_bar": False},
    })


def custom_example():
    sys.path.insert(0, str(REPO / "examples"))
    try:
        import custom_env
    finally:
        sys.path.remove(str(REPO / "examples"))
    return custom_env


# --------------------------------------------------------------------------- #
# env.family: torchrl, and a ready EnvBase
# --------------------------------------------------------------------------- #
def test_torchrl_family_calls_a_batched_callable_with_num_envs_and_trains():
    cfg = torchrl_cfg(f"{REPO / 'examples' / 'custom_env.py'}:make_env", max_steps=5)
    trainer = Trainer.from_config(cfg)
    env = trainer.collector.env
    assert env.batch_size == torch.Size([4]) and set(env.group_map) == {"movers", "guides"}
    assert type(env.base_env).__name__ == "GuideAndGo"  # one batched env, not copies
    history = trainer.train()
    assert [row["frames"] for row in history] == [80, 160]
    assert {"movers/episode_return", "guides/episode_return"} <= set(history[-1])


def test_torchrl_family_without_num_envs_runs_copies_in_a_serial_env():
    env = make_env(torchrl_cfg(f"{BROKEN}:unbatched_single", num_envs=2).env)
    assert isinstance(env.base_env, SerialEnv) and env.batch_size[0] == 2
    assert env.group_map == {"agents": ["agents_0", "agents_1"]}  # read off the specs
    env.rollout(3)


def test_torchrl_family_imports_a_module_path_and_passes_kwargs(tmp_path, monkeypatch):
    (tmp_path / "my_envs.py").write_text(
        "import sys\nsys.path.insert(0, %r)\nfrom broken_envs import Tiny\n"
        "def make(num_envs, flavour):\n    assert flavour == 'sweet'\n    return Tiny(num_envs)\n" % str(REPO / "tests"))
    monkeypatch.chdir(tmp_path)  # the working folder, as a user's project
    monkeypatch.delitem(sys.modules, "my_envs", raising=False)
    env = make_env(torchrl_cfg("my_envs:make", kwargs={"flavour": "sweet"}).env)
    assert env.batch_size == torch.Size([4])
    with pytest.raises(ConfigError, match="env.kwargs: my_envs:make rejected them"):
        make_env(torchrl_cfg("my_envs:make", kwargs={"colour": 1}).env)


def test_a_ready_env_trains_with_everything_else_from_the_config():
    GuideAndGo = custom_example().GuideAndGo
    cfg = config_from_dict({"env": {"num_envs": 4}, "model": {"hidden_sizes": [16]}, "train": TINY_TRAIN,
                            "run": {"progress_bar": False}, "per_group": {"guides": {"policy": "random"}}})
    trainer = Trainer.from_config(cfg, env=GuideAndGo(num_envs=4, max_steps=5))
    assert set(trainer.losses) == {"movers"}  # per_group applies to the ready env's groups
    assert len(trainer.train()) == 2
    # make_env takes one too, as its first argument.
    env = make_env(GuideAndGo(num_envs=2))
    assert keys.episode_reward("movers") in env.observation_spec.keys(True)


def test_a_ready_env_needs_the_sync_collector():
    GuideAndGo = custom_example().GuideAndGo
    cfg = config_from_dict({"env": {"num_envs": 4}, "collector": {"kind": "multi_sync", "workers": 2},
                            "train": TINY_TRAIN})
    with pytest.raises(ConfigError, match="an env handed in ready lives in this process"):
        Trainer.from_config(cfg, env=GuideAndGo(num_envs=4))


def test_a_team_reward_at_the_root_is_copied_to_every_agent():
    env = make_env(torchrl_cfg(f"{BROKEN}:team_reward").env)
    td = env.rollout(4)
    team = td.get(("next", "reward"))  # [B, T, 1]
    per_agent = td.get(("next", "agents", "reward"))  # [B, T, 2, 1]
    assert per_agent.shape == (4, 4, 2, 1)
    assert torch.equal(per_agent, team.unsqueeze(-2).expand_as(per_agent))
    assert team.abs().sum() > 0  # actions 0 were drawn: a real reward, copied


@pytest.mark.slow
def test_the_custom_example_learns_beyond_random():
    """The example of the README, seeded, 19 200 frames: both groups beat their first (random) batch by a margin."""
    cfg = torchrl_cfg(f"{REPO / 'examples' / 'custom_env.py'}:make_env", num_envs=32, max_steps=25,
                      model={"hidden_sizes": [64, 64]},
                      train={"frames_per_batch": 3200, "total_frames": 19200, "minibatch_size": 800,
                             "num_epochs": 5, "lr": 1e-3})
    history = Trainer.from_config(cfg).train()
    first, last = history[0], history[-1]
    # Random movers lose ~1.1 per step (25 steps); random guides are right 1 time in 5.
    assert last["movers/episode_return"] > first["movers/episode_return"] + 5, (first, last)
    assert last["guides/episode_return"] > first["guides/episode_return"] + 2, (first, last)


# --------------------------------------------------------------------------- #
# The checker, on broken envs
# --------------------------------------------------------------------------- #
BROKEN_CASES = [
    ("wrong_reward_shape", "('agents', 'reward') has shape [4, 2]; MAPPO needs one reward per agent, "
                           "[*batch, n_agents, 1] = [4, 2, 1]"),
    ("missing_group_key", "no ('agents', 'observation') in the observation spec (found ['obs'])"),
    ("nan_observations", "non-finite numbers (NaN or inf) at [('agents', 'observation')"),
]


@pytest.mark.parametrize("name,words", BROKEN_CASES, ids=[c[0] for c in BROKEN_CASES])
def test_check_env_reports_each_broken_env_in_one_line(capsys, name, words):
    code = main(["check-env", CUSTOM, f"env.make={BROKEN}:{name}", "env.num_envs=4"])
    out, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1 and "1 problem(s), listed above" in err
    problems = [line for line in out.splitlines() if line.startswith("problem: ")]
    assert len(problems) == 1 and words in problems[0], out


def test_check_env_on_an_unbatched_spec_names_the_fix(capsys):
    code = main(["check-env", CUSTOM, f"env.make={BROKEN}:unbatched_spec", "env.num_envs=4"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "an unbatched spec: give every spec the env's batch size as its leading dims" in err


def test_check_env_on_a_good_env_prints_what_each_group_gets(capsys):
    assert main(["check-env", CUSTOM, "env.num_envs=4"]) == 0
    out = capsys.readouterr().out
    assert "group 'movers': 2 agent(s)" in out and "action continuous [2] in [-1, 1] -> TanhNormal" in out
    assert "group 'guides': 2 agent(s)" in out and "discrete, 5 actions -> Categorical" in out
    assert "critic input: concat_obs" in out and out.rstrip().endswith("torchrl_mappo can train")


def test_training_runs_the_checks_first(tmp_path):
    cfg = torchrl_cfg(f"{BROKEN}:nan_observations")
    with pytest.raises(ConfigError, match="env check: non-finite numbers"):
        Trainer.from_config(cfg)
    cfg = torchrl_cfg(f"{BROKEN}:wrong_reward_shape")
    with pytest.raises(ConfigError, match="has shape \\[4, 2\\]"):
        Trainer.from_config(cfg)


def test_a_state_critic_without_state_is_a_problem_of_the_checker():
    cfg = torchrl_cfg(f"{BROKEN}:valid")
    cfg.model.critic_input = "state"
    report, env = check_env(cfg)
    assert env is None and any("no global state" in p for p in report.problems)


# --------------------------------------------------------------------------- #
# PettingZoo by import path: AEC, action masks; parallel with dead agents
# --------------------------------------------------------------------------- #
def ttt_cfg(**extra):
    data = {"env": {"family": "pettingzoo", "scenario": "pettingzoo.classic.tictactoe_v3", "num_envs": 2},
            "model": {"hidden_sizes": [16]}, "train": TINY_TRAIN, "run": {"progress_bar": False}}
    data.update(extra)
    return config_from_dict(data)


def test_tictactoe_aec_masked_actors_only_play_legal_moves():
    cfg = ttt_cfg()
    env = make_env(cfg.env, seed=0)
    assert set(env.group_map) == {"player_1", "player_2"}
    learner = make_actor(env, "player_1", cfg.model)
    rand = make_random_actor(env, "player_2")
    from tensordict.nn import TensorDictSequential

    td = env.rollout(60, TensorDictSequential(learner, rand), break_when_any_done=False)
    for g in ("player_1", "player_2"):
        acting = td.get((g, "mask")).squeeze(-1)  # whose turn it is
        chosen = td.get((g, "action")).squeeze(-1)
        allowed = td.get((g, "action_mask")).squeeze(-2)
        legal = allowed.gather(-1, chosen.unsqueeze(-1)).squeeze(-1)
        assert acting.any() and legal[acting].all(), g
    # An illegal move ends the game with -1 for the mover: with masks none happens.
    rewards = torch.cat([td.get(("next", g, "reward")) for g in ("player_1", "player_2")], -1)
    assert set(rewards.unique().tolist()) <= {-1.0, 0.0, 1.0}
    ends = td.get(("next", "done")).sum()
    assert ends > 0 and (rewards.sum(-1).abs() < 1e-6).all()  # zero-sum: nobody lost to an illegal move


def test_tictactoe_trains_against_a_random_player():
    cfg = ttt_cfg(per_group={"player_2": {"policy": "random"}})
    trainer = Trainer.from_config(cfg)
    assert set(trainer.losses) == {"player_1"}
    assert type(trainer.losses["player_1"]).__name__ == "MaskedMAPPOLoss"  # only its own turns count
    assert len(trainer.train()) == 2


def _outcomes(p1: torch.Tensor, p2: torch.Tensor) -> dict[str, float]:
    """Each player's share of wins, and of draws, from both players' episode returns."""
    return {"player_1": float((p1 > p2).float().mean()), "player_2": float((p2 > p1).float().mean()),
            "draw": float((p1 == p2).float().mean())}


def test_eval_reads_a_turn_based_games_winner_from_the_returns_not_the_turn_mask():
    # Regression: the win rate of an AEC game came from (group, "mask"), which marks whose
    # turn it is: the player who moved last "won", so player_1 was credited with every draw.
    from torchrl_mappo.evaluate import build_policy, evaluate_seeded

    cfg = ttt_cfg()
    for num_envs in (1, 2):  # a bare PettingZooWrapper, and copies in a SerialEnv
        cfg.env.num_envs = num_envs
        env = make_env(cfg.env, seed=3)
        policy, _ = build_policy(cfg, env, {})  # both players random, legal moves only
        ends = {"player_1": [], "player_2": []}

        def record(td):
            done = td.get(("next", "done")).reshape(-1)
            for g in ends:
                ends[g].append(td.get(("next", g, "episode_reward")).reshape(done.shape[0], -1)[done, 0])

        got = evaluate_seeded(env, policy, ["player_1", "player_2"], 3, episodes=60, on_step=record)
        env.close()
        truth = _outcomes(torch.cat(ends["player_1"])[:60], torch.cat(ends["player_2"])[:60])
        assert got["episodes"] == 60 and truth["draw"] > 0, truth  # draws: where the turn mask was wrong
        for g in ("player_1", "player_2"):
            assert got["groups"][g]["win_rate"] == pytest.approx(truth[g]), (num_envs, g, got, truth)
            assert "survivors_mean" not in got["groups"][g]  # nobody dies in tic-tac-toe


def test_training_metrics_of_a_turn_based_game_read_the_winner_from_the_returns():
    from torchrl_mappo.metrics import episode_returns

    train = {**TINY_TRAIN, "frames_per_batch": 400, "total_frames": 400, "minibatch_size": 200}
    trainer = Trainer.from_config(ttt_cfg(train=train, per_group={"player_2": {"policy": "random"}}))
    batch = next(iter(trainer.collector))
    row, _ = trainer.iterate(batch)  # GAE, the metrics row, the update
    trainer.collector.shutdown()
    truth = _outcomes(*(episode_returns(batch, g).mean(-1) for g in ("player_1", "player_2")))
    assert truth["draw"] > 0, truth
    for g in ("player_1", "player_2"):
        assert row[f"{g}/win_rate"] == pytest.approx(truth[g]), (g, row, truth)
        assert f"{g}/survivors" not in row
    assert trainer.turn_based  # read from the env (a SerialEnv of AEC PettingZooWrappers)


def test_pursuit_parallel_env_by_import_path_with_a_global_state():
    cfg = config_from_dict({"env": {"family": "pettingzoo", "scenario": "pettingzoo.sisl.pursuit_v5",
                                    "num_envs": 1, "max_steps": 10,
                                    "scenario_kwargs": {"n_pursuers": 2, "n_evaders": 2, "x_size": 8,
                                                        "y_size": 8}},
                            "model": {"hidden_sizes": [16]},
                            "train": {"frames_per_batch": 20, "total_frames": 40, "minibatch_size": 20,
                                      "num_epochs": 1}, "run": {"progress_bar": False}})
    trainer = Trainer.from_config(cfg)
    env = trainer.collector.env
    assert env.group_map == {"pursuer": ["pursuer_0", "pursuer_1"]} and keys.STATE in env.observation_spec.keys()
    assert keys.mask("pursuer") in env.observation_spec.keys(True)  # agents may die or arrive
    assert len(trainer.train()) == 2


def test_bare_mpe2_names_still_work():
    env = make_env(config_from_dict({"env": {"family": "pettingzoo", "scenario": "simple_spread_v3",
                                             "num_envs": 1, "continuous_actions": False}}).env)
    assert set(env.group_map) == {"agent"} and keys.mask("agent") not in env.observation_spec.keys(True)


# --------------------------------------------------------------------------- #
# gymnasium_ma (EPyMARL's convention)
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("scenario,obs,n_actions", [("Foraging-8x8-2p-2f-coop-v3", 12, 6),
                                                    ("rware-tiny-2ag-v2", 71, 5)])
def test_gymnasium_ma_envs_become_one_group_of_agents(scenario, obs, n_actions):
    cfg = config_from_dict({"env": {"family": "gymnasium_ma", "scenario": scenario, "num_envs": 2,
                                    "max_steps": 6}, "model": {"hidden_sizes": [16]},
                            "train": {"frames_per_batch": 24, "total_frames": 48, "minibatch_size": 12,
                                      "num_epochs": 1}, "run": {"progress_bar": False}})
    trainer = Trainer.from_config(cfg)
    env = trainer.collector.env
    assert env.group_map == {"agents": ["agent_0", "agent_1"]}
    assert env.observation_spec[keys.observation("agents")].shape == (2, 2, obs)
    assert env.full_action_spec[keys.action("agents")].space.n == n_actions
    history = trainer.train()
    assert len(history) == 2
    td = env.rollout(7, break_when_any_done=False)
    assert td.get(("next", "done"))[:, 5].all()  # env.max_steps=6: a time limit on every copy


def test_lbf_rewards_reach_the_agents():
    """Greedy 'load' next to food eventually pays: over random play some reward arrives, per agent."""
    cfg = config_from_dict({"env": {"family": "gymnasium_ma", "scenario": "Foraging-8x8-2p-2f-coop-v3",
                                    "num_envs": 4, "max_steps": 50}})
    env = make_env(cfg.env, seed=0)
    torch.manual_seed(0)
    td = env.rollout(400, break_when_any_done=False)
    reward = td.get(("next", "agents", "reward"))
    assert reward.shape[-2:] == (2, 1) and reward.sum() > 0
    episodes = td.get(("next", "agents", "episode_reward"))[td.get(("next", "done")).squeeze(-1)]
    assert episodes.numel() and not math.isnan(float(episodes.mean()))


def test_a_missing_package_names_the_extra(capsys):
    code = main(["train", CUSTOM, "env.family=gymnasium_ma", "env.scenario=notapackage:Foo-v0", "env.make=null"])
    err = capsys.readouterr().err
    assert code == 2 and "cannot import 'notapackage'" in err and "pip install 'torchrl_mappo[epymarl]'" in err


def test_an_env_whose_state_is_no_array_trains_without_one_and_int_observations_become_float():
    env = make_env(config_from_dict({"env": {"family": "pettingzoo", "scenario": "pettingzoo.classic.rps_v2",
                                             "num_envs": 1, "max_steps": 5}}).env)
    assert keys.STATE not in env.observation_spec.keys()  # rps_v2's `state` is a dict, not state()
    assert env.observation_spec[keys.observation("player")].dtype == torch.float32  # int64 in the env
    td = env.rollout(5)
    assert td.get(keys.observation("player")).dtype == torch.float32


VMAS_STEP_CASES = {
    "navigation": {"num_envs": 3, "scenario_kwargs": {"n_agents": 3}},
    "navigation_discrete": {"num_envs": 3, "continuous_actions": False, "scenario_kwargs": {"n_agents": 2}},
    "balance_info": {"num_envs": 3, "scenario": "balance", "scenario_kwargs": {"n_agents": 3}},
    "simple_tag_two_groups": {"num_envs": 3, "scenario": "simple_tag",
                              "scenario_kwargs": {"num_good_agents": 1, "num_adversaries": 2}},
}


@pytest.mark.parametrize("case", list(VMAS_STEP_CASES))
def test_vmas_step_wrapper_steps_exactly_as_torchrl_wrapper(case):
    """Our VMAS wrapper's stacked ``_step`` gives TorchRL's ``VmasWrapper._step`` output, entry by entry,
    from two simulators seeded alike and given the same actions; the simulator constants are plain attributes."""
    from torchrl.envs.libs.vmas import VmasWrapper

    from torchrl_mappo.envs.family_vmas import VmasStepWrapper

    cfg = config_from_dict({"env": VMAS_STEP_CASES[case]})
    ours, ref = make_env(cfg.env, seed=3).base_env, make_env(cfg.env, seed=3).base_env
    assert isinstance(ours, VmasStepWrapper) and ours._stacked
    for name in ("n_agents", "continuous_actions"):
        assert name in vars(ours) and getattr(ours, name) == getattr(ours._env, name)
    from vmas.simulator.environment.environment import Environment

    rng = Environment.vmas_random_state  # one RNG stream for every VMAS env of the process

    def twice(first, second):  # both calls from the same VMAS RNG state
        saved = list(rng)
        out = first()
        rng[:] = saved
        return out, second()

    td, _ = twice(ours.reset, ref.reset)
    for step in range(6):
        torch.manual_seed(step)
        td.update(ours.full_action_spec.rand())
        mine, theirs = twice(lambda: ours._step(td.clone()), lambda: VmasWrapper._step(ref, td.clone()))
        assert set(mine.keys(True, True)) == set(theirs.keys(True, True))
        for key in theirs.keys(True, True):
            assert mine.get(key).dtype == theirs.get(key).dtype and torch.equal(mine.get(key), theirs.get(key)), (step, key)
        for group in ours.group_map:
            assert mine[group].batch_size == theirs[group].batch_size
    if case == "balance_info":  # the info entries are compared too
        assert ("agents", "info", "ground_rew") in mine.keys(True, True)


@pytest.mark.parametrize("case", list(VMAS_STEP_CASES))
def test_vmas_step_wrapper_resets_exactly_as_torchrl_wrapper(case):
    """Our VMAS wrapper's ``_reset`` (stacked entries, one RNG swap for all envs) gives TorchRL's
    ``VmasWrapper._reset`` output, entry by entry, and leaves VMAS's RNG stream where TorchRL's does:
    a reset of every env, of no env, of some envs (each ``reset_at`` draws), after steps that moved them."""
    from torchrl.envs.libs.vmas import VmasWrapper
    from vmas.simulator.environment.environment import Environment

    from torchrl_mappo.envs.family_vmas import VmasStepWrapper

    cfg = config_from_dict({"env": {**VMAS_STEP_CASES[case], "num_envs": 5}})
    ours, ref = make_env(cfg.env, seed=3).base_env, make_env(cfg.env, seed=3).base_env
    assert isinstance(ours, VmasStepWrapper) and ours._stacked
    rng = Environment.vmas_random_state

    def twice(first, second):  # both from the same VMAS RNG state; the states they leave must agree
        saved = list(rng)
        out = first()
        after = list(rng)
        rng[:] = saved
        theirs = second()
        assert torch.equal(after[0], rng[0]) and after[2] == rng[2]
        assert after[1][0] == rng[1][0] and (after[1][1] == rng[1][1]).all() and after[1][2:] == rng[1][2:]
        return out, theirs

    def same(mine, theirs):
        assert set(mine.keys(True, True)) == set(theirs.keys(True, True))
        for key in theirs.keys(True, True):
            assert mine.get(key).dtype == theirs.get(key).dtype and torch.equal(mine.get(key), theirs.get(key)), key
        for group in ours.group_map:
            assert mine[group].batch_size == theirs[group].batch_size

    td = TensorDict({"_reset": torch.ones(5, 1, dtype=torch.bool)}, batch_size=[5])
    same(*twice(lambda: ours._reset(td), lambda: VmasWrapper._reset(ref, td)))
    same(*twice(lambda: ours._reset(None), lambda: VmasWrapper._reset(ref, None)))
    for step, mask in enumerate(([True, False, False, True, False], [False] * 5, [False, True, True, True, True])):
        torch.manual_seed(step)
        act = ours.full_action_spec.rand()
        twice(lambda: ours._step(act.clone()), lambda: VmasWrapper._step(ref, act.clone()))
        td = TensorDict({"_reset": torch.tensor(mask).unsqueeze(-1)}, batch_size=[5])
        before = rng[0].clone()
        same(*twice(lambda: ours._reset(td), lambda: VmasWrapper._reset(ref, td)))
        assert torch.equal(rng[0], before) != any(mask)  # a reset of some envs draws their new starts


def test_an_env_whose_own_group_is_named_like_a_torchrl_key_gets_the_group_map_that_renames_it(capsys, tmp_path):
    """mpe2's collect_treasure groups its collector_* agents as 'collector', TorchRL's collector's root key:
    one line with an env.group_map that renames the team, which then builds and collects."""
    base = ["train", str(REPO / "configs/mpe_simple_spread.yaml"), "env.scenario=collect_treasure_v1",
            "env.scenario_kwargs={}", "env.num_envs=2", f"run.dir={tmp_path}", "run.progress_bar=false"]
    assert main([*base, "run.name=a"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    fix = err[err.index("env.group_map="):]
    assert "'collector'" in err and fix.startswith("env.group_map={collectors: [collector_0, ")
    assert not (tmp_path / "a").exists()
    cfg = load_config(str(REPO / "configs/mpe_simple_spread.yaml"),
                      ["env.scenario=collect_treasure_v1", "env.scenario_kwargs={}", "env.num_envs=2", fix])
    trainer = Trainer.from_config(cfg)
    batch = next(iter(trainer.collector))
    assert set(trainer.groups) == {"collectors", "deposit"} and batch.get(("collector", "traj_ids")).numel()
    trainer.collector.shutdown()


def test_pettingzoo_envs_build_without_torchrl_version_warning():
    """TorchRL warns on every PettingZooWrapper build that PettingZoo is not 1.24.3; the package's wrappers
    (mpe2, import paths, magent2) build without it, and other warnings still pass."""
    import warnings

    from torchrl_mappo.envs.family_pettingzoo import pettingzoo_wrapper

    for env in ({"family": "pettingzoo", "scenario": "simple_spread_v3", "num_envs": 2},
                {"family": "pettingzoo", "scenario": "pettingzoo.classic.rps_v2", "num_envs": 1},
                {"family": "magent", "scenario": "battle_v4", "num_envs": 1, "continuous_actions": False,
                 "scenario_kwargs": {"map_size": 12}}):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            make_env(config_from_dict({"env": env}).env, seed=0)
        assert not [w for w in caught if "PettingZoo in TorchRL is tested" in str(w.message)], env
    from mpe2 import simple_v3

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.warn("another warning")
        pettingzoo_wrapper(simple_v3.parallel_env())
    assert [str(w.message) for w in caught] == ["another warning"]


def _pettingzoo_pair(raw_factory, **kwargs):
    """The package's PettingZoo wrapper and TorchRL's own over two identically made raw envs."""
    from torchrl.envs.libs.pettingzoo import PettingZooWrapper

    from torchrl_mappo.envs.family_pettingzoo import pettingzoo_wrapper

    ours = pettingzoo_wrapper(raw_factory(), **kwargs)
    with pytest.warns(UserWarning, match="PettingZoo in TorchRL is tested"):
        ref = PettingZooWrapper(raw_factory(), **kwargs)
    assert type(ours).__name__ == "PettingZooStepWrapper" and isinstance(ours, PettingZooWrapper)
    return ours, ref


def _step_both(ours, ref, td, td_ref, step):
    """One step of both wrappers with the same seeded random actions; their outputs equal entry by entry."""
    from torchrl.envs.libs.pettingzoo import PettingZooWrapper

    torch.manual_seed(step)
    act = ours.full_action_spec.rand()
    mine, theirs = ours._step(td.clone().update(act)), PettingZooWrapper._step(ref, td_ref.clone().update(act))
    assert set(mine.keys(True, True)) == set(theirs.keys(True, True))
    for key in theirs.keys(True, True):
        assert mine.get(key).dtype == theirs.get(key).dtype and torch.equal(mine.get(key), theirs.get(key)), (step, key)
    return mine, theirs


class _Dying:
    """A parallel PettingZoo env whose agents die: team ``a`` (3 agents) and ``b`` (2); agent a_1 dies at step 2,
    b_0 at step 4 (terminated), everyone else is truncated at step 6. Box observations, random rewards."""

    metadata = {"name": "dying_v0"}

    def __init__(self):
        import numpy as np
        from gymnasium.spaces import Box, Discrete

        self.possible_agents = ["a_0", "a_1", "a_2", "b_0", "b_1"]
        self._obs = {a: Box(-1, 1, (4,), np.float32) for a in self.possible_agents}
        self._act = {a: Discrete(3) for a in self.possible_agents}
        self.rng = np.random.default_rng(0)

    def observation_space(self, agent):
        return self._obs[agent]

    def action_space(self, agent):
        return self._act[agent]

    def _out(self):
        return {a: self.rng.uniform(-1, 1, 4).astype("float32") for a in self.agents}

    def reset(self, seed=None, options=None):
        import numpy as np

        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.t, self.agents = 0, list(self.possible_agents)
        return self._out(), {a: {} for a in self.agents}

    def step(self, actions):
        self.t += 1
        dying = {2: "a_1", 4: "b_0"}.get(self.t)
        term = {a: a == dying for a in self.agents}
        trunc = {a: self.t >= 6 for a in self.agents}
        rew = {a: float(self.rng.normal()) + actions.get(a, 0) for a in self.agents}
        obs = self._out()
        self.agents = [a for a in self.agents if not (term[a] or trunc[a])]
        return obs, rew, term, trunc, {a: {} for a in obs}

    def close(self):
        pass


def test_pettingzoo_step_wrapper_writes_dead_agents_as_torchrl_does():
    """Agents that die mid-episode: masked out, their done flags from the step that killed them, then True."""
    from pettingzoo.utils.env import ParallelEnv

    dying = type("Dying", (_Dying, ParallelEnv), {})
    ours, ref = _pettingzoo_pair(dying, use_mask=True, done_on_any=False, categorical_actions=True, return_state=False)
    assert ours._stacked and set(ours.group_map) == {"a", "b"}
    ours.set_seed(3), ref.set_seed(3)
    td, td_ref = ours.reset(), ref.reset()
    masks = []
    for step in range(6):
        mine, theirs = _step_both(ours, ref, td, td_ref, step)
        masks.append((mine.get(("a", "mask")).tolist(), mine.get(("b", "mask")).tolist()))
        td, td_ref = mine, theirs
    assert masks[1] == ([True, False, True], [True, True]) and masks[3] == ([True, False, True], [False, True])
    assert mine.get(("a", "terminated")).flatten().tolist() == [False, True, False]  # a_1 stays terminated


@pytest.mark.parametrize("case", ["magent_battle", "mpe_two_groups"])
def test_pettingzoo_step_wrapper_steps_exactly_as_torchrl_wrapper(case):
    """The stacked parallel step gives TorchRL's ``PettingZooWrapper._step`` output entry by entry (observations,
    rewards, per-agent and root done flags, the live-agent mask, the state) over whole episodes."""
    from torchrl_mappo.envs.family_magent import fix_magent_reset

    if case == "magent_battle":
        from magent2.environments import battle_v4

        ours, ref = _pettingzoo_pair(lambda: fix_magent_reset(battle_v4.parallel_env(map_size=12, max_cycles=200)),
                                     return_state=True, use_mask=True, done_on_any=False, categorical_actions=True)
    else:
        from mpe2 import simple_adversary_v3

        ours, ref = _pettingzoo_pair(lambda: simple_adversary_v3.parallel_env(max_cycles=30), return_state=True,
                                     categorical_actions=True)
    assert ours._stacked and len(ours.group_map) == 2
    ours.set_seed(7), ref.set_seed(7)
    td, td_ref = ours.reset(), ref.reset()
    assert all(torch.equal(td.get(k), td_ref.get(k)) for k in td_ref.keys(True, True))
    for step in range(200):
        mine, theirs = _step_both(ours, ref, td, td_ref, step)
        if mine.get("done").all():
            break
        td, td_ref = mine, theirs


def test_turn_based_and_dict_observation_envs_step_through_torchrl():
    from pettingzoo.classic import tictactoe_v3

    ours, _ = _pettingzoo_pair(lambda: tictactoe_v3.env(), use_mask=True, categorical_actions=True)
    assert not ours._stacked  # AEC: TorchRL's own _step
