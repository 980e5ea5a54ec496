"""Environment factories (TorchRL wrappers) and our env transforms."""
from torchrl_mappo.envs.factory import make_env

__all__ = ["make_env"]
