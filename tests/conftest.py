import importlib.util
import sys
import warnings
from pathlib import Path

import pytest
import torch

from torchrl_mappo.config import config_from_dict

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "configs").glob("*.yaml"))


def load_benchmark(script: str, name: str | None = None):
    """Import ``benchmarks/<script>.py`` (not a package) as a module named ``name`` (default: the script's)."""
    spec = importlib.util.spec_from_file_location(name or script, REPO / "benchmarks" / f"{script}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module

warnings.filterwarnings("ignore", message="You requested advantage normalization")


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    torch.set_num_threads(1)


def small_cfg(**sections):
    """A small, fast config (4 envs, tiny nets) with per-section overrides."""
    data = {
        "env": {"num_envs": 4, "max_steps": 20, "scenario_kwargs": {"n_agents": 3}},
        "model": {"hidden_sizes": [16, 16]},
        "train": {"frames_per_batch": 80, "total_frames": 160, "minibatch_size": 40, "num_epochs": 2},
        "run": {"progress_bar": False},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return config_from_dict(data)


class _RoutedCall:
    def __init__(self, inner, fn):
        self.inner, self.fn = inner, fn

    def __call__(self, data):
        return self.fn(self.inner, data)

    def __getattr__(self, name):  # in_keys, parameters(): the routed object's
        return getattr(self.inner, name)


def route_loss_call(trainer, group, fn):
    """Route every call the trainer makes to ``group``'s loss through ``fn(call, data)``: its
    ``LeanTerms`` under ``train.lean`` (dict minibatches), else the loss's own forward (TensorDicts)."""
    if group in trainer._lean:
        trainer._lean[group] = _RoutedCall(trainer._lean[group], fn)
    else:
        loss = trainer.losses[group]
        real = loss.forward
        loss.forward = lambda td: fn(real, td)
