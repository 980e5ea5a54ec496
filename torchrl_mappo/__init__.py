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
"""
from torchrl_mappo.collectors import make_collector
from torchrl_mappo.config import Config, ConfigError, load_config
from torchrl_mappo.envs import make_env
from torchrl_mappo.loss import make_loss
from torchrl_mappo.modules import make_actor, make_critic
from torchrl_mappo.runs import train
from torchrl_mappo.trainer import Trainer

__version__ = "0.1.0"

__all__ = [
    "Config",
    "ConfigError",
    "Trainer",
    "load_config",
    "make_actor",
    "make_collector",
    "make_critic",
    "make_env",
    "make_loss",
    "train",
]
