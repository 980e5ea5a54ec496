"""torchrl_mappo: modular multi-agent PPO (MAPPO) components on TorchRL.

Builders return plain TorchRL objects, so each piece drops into any TorchRL
pipeline:

- :func:`load_config` -> typed :class:`Config`
- :func:`make_env` -> TorchRL ``EnvBase`` with per-group episode returns
- :func:`make_actor` -> ``ProbabilisticActor`` for one group
- :func:`make_critic` -> ``TensorDictModule`` (centralized by default)
- :func:`make_loss` -> ``MAPPOLoss`` with its GAE
- :func:`make_collector` -> TorchRL ``Collector`` / ``MultiSyncCollector`` /
  ``MultiAsyncCollector`` / ``RayCollector``
- :class:`Trainer` -> the thin training loop
- :func:`train` -> what ``torchrl-mappo train`` does: a run directory

The names are imported on first use, so ``torchrl-mappo --help`` and config
errors answer without loading torch.
"""
from importlib import import_module
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_WHERE = {
    "Config": "config",
    "ConfigError": "config",
    "Trainer": "trainer",
    "load_config": "config",
    "make_actor": "modules",
    "make_collector": "collectors",
    "make_critic": "modules",
    "make_env": "envs",
    "make_loss": "loss",
    "train": "runs",
}
__all__ = [
    "Config", "ConfigError", "Trainer", "load_config", "make_actor", "make_collector", "make_critic",
    "make_env", "make_loss", "train",
]


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(import_module(f"torchrl_mappo.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'torchrl_mappo' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])


if TYPE_CHECKING:  # pragma: no cover
    from torchrl_mappo.collectors import make_collector
    from torchrl_mappo.config import Config, ConfigError, load_config
    from torchrl_mappo.envs import make_env
    from torchrl_mappo.loss import make_loss
    from torchrl_mappo.modules import make_actor, make_critic
    from torchrl_mappo.runs import train
    from torchrl_mappo.trainer import Trainer
