"""The rules about groups, each written once: names, ``env.group_map`` (what needs no env),
settings keyed by group, reward sharing. Torch-free: config loading uses them.

What needs the env itself (its agents, their shapes, its groups) is checked
where the env is built (:func:`torchrl_mappo.make_env`, ``Trainer.from_config``)
by calling the functions here with the env's answers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Literal

from torchrl_mappo.errors import ConfigError, did_you_mean

__all__ = [
    "GROUP_MAP_PRESETS", "REWARD_SHARING_MODES", "RESERVED_GROUP_NAMES", "RewardShare", "check_group_map",
    "check_env_groups", "check_group_name", "check_groups_exist",
]

GROUP_MAP_PRESETS = ("per_agent", "all_in_one")
REWARD_SHARING_MODES = ("individual", "shared", "mixed")

# TorchRL's own keys at the root of a tensordict: a group may not be named like one.
RESERVED_GROUP_NAMES = frozenset({
    "next", "state", "done", "terminated", "truncated", "reward", "action", "observation", "info",
    "collector", "is_init", "episode_reward", "_reset", "mask",
})


def check_group_name(group: str, where: str) -> None:
    """A group name becomes a tensordict key and a metrics column prefix: a plain word."""
    if not group or group in RESERVED_GROUP_NAMES or any(c in group for c in "/.,\\ \0"):
        raise ConfigError(
            f"{where}: group name {group!r} cannot be used (it must be a plain word, without '/', '.', ',' or "
            f"spaces, and not one of TorchRL's keys: {', '.join(sorted(RESERVED_GROUP_NAMES))}); rename the team"
        )


def check_env_groups(group_map: dict[str, list[str]]) -> None:
    """The groups an env built for itself (its wrapper's default grouping) must be usable names too;
    the error gives the ``env.group_map`` that renames them (e.g. mpe2's collect_treasure: its
    ``collector_*`` agents make a group ``collector``, TorchRL's collector's own root key)."""
    bad = [g for g in group_map if g in RESERVED_GROUP_NAMES]
    if not bad:
        return
    names = {g: _free_name(g, group_map) if g in bad else g for g in group_map}
    teams = ", ".join(f"{names[g]}: [{', '.join(agents)}]" for g, agents in group_map.items())
    raise ConfigError(
        f"env: the env groups its agents as {', '.join(repr(g) for g in bad)}, the name of a TorchRL key, "
        f"which a group may not have; name the teams yourself, e.g. env.group_map={{{teams}}}"
    )


def _free_name(group: str, taken: Any) -> str:
    for name in (f"{group}s", f"{group}_team", f"{group}_group"):
        if name not in taken and name not in RESERVED_GROUP_NAMES:
            return name
    return f"{group}_{len(taken)}"


def check_group_map(group_map: Any, where: str) -> None:
    """``env.group_map`` as far as it can be told without the env: a preset, or teams with plain
    names, each a non-empty list of agent names, no agent in two teams. ``where``: ``"<origin>: env"``."""
    if group_map is None:
        return
    if isinstance(group_map, str):
        if group_map not in GROUP_MAP_PRESETS:
            raise ConfigError(
                f"{where}.group_map={group_map!r}: use one of {', '.join(GROUP_MAP_PRESETS)}, "
                "null (the env's default) or a mapping {team: [agent names]}"
            )
        return
    if not group_map:
        raise ConfigError(f"{where}.group_map is empty; map at least one team to its agents")
    seen: dict[str, str] = {}
    for team, agents in group_map.items():
        check_group_name(str(team), f"{where}.group_map.{team}")
        if not isinstance(agents, list) or not agents or not all(isinstance(a, str) for a in agents):
            raise ConfigError(
                f"{where}.group_map.{team}: give a non-empty list of agent names, e.g. [agent_0, agent_1]"
            )
        for agent in agents:
            if agent in seen:
                raise ConfigError(
                    f"{where}.group_map: agent {agent!r} is in two teams ({seen[agent]!r} and {team!r}); "
                    "put each agent in exactly one team"
                )
            seen[agent] = team


def check_groups_exist(section: str, names: Iterable[str], groups: list[str]) -> None:
    """Settings keyed by group (``<section>.<group>``) must name groups the env has."""
    for g in names:
        if g not in groups:
            raise ConfigError(
                f"{section}.{g}: the env has no group {g!r}{did_you_mean(g, groups)} (its groups: {', '.join(groups)})"
            )


@dataclass(frozen=True)
class RewardShare:
    """One group's ``env.reward_sharing`` entry, parsed: each agent of the group trains on
    ``weight * team_mean + (1 - weight) * own_reward``."""

    mode: Literal["individual", "shared", "mixed"]
    """As written in the config; it fixes ``weight`` unless it is ``mixed``."""
    weight: float
    """0 for ``individual``, 1 for ``shared``, the given ``w`` in [0, 1] for ``mixed``."""

    @classmethod
    def parse(cls, spec: Any, where: str) -> RewardShare:
        """``spec``: a mode, ``{mode: mixed, weight: w}`` or ``(mode, weight)``; ``where`` prefixes errors."""
        if isinstance(spec, RewardShare):
            return spec
        if isinstance(spec, tuple) and len(spec) == 2:
            spec = {"mode": spec[0], "weight": spec[1]}
        if isinstance(spec, str):
            mode, weight = spec, None
        elif isinstance(spec, dict) and set(spec) <= {"mode", "weight"} and "mode" in spec:
            mode, weight = spec["mode"], spec.get("weight")
        else:
            raise ConfigError(
                f"{where}: give a mode ({', '.join(REWARD_SHARING_MODES)}) or {{mode: mixed, weight: 0.5}}"
            )
        if mode not in REWARD_SHARING_MODES:
            raise ConfigError(f"{where}: mode {mode!r} is not one of {', '.join(REWARD_SHARING_MODES)}")
        if mode != "mixed":
            if weight is not None:
                raise ConfigError(f"{where}: a weight only applies to mode 'mixed'")
            return cls(mode, 1.0 if mode == "shared" else 0.0)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight <= 1:
            raise ConfigError(f"{where}: mixed needs a weight in [0, 1], e.g. {{mode: mixed, weight: 0.5}}")
        return cls(mode, float(weight))
