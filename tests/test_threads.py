"""``train.num_threads: auto``: one thread for the networks MAPPO uses on CPU, never more than the cores."""
import os

import pytest
import torch

from torchrl_mappo.config import config_from_dict
from torchrl_mappo.threads import apply_threads, auto_threads, available_cores, core_budget, thread_env


def cfg(hidden=64, minibatch=1000, **sections):
    data = {"model": {"hidden_sizes": [hidden, hidden]},
            "train": {"minibatch_size": minibatch, "frames_per_batch": 60_000, "total_frames": 120_000}}
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return config_from_dict(data)


def test_auto_is_the_default_and_gives_small_networks_one_thread():
    assert config_from_dict({}).train.num_threads == "auto"
    for hidden, minibatch in ((64, 1000), (64, 400), (256, 1000), (256, 400)):  # what was measured
        assert auto_threads(cfg(hidden, minibatch), cores=16) == 1


def test_auto_grows_with_the_work_but_never_past_the_cores():
    assert auto_threads(cfg(1024, 4000), cores=64) > 2
    assert auto_threads(cfg(1024, 4000), cores=2) == 2
    assert auto_threads(cfg(1024, 4000), cores=1) == 1
    # multi_async's workers collect while the trainer updates: they take their cores first.
    busy = cfg(1024, 4000, collector={"kind": "multi_async", "workers": 2}, env={"num_envs": 60})
    assert auto_threads(busy, cores=4) == 2
    on_gpu = cfg(1024, 4000)
    on_gpu.train.device = "cuda"  # (not validated: this machine may have no GPU)
    assert auto_threads(on_gpu, cores=64) == 1
    assert auto_threads(cfg()) == 1 and available_cores() == len(os.sched_getaffinity(0))


def test_omp_num_threads_caps_the_budget(monkeypatch):
    """How the runner gives each run its share: ``auto`` never goes past it."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert core_budget() == 1 and auto_threads(cfg(1024, 4000)) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "999")
    assert core_budget() == available_cores()
    monkeypatch.setenv("OMP_NUM_THREADS", "lots")
    assert core_budget() == available_cores()


def test_apply_sets_intra_and_leaves_torch_alone_for_null():
    before = torch.get_num_threads()
    assert apply_threads(cfg(train={"num_threads": 1})) == 1 and torch.get_num_threads() == 1
    assert apply_threads(cfg()) == 1
    assert apply_threads(cfg(train={"num_threads": None})) == 1  # torch's current value, untouched
    # Inter-op threads can be set once per process: a second, different request is skipped, not an error.
    apply_threads(cfg(train={"num_threads": 2}))
    assert torch.get_num_threads() == 2
    torch.set_num_threads(before)


@pytest.mark.parametrize("value, message", [(0, "must be 'auto', a number between 1 and the number of CPU cores"),
                                            ("many", "expected an integer or one of 'auto' or null")])
def test_bad_thread_counts_name_the_field(value, message):
    from torchrl_mappo import ConfigError

    with pytest.raises(ConfigError, match=f"train.num_threads.*{message}"):
        cfg(train={"num_threads": value})


def test_child_processes_get_the_thread_count_in_every_math_library():
    assert thread_env(3) == {"OMP_NUM_THREADS": "3", "MKL_NUM_THREADS": "3", "OPENBLAS_NUM_THREADS": "3"}


def test_the_last_update_of_a_pettingzoo_run_keeps_its_threads():
    """TorchRL raises torch's thread count when the collector closes its SerialEnv after the last
    batch; the trainer puts the configured count back before updating (was: [1, 2])."""
    import torch

    from conftest import REPO
    from torchrl_mappo import Trainer
    from torchrl_mappo.config import load_config

    cfg = load_config(REPO / "configs/mpe_simple_spread.yaml", [
        "env.num_envs=2", "train.frames_per_batch=50", "train.total_frames=100", "train.minibatch_size=50",
        "train.num_epochs=1", "model.hidden_sizes=[8]", "run.progress_bar=false", "train.num_threads=1"])
    trainer = Trainer.from_config(cfg)
    seen, update = [], trainer.update
    trainer.update = lambda batch: (seen.append(torch.get_num_threads()), update(batch))[1]
    trainer.train()
    assert seen == [1, 1]
