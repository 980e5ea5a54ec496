"""MAgent2 envs (``env.family: magent``): any ``magent2.environments`` scenario, with magent2 0.3.4's
two bugs worked around.

The ``magent`` family builds ``magent2.environments.<scenario>.parallel_env(max_cycles=env.max_steps,
**env.scenario_kwargs)`` (``battle_v4``, ``battlefield_v5``, ``adversarial_pursuit_v4``,
``gather_v5``, ``tiger_deer_v4``, ``combined_arms_v6``) through TorchRL's ``PettingZooWrapper`` with
``use_mask=True, done_on_any=False`` (agents die). A magent2 env named by import path in the
``pettingzoo`` family (``env.scenario: magent2.environments.tiger_deer_v4``) gets the same fixes
(:func:`magent_fixed`).
"""
from __future__ import annotations

import importlib
import pkgutil
import re
from typing import Any

__all__ = ["fix_magent_reset", "is_magent_env", "magent_fixed", "magent_module", "magent_scenarios"]


def magent_scenarios() -> list[str]:
    """The scenario modules of the installed magent2 (``battle_v4``, ``gather_v5``, ...)."""
    import magent2.environments as envs

    return sorted(m.name for m in pkgutil.iter_modules(envs.__path__) if re.fullmatch(r"\w+_v\d+", m.name))


def magent_module(scenario: str) -> Any:
    """``magent2.environments.<scenario>`` (a name :func:`magent_scenarios` lists: the config checked it)."""
    return importlib.import_module(f"magent2.environments.{scenario}")


def is_magent_env(env: Any) -> bool:
    """Whether ``env`` is a magent2 parallel env (told by its class, without importing magent2)."""
    return any(c.__name__ == "magent_parallel_env" and c.__module__.startswith("magent2.")
               for c in type(env).__mro__)


def magent_fixed(env: Any) -> Any:
    """``env`` with :func:`fix_magent_reset` applied when it is a magent2 env, else ``env`` as it is."""
    return fix_magent_reset(env) if is_magent_env(env) else env


def fix_magent_reset(env: Any) -> Any:
    """Work around two magent2 0.3.4 bugs in ``magent_parallel_env``.

    1. ``reset()`` counts each team before placing it on the map, so on the
       first step after a reset the joint action is cut into teams of size 0
       and the teams do not get their own actions. Re-count once the map
       exists.
    2. ``state()`` fails (``zip(*[])``) once a team has been wiped out, i.e.
       exactly when one team wins. Skip empty teams when drawing the state.
    """
    import numpy as np

    original_reset = env.reset

    def reset(*args, **kwargs):
        out = original_reset(*args, **kwargs)
        env.team_sizes = [env.env.get_num(handle) for handle in env.handles]
        return out

    def state():
        # magent2's own state(), minus the crash on an empty team.
        if env.extra_features:
            raise NotImplementedError("torchrl_mappo's MAgent2 state fix does not cover extra_features=True")
        state = np.copy(env.base_state)
        for handle in env._all_handles:
            pos = env.env.get_pos(handle)
            if len(pos) == 0:
                continue
            view, _ = env.env.get_observation(handle)
            pos_x, pos_y = zip(*pos)
            state[pos_x, pos_y, 1 + handle.value * 2] = 1
            state[pos_x, pos_y, 2 + handle.value * 2] = view[:, view.shape[1] // 2, view.shape[2] // 2, 2]
        return state

    env.reset = reset
    env.state = state
    return env
