"""Environment factories (TorchRL wrappers), our env transforms, the families' scenario lists.

``make_env`` is imported on first use, so that config loading can list
scenarios (:mod:`torchrl_mappo.envs.scenarios`) without loading TorchRL.
"""
from typing import TYPE_CHECKING

__all__ = ["make_env"]


def __getattr__(name: str):
    if name == "make_env":
        from torchrl_mappo.envs.factory import make_env

        return make_env
    raise AttributeError(f"module 'torchrl_mappo.envs' has no attribute {name!r}")


if TYPE_CHECKING:  # pragma: no cover
    from torchrl_mappo.envs.factory import make_env
