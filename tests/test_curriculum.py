"""``train.curriculum``: stages change at the right iteration, the env is rebuilt, resume stays in its stage."""
import csv

import pytest

from conftest import REPO
from torchrl_mappo import Trainer
from torchrl_mappo.cli import main
from torchrl_mappo.config import ConfigError, load_config
from torchrl_mappo.curriculum import check_stages

NAV = str(REPO / "configs/vmas_navigation.yaml")
TINY = ["env.num_envs=4", "env.max_steps=10", "train.frames_per_batch=400", "train.minibatch_size=200",
        "train.num_epochs=1", "model.hidden_sizes=[16]", "run.progress_bar=false", "model.critic=attention",
        "train.num_threads=1"]


def stages(*parts):
    return "train.curriculum=[" + ", ".join(parts) + "]"


def agents(n, until=None):
    return f"{{overrides: {{env.scenario_kwargs.n_agents: {n}}}" + (f", until: {until}}}" if until else "}")


def n_agents(trainer):
    return len(trainer.agent_names["agents"])  # the group_map of the env the collector steps


def test_stage_changes_at_the_right_iteration_and_rebuilds_the_env():
    cfg = load_config(NAV, [*TINY, "train.total_frames=2400",
                            stages(agents(2, "{frames: 800}"), agents(4, "{frames: 400, return: 1000000000.0}"), agents(5))])
    trainer = Trainer.from_config(cfg)
    assert n_agents(trainer) == 2
    history = trainer.train()
    # 800 frames = 2 batches in stage 0; stage 1 ends on frames (its return is out of reach) after 1 batch.
    assert [row["curriculum_stage"] for row in history] == [0, 0, 1, 2, 2, 2]
    assert n_agents(trainer) == 5


def test_return_condition_advances_on_the_first_batch_that_reaches_it():
    cfg = load_config(NAV, [*TINY, "train.total_frames=1200", stages(agents(2, "{return: -1000000000.0}"), agents(3))])
    history = Trainer.from_config(cfg).train()
    assert [row["curriculum_stage"] for row in history] == [0, 1, 1]


def test_eval_return_condition_reads_the_stage_evaluation():
    """``until: {eval_return: R}`` advances on the first evaluation (``train.eval_every``) that reaches R,
    and the next stage is evaluated on its own env (its agent count)."""
    cfg = load_config(NAV, [*TINY, "train.total_frames=2000", "train.eval_every=800", "train.eval_episodes=2",
                            stages(agents(2, "{eval_return: -1000000000.0}"), agents(3))])
    trainer = Trainer.from_config(cfg)
    history = trainer.train()
    assert [row["curriculum_stage"] for row in history] == [0, 0, 1, 1, 1]
    assert "eval/agents/episode_return" in history[1] and "eval/agents/episode_return" in history[3]
    assert trainer.evaluation.env.observation_spec["agents", "observation"].shape[-2] == 3


def test_resume_in_stage_two_continues_in_stage_two(tmp_path):
    run = ["train", NAV, f"run.dir={tmp_path}", "run.name=cur", *TINY, "train.total_frames=800",
           stages(agents(2, "{frames: 400}"), agents(4))]
    assert main(run) == 0
    assert main(["train", "--resume", str(tmp_path / "cur"), "train.total_frames=1600"]) == 0
    with open(tmp_path / "cur" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["iteration"], r["curriculum_stage"]) for r in rows] == [("1", "0"), ("2", "1"), ("3", "1"), ("4", "1")]
    import torch

    state = torch.load(tmp_path / "cur" / "checkpoint.pt", weights_only=False)
    assert state["curriculum"] == {"stage": 1, "stage_start": 400}
    assert state["simulator"] is not None  # the 4-agent env's episodes in flight were restored, not restarted


def test_a_critic_sized_by_the_agent_count_is_refused_before_training():
    cfg = load_config(NAV, [*TINY, "model.critic=mlp", "train.total_frames=800",
                            stages(agents(2, "{frames: 400}"), agents(4))])
    with pytest.raises(ConfigError, match=r"train.curriculum\[1\]: the first stage's critic of group 'agents' cannot run in this env: "
                       r"model.critic: mlp \(critic_input auto\) sizes its input by the agent count"):
        Trainer.from_config(cfg)


@pytest.mark.parametrize("bad,words", [
    ([{"overrides": {"env.scenario_kwargs.n_agents": 2}}], "one stage is no curriculum"),
    ([{"overrides": {"train.lr": 1}, "until": {"frames": 1}}, {"overrides": {"env.max_steps": 5}}],
     "curriculum[0].overrides.train.lr: a stage changes env settings only"),
    ([{"overrides": {"env.max_steps": 5}}, {"overrides": {"env.max_steps": 6}}], "curriculum[0].until: give"),
    ([{"overrides": {"env.max_steps": 5}, "until": {"frames": 0}}, {"overrides": {"env.max_steps": 6}}],
     "until.frames=0: must be a positive integer"),
    ([{"overrides": {"env.max_steps": 5}, "until": {"frames": 10}}, {"overrides": {"env.max_steps": 6},
                                                                      "until": {"frames": 10}}],
     "the last stage runs until train.total_frames"),
    ([{"overrides": {"env.max_steps": 5}, "until": {"frames": 100}}, {"overrides": {"env.max_steps": 6}}],
     "leaves it none"),
    ([{"overrides": {"env.max_steps": 5}, "until": {"eval_return": 1.0}}, {"overrides": {"env.max_steps": 6}}],
     "until.eval_return: needs train.eval_every"),
])
def test_bad_stages_are_one_line_errors(bad, words):
    with pytest.raises(ConfigError) as err:
        check_stages(bad, "c.yaml: train", total_frames=100)
    assert words in str(err.value) and "\n" not in str(err.value)
