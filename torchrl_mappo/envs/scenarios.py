"""Which scenarios each env family offers, read from the installed packages.

Config loading calls :func:`check_scenario` last, once every field is valid:
listing VMAS's or mpe2's scenarios imports the simulator (and torch). A
package a family needs but that is missing is one line naming the extra
that installs it (:func:`require`).
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING, Any

from torchrl_mappo.errors import ConfigError, did_you_mean

if TYPE_CHECKING:  # pragma: no cover
    from torchrl_mappo.config import EnvConfig

__all__ = ["available_scenarios", "check_scenario", "gym_id", "import_scenario", "require"]

# gymnasium_ma: the package that registers each id prefix (EPyMARL's envs).
GYM_PACKAGES = {"Foraging": "lbforaging", "rware": "rware"}
EXTRAS = {"pettingzoo": "pettingzoo", "gymnasium_ma": "epymarl"}


def require(module: str, family: str, where: str) -> Any:
    """Import ``module``; if it (or what it needs) is missing, one line naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        _no_such_module(module, err, where)
        extra = EXTRAS.get(family, family)
        raise ConfigError(
            f"{where}: cannot import {module!r} ({err}); install it, e.g. pip install 'torchrl_mappo[{extra}]'"
        ) from None


def _no_such_module(module: str, err: ImportError, where: str) -> None:
    """A module that does not exist in a package that does: name its siblings, not an extra."""
    parent, _, last = module.rpartition(".")
    if not parent or getattr(err, "name", None) != module:
        return
    try:
        package = importlib.import_module(parent)
    except ImportError:
        return
    names = sorted(m.name for m in pkgutil.iter_modules(getattr(package, "__path__", [])) if not m.name.startswith("_"))
    raise ConfigError(
        f"{where}: {parent} has no module {last!r}{did_you_mean(last, names)} (it has: {', '.join(names)})"
    )


def available_scenarios(family: str) -> list[str]:
    """Scenario names each env family offers (from the installed simulator)."""
    if family == "vmas":
        import vmas

        return [*vmas.scenarios, *vmas.mpe_scenarios, *vmas.debug_scenarios]
    if family == "pettingzoo":
        import mpe2.all_modules

        return sorted(name.split("/", 1)[-1] for name in mpe2.all_modules.mpe_environments)
    if family == "magent":
        from torchrl_mappo.envs.family_magent import magent_scenarios

        return magent_scenarios()
    return []


def import_scenario(env: EnvConfig, where: str = "env") -> Any:
    """``pettingzoo``: the module of ``env.scenario`` (a bare mpe2 name or an import path), with
    ``parallel_env()`` or ``env()``."""
    if "." not in env.scenario:
        import mpe2.all_modules

        return mpe2.all_modules.mpe_environments[f"mpe/{env.scenario}"]
    module = require(env.scenario, "pettingzoo", f"{where}.scenario={env.scenario!r}")
    if not (callable(getattr(module, "parallel_env", None)) or callable(getattr(module, "env", None))):
        raise ConfigError(
            f"{where}.scenario={env.scenario!r}: the module has neither parallel_env() nor env(); "
            "name a PettingZoo env module, e.g. pettingzoo.sisl.pursuit_v5"
        )
    return module


def gym_id(env: EnvConfig, where: str = "env") -> str:
    """``gymnasium_ma``: import the package that registers ``env.scenario`` and return the id."""
    module, _, name = env.scenario.rpartition(":")
    if not module:
        module = next((pkg for prefix, pkg in GYM_PACKAGES.items() if name.startswith(prefix)), "")
    if module:
        require(module, "gymnasium_ma", f"{where}.scenario={env.scenario!r}")
    import gymnasium

    if name not in gymnasium.registry:
        names = [k for k in gymnasium.registry if any(k.startswith(p) for p in GYM_PACKAGES)]
        raise ConfigError(
            f"{where}.scenario={env.scenario!r}: not a registered gymnasium env{did_you_mean(name, names)} "
            "(lbforaging: Foraging-8x8-2p-2f-coop-v3, rware: rware-tiny-2ag-v2; or 'module:id' for another "
            "package's ids)"
        )
    return name


def check_scenario(env: EnvConfig, origin: str) -> None:
    """``env.scenario`` must be one of its family's scenarios; errors start with ``origin``."""
    if env.family == "torchrl":
        return  # the callable of env.make is the env
    if env.family == "pettingzoo" and "." in env.scenario:
        import_scenario(env, f"{origin}: env")
        return
    if env.family == "gymnasium_ma":
        gym_id(env, f"{origin}: env")
        return
    names = available_scenarios(env.family)
    if env.scenario not in names:
        more = "; or any PettingZoo env by import path, e.g. pettingzoo.sisl.pursuit_v5" if env.family == "pettingzoo" else ""
        raise ConfigError(
            f"{origin}: env.scenario={env.scenario!r} is not a {env.family} scenario"
            f"{did_you_mean(env.scenario, names)} (available: {', '.join(names)}{more})"
        )
