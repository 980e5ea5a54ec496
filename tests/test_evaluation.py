"""``train.eval_every``: the deterministic evaluation during training (issue 12)."""
import math

import pytest

from conftest import small_cfg
from torchrl_mappo import Trainer
from torchrl_mappo.evaluate import EVAL_SEED_OFFSET, evaluate_checkpoint
from torchrl_mappo.summary import final_eval, read_rows

TIMING = {"collect_time", "train_time", "fps", "wall_time", "eval_time"}


def eval_cfg(**train):
    return small_cfg(train={"frames_per_batch": 80, "total_frames": 400, "eval_every": 160, "eval_episodes": 6,
                            **train})


def test_evaluates_after_each_multiple_of_eval_every_and_after_the_last_iteration():
    trainer = Trainer.from_config(eval_cfg())
    history = trainer.train()
    with_eval = [row["iteration"] for row in history if "eval/agents/episode_return" in row]
    assert with_eval == [2, 4, 5]  # frames 160, 320, and the end (400)
    for row in history:
        if row["iteration"] in with_eval:
            assert math.isfinite(row["eval/agents/episode_return"])
            assert row["eval/agents/episode_return_std"] >= 0
            assert row["eval_time"] > 0


def test_evaluation_leaves_training_unchanged():
    plain = Trainer.from_config(eval_cfg(eval_every=None)).train()
    evaluated = Trainer.from_config(eval_cfg()).train()
    assert len(plain) == len(evaluated)
    for a, b in zip(plain, evaluated):
        same = {k: v for k, v in b.items() if k not in TIMING and not k.startswith("eval")}
        assert {k: v for k, v in a.items() if k not in TIMING} == same


def test_same_weights_give_the_same_evaluation():
    trainer = Trainer.from_config(eval_cfg())
    first, second = trainer.evaluation(), trainer.evaluation()
    assert first == second
    assert set(first) == {"eval/agents/episode_return", "eval/agents/episode_return_std"}
    trainer.collector.shutdown()
    trainer.evaluation.close()


def test_eval_return_is_the_final_policy_played_deterministically(tmp_path):
    cfg = eval_cfg()
    trainer = Trainer.from_config(cfg, run_dir=tmp_path)
    history = trainer.train()
    # The same policy through `torchrl-mappo eval`'s code path, on the evaluation's seed and envs.
    result = evaluate_checkpoint(tmp_path, episodes=6, deterministic=True, seed=cfg.train.seed + EVAL_SEED_OFFSET,
                                 num_envs=4)
    assert history[-1]["eval/agents/episode_return"] == pytest.approx(result["groups"]["agents"]["return_mean"])
    rows = read_rows(tmp_path)
    assert final_eval(rows) == pytest.approx(history[-1]["eval/agents/episode_return"])
    assert math.isnan(rows[0]["eval/agents/episode_return"])  # no evaluation after the first iteration


def test_evaluation_uses_its_own_seed_not_trainings():
    trainer = Trainer.from_config(eval_cfg())
    assert trainer.evaluation.seed == trainer.config.train.seed + EVAL_SEED_OFFSET
    trainer.collector.shutdown()
    trainer.evaluation.close()
