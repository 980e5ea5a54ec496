"""envs/snapshot.py: the episodes in flight, captured and restored exactly."""
import torch

from conftest import small_cfg
from torchrl_mappo.build import build
from torchrl_mappo.envs import snapshot


def test_a_restored_vmas_simulator_and_carrier_continue_identically():
    cfg = small_cfg(train={"total_frames": 800})
    p = build(cfg)
    it = iter(p.collector)
    next(it)  # episodes in flight
    carrier = snapshot.carrier(p.collector).clone()
    saved = snapshot.simulator_tensors(p.env)
    rng = torch.get_rng_state()
    first = next(it)
    # Back to where we were: the next batch must be the same, step for step.
    snapshot.restore_simulator_tensors(p.env, saved)
    snapshot.set_carrier(p.collector, carrier)
    torch.set_rng_state(rng)
    again = next(it)
    assert (first == again).all()
    # And without the restore it would have differed (the check can fail).
    assert not (next(it) == first).all()
    p.collector.shutdown()


def test_a_carrier_of_another_size_is_refused():
    import pytest

    from torchrl_mappo.config import ConfigError

    p = build(small_cfg())
    wrong = snapshot.carrier(p.collector)[:2].clone()
    with pytest.raises(ConfigError, match="env.num_envs changed"):
        snapshot.set_carrier(p.collector, wrong)
    p.collector.shutdown()


def test_non_vmas_envs_have_no_simulator_snapshot():
    import pathlib

    from torchrl_mappo.config import load_config

    repo = pathlib.Path(__file__).resolve().parents[1]
    cfg = load_config(repo / "configs/mpe_simple_spread.yaml", ["env.num_envs=2"])
    from torchrl_mappo.envs import make_env

    env = make_env(cfg.env, seed=0)
    assert snapshot.vmas_simulator(env) is None and snapshot.simulator_tensors(env) is None
    env.close()


def test_a_checkpoint_whose_episodes_lack_an_entry_restarts_them(capsys):
    """A checkpoint from before VMAS's time limit moved to StepCounter has no ``step_count``."""
    from torchrl_mappo import Trainer

    trainer = Trainer.from_config(small_cfg())
    next(iter(trainer.collector))
    state = trainer.state_dict()
    assert "step_count" in state["carrier"].keys()
    old = dict(state, carrier=state["carrier"].exclude("step_count"))
    fresh = Trainer.from_config(small_cfg())
    fresh.load_state_dict(old)
    assert "they restart from a reset" in capsys.readouterr().err
    assert "step_count" in snapshot.carrier(fresh.collector).keys()  # the fresh episodes, not the old ones
    for t in (trainer, fresh):
        t.collector.shutdown()
