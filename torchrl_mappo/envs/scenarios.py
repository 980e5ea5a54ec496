"""Which scenarios each env family offers, read from the installed simulator.

Config loading calls :func:`check_scenario` last, once every field is valid:
listing VMAS's or mpe2's scenarios imports the simulator (and torch).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from torchrl_mappo.errors import ConfigError, did_you_mean

if TYPE_CHECKING:  # pragma: no cover
    from torchrl_mappo.config import EnvConfig

__all__ = ["available_scenarios", "check_scenario"]


def available_scenarios(family: str) -> list[str]:
    """Scenario names each env family offers (from the installed simulator)."""
    if family == "vmas":
        import vmas

        return [*vmas.scenarios, *vmas.mpe_scenarios, *vmas.debug_scenarios]
    if family == "pettingzoo":
        import mpe2.all_modules

        return sorted(name.split("/", 1)[-1] for name in mpe2.all_modules.mpe_environments)
    if family == "magent":
        return ["battle_v4"]
    return []


def check_scenario(env: EnvConfig, origin: str) -> None:
    """``env.scenario`` must be one of its family's scenarios; errors start with ``origin``."""
    names = available_scenarios(env.family)
    if env.scenario not in names:
        raise ConfigError(
            f"{origin}: env.scenario={env.scenario!r} is not a {env.family} scenario"
            f"{did_you_mean(env.scenario, names)} (available: {', '.join(names)})"
        )
