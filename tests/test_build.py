"""build.py: a run's components from its config, as plain TorchRL objects."""
import pytest
import torch
from torchrl.collectors import Collector
from torchrl.envs import EnvBase
from torchrl.objectives.multiagent import MAPPOLoss

from conftest import small_cfg
from torchrl_mappo import Trainer
from torchrl_mappo.build import Pipeline, build
from torchrl_mappo.config import ConfigError


def test_build_returns_plain_torchrl_objects_and_a_trainer_runs_on_them():
    cfg = small_cfg()
    p = build(cfg)
    assert isinstance(p, Pipeline) and isinstance(p.env, EnvBase) and isinstance(p.collector, Collector)
    assert set(p.actors) == set(p.losses) == {"agents"} and isinstance(p.losses["agents"], MAPPOLoss)
    assert all(isinstance(o, torch.optim.Adam) for o in p.optimizers["agents"])
    assert p.sinks is None  # no run directory
    # Composition: hand the pieces to the trainer yourself.
    history = Trainer(p.collector, p.losses, cfg, optimizers=p.optimizers).train()
    assert [row["frames"] for row in history] == [80, 160]


def test_random_groups_act_but_get_no_loss():
    cfg = small_cfg(env={"scenario": "simple_tag", "scenario_kwargs": {}},
                    per_group={"agent": {"policy": "random"}})
    p = build(cfg)
    assert set(p.actors) == {"adversary", "agent"} and set(p.losses) == {"adversary"}
    p.collector.shutdown()


def test_a_spent_budget_is_a_config_error():
    with pytest.raises(ConfigError, match="the run already used 160 frames"):
        build(small_cfg(), resume={"frames": 160, "iteration": 2})
