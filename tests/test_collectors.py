"""Collectors: multi-process and Ray collection train like the in-process one.

Speed is measured by ``benchmarks/run.py``, never asserted here.
"""
import math
import sys

import pytest
import torch

from conftest import REPO, small_cfg
from torchrl_mappo import ConfigError, load_config
from torchrl_mappo import checkpoint as ckpt
from torchrl_mappo.collectors import make_collector, ray_init_config
from torchrl_mappo.config import config_from_dict
from torchrl_mappo.trainer import Trainer

GROUP = "agents"


def assert_finite_history(history, groups=(GROUP,)):
    assert history, "no iteration ran"
    for row in history:
        for g in groups:
            assert math.isfinite(row[f"{g}/episode_return"]), row
            for term in ("loss_objective", "loss_critic", "grad_norm"):
                assert math.isfinite(row[f"{g}/{term}"]), (term, row)


def log_prob_gap(trainer, batch, group=GROUP):
    """How far the batch's stored log-probs are from the trainer's current actor's."""
    actor = trainer.actors[group]
    with torch.no_grad():
        dist = actor.get_dist(batch.select(*actor.in_keys).clone())
        now = dist.log_prob(batch.get((group, "action")))
    return float((batch.get((group, "action_log_prob")) - now).abs().max())


def perturb(actor):
    with torch.no_grad():
        for p in actor.parameters():
            p.add_(torch.randn_like(p) * 0.3)


def check_weights_reach_the_workers(trainer):
    """Perturb the actor after each update; record how far each batch is from the current actor.

    A synchronous collector's batch must come from the weights of the last
    update: a gap of ~0 on every iteration.
    """
    gaps = []
    compute_advantages, update = trainer.compute_advantages, trainer.update

    def checked_advantages(batch):
        gaps.append(log_prob_gap(trainer, batch))
        compute_advantages(batch)

    def perturbed_update(batch):
        out = update(batch)
        perturb(trainer.actors[GROUP])  # a large step, then update_policy_weights_()
        return out

    trainer.compute_advantages, trainer.update = checked_advantages, perturbed_update
    return gaps


def test_each_worker_gets_its_own_seed():
    """Worker i builds its env with train.seed + i: the workers' episodes differ, and are reproducible."""
    from torchrl_mappo.collectors import _env_factories

    cfg = small_cfg(collector={"kind": "multi_sync", "workers": 2}, train={"seed": 3})
    factories = _env_factories(cfg)
    first = [f().reset()[GROUP, "observation"] for f in factories]
    assert first[0].shape[0] == 2  # num_envs is the total over the workers
    assert not torch.allclose(first[0], first[1])
    torch.testing.assert_close(factories[1]().reset()[GROUP, "observation"], first[1])


@pytest.mark.slow
def test_multi_async_trains_two_iterations():
    cfg = small_cfg(collector={"kind": "multi_async", "workers": 2})
    trainer = Trainer.from_config(cfg)
    assert type(trainer.collector).__name__ == "MultiAsyncCollector"
    history = trainer.train()
    assert [row["frames"] for row in history] == [80, 160]
    assert_finite_history(history)


@pytest.mark.slow
def test_multi_sync_trains_with_current_weights_and_resumes(tmp_path):
    cfg = small_cfg(collector={"kind": "multi_sync", "workers": 2})
    trainer = Trainer.from_config(cfg, run_dir=tmp_path)
    assert type(trainer.collector).__name__ == "MultiSyncCollector"
    shapes = []
    compute_advantages = trainer.compute_advantages
    trainer.compute_advantages = lambda batch: (shapes.append(tuple(batch.batch_size)), compute_advantages(batch))
    gaps = check_weights_reach_the_workers(trainer)
    history = trainer.train()
    assert [row["frames"] for row in history] == [80, 160]
    assert_finite_history(history)
    # [workers, num_envs / workers, T]: time stays last for GAE.
    assert shapes == [(2, 2, 20)] * 2
    # Batch 2 came from the perturbed weights (stale ones are O(1) away). Not ~1e-6: a TanhNormal's
    # log-prob of an action near the bounds (atanh) is float32-sensitive to how another process ran it.
    assert max(gaps) < 1e-2, gaps

    # The episodes in flight live in the workers: not in the checkpoint; a
    # resume continues weights and counters and restarts the episodes.
    state, _ = ckpt.read(tmp_path)
    assert state["carrier"] is None and state["simulator"] is None and state["frames"] == 160
    longer = small_cfg(collector={"kind": "multi_sync", "workers": 2}, train={"total_frames": 240})
    resumed = Trainer.from_config(longer, resume=state)
    history = resumed.train()
    assert [row["iteration"] for row in history] == [3] and resumed.frames == 240
    assert_finite_history(history)


@pytest.mark.slow
def test_mpe_simple_spread_with_two_workers():
    cfg = load_config(REPO / "configs/mpe_simple_spread.yaml", [
        "env.num_envs=2", "train.frames_per_batch=100", "train.total_frames=200",
        "train.minibatch_size=50", "train.num_epochs=1", "model.hidden_sizes=[16]",
        "run.progress_bar=false", "collector.kind=multi_sync", "collector.workers=2",
    ])
    trainer = Trainer.from_config(cfg)
    history = trainer.train()
    assert [row["frames"] for row in history] == [100, 200]
    assert_finite_history(history, groups=("agent",))


@pytest.mark.slow
def test_ray_collector_on_a_local_head_trains_two_iterations():
    import ray  # in the [dev] extra: this test runs, never skips

    cfg = small_cfg(collector={
        "kind": "ray", "workers": 2,
        # A small object store: the batches are a few kB.
        "ray_init_config": {"num_cpus": 2, "object_store_memory": 100_000_000},
    })
    init = ray_init_config(cfg)
    assert init["address"] == "local" and init["_node_ip_address"] == "127.0.0.1"
    assert not ray.is_initialized()
    trainer = Trainer.from_config(cfg)
    try:
        assert ray.is_initialized()
        assert type(trainer.collector).__name__ == "RayCollector"
        gaps = check_weights_reach_the_workers(trainer)
        history = trainer.train()
        assert [row["frames"] for row in history] == [80, 160]
        assert_finite_history(history)
        assert max(gaps) < 1e-2, gaps  # the Ray workers act with the trainer's weights (see multi_sync's test)
    finally:
        trainer.collector.shutdown()
    assert not ray.is_initialized(), "the private Ray instance must be shut down with the collector"


def test_ray_kind_without_ray_is_a_config_error(monkeypatch):
    cfg = small_cfg(collector={"kind": "ray", "workers": 2})
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ConfigError, match=r"collector.kind=ray needs Ray: pip install"):
        make_collector(cfg, env=None, policy=None)


BAD = [
    ({"kind": "sync", "workers": 2}, "use collector.kind: multi_sync"),
    ({"kind": "multi_sync", "workers": 0}, "collector.workers=0: must be a positive integer"),
    ({"kind": "multi_sync", "workers": 3}, "make env.num_envs a multiple of collector.workers"),
    ({"kind": "multi_async", "workers": 8}, "env.num_envs=4 is the total over the workers"),
    ({"kind": "threads"}, "collector.kind: 'threads' is not allowed"),
    ({"kind": "multi_sync", "workers": "two"}, "collector.workers: expected an integer"),
    ({"kind": "multi_sync", "workers": 2, "ray_address": "auto"}, "collector.ray_address: only used by collector.kind: ray"),
    ({"kind": "ray", "ray_address": " "}, "collector.ray_address: give 'auto'"),
    ({"kind": "ray", "ray_init_config": {"address": "10.0.0.1:6379"}}, "set collector.ray_address instead"),
    ({"kind": "ray", "num_workers": 2}, "did you mean 'collector.workers'"),
]


@pytest.mark.parametrize("collector,words", BAD, ids=[w for _, w in BAD])
def test_bad_collector_settings_are_one_clear_line(collector, words):
    data = {"env": {"num_envs": 4}, "train": {"frames_per_batch": 80, "total_frames": 160, "minibatch_size": 40},
            "collector": collector}
    with pytest.raises(ConfigError) as err:
        config_from_dict(data)
    message = str(err.value)
    assert words in message and "\n" not in message


def test_good_collector_settings_load():
    cfg = config_from_dict({"collector": {"kind": "ray", "workers": 4, "ray_address": "auto"}})
    assert cfg.collector.workers == 4
    assert ray_init_config(cfg) == {"address": "auto"}
    assert config_from_dict({}).collector.kind == "sync"
