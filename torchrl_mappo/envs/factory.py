"""``make_env``: a TorchRL multi-agent env with per-group episode returns.

Every env comes out of here as a TorchRL ``EnvBase`` with TorchRL's
multi-agent layout (``env.group_map``; per-agent data under
``(group, ...)``, the global state, when there is one, at the root
``"state"``), built by TorchRL's own wrappers:

- ``vmas``: ``VmasWrapper`` over ``vmas.make_env`` (vectorized, no global state; its
  step stacks each group at once, :mod:`.family_vmas`),
  its time limit TorchRL's ``StepCounter``: a timed-out episode is ``truncated``
  (GAE bootstraps its last value), only the scenario's own end is ``terminated``;
- ``pettingzoo``: ``PettingZooWrapper`` over ``mpe2.<scenario>.parallel_env()``
  (``return_state=True``); ``num_envs`` copies step in a ``SerialEnv``; any
  other PettingZoo env by import path, parallel or AEC (:mod:`.family_pettingzoo`);
- ``magent``: ``PettingZooWrapper`` over a ``magent2`` scenario (``battle_v4``,
  ``tiger_deer_v4``, ...) with ``use_mask=True, done_on_any=False`` (agents
  die; ``(group, "mask")`` marks the live ones), with magent2 0.3.4's reset
  and state bugs worked around (:mod:`.family_magent`);
- ``torchrl``: your own ``EnvBase`` from ``env.make`` (:mod:`.family_torchrl`),
  or one handed to :func:`make_env` ready;
- ``gymnasium_ma``: EPyMARL-style gymnasium envs (:mod:`.family_gymnasium_ma`).

Every env is then checked (:func:`torchrl_mappo.envs.check.inspect_env`:
one line per problem). On top: a team reward at the root copied to the
agents and nested or integer observations made float vectors where the
check found them, ``RewardSum`` per group writing ``(group, "episode_reward")`` (the
env's own reward, which the trainer reports), then ``RewardSharing`` where
configured (the reward the loss trains on), then ``HideAfter`` for a memory
task (``env.memory_steps``) and ``PrivateFeatures`` for a hidden-information
task (``env.private_features``).
"""
from __future__ import annotations

import re
import warnings
from typing import Any, Callable

from torchrl.envs import EnvBase, RewardSum, SerialEnv, StepCounter, TransformedEnv
from torchrl.envs.utils import MarlGroupMapType

from torchrl_mappo import keys
from torchrl_mappo.config import EnvConfig
from torchrl_mappo.envs.family_magent import fix_magent_reset, magent_module
from torchrl_mappo.envs.memory import HideAfter
from torchrl_mappo.envs.transforms import RewardSharing
from torchrl_mappo.errors import ConfigError
from torchrl_mappo.groups import check_env_groups

_PRESETS = {
    "per_agent": MarlGroupMapType.ONE_GROUP_PER_AGENT,
    "all_in_one": MarlGroupMapType.ALL_IN_ONE_GROUP,
}


def _resolve_group_map(group_map: Any, agents: list[str], obs_shapes: dict[str, tuple]) -> Any:
    """``env.group_map`` against the env's agents; return what the wrapper takes.

    What needs no env (presets, team names, one team per agent) was checked
    with the config (:meth:`EnvConfig.check`); here: agents the env has, none
    left out, equal observation shapes within a group.
    """
    if group_map is None:
        return None
    if isinstance(group_map, str):
        if group_map == "all_in_one" and len(set(obs_shapes.values())) > 1:
            shapes = ", ".join(f"{a}: {s}" for a, s in obs_shapes.items())
            raise ConfigError(
                "env.group_map='all_in_one': the agents' observations differ in shape "
                f"({shapes}), so they cannot be stacked in one group; use the env's default "
                "(null), 'per_agent' or teams of agents with equal shapes"
            )
        return _PRESETS[group_map]
    unknown = [a for team in group_map.values() for a in team if a not in agents]
    if unknown:
        raise ConfigError(
            f"env.group_map: unknown agent(s) {unknown}; this env's agents are {agents}"
        )
    listed = {a for team in group_map.values() for a in team}
    missing = [a for a in agents if a not in listed]
    if missing:
        raise ConfigError(
            f"env.group_map: agent(s) {missing} are in no team; every agent must be in exactly one"
        )
    for team, members in group_map.items():
        shapes = {obs_shapes[a] for a in members}
        if len(shapes) > 1:
            raise ConfigError(
                f"env.group_map.{team}: its agents' observations differ in shape {sorted(shapes)}; "
                "a team's agents must have equal observation shapes"
            )
    return {team: list(members) for team, members in group_map.items()}


# --------------------------------------------------------------------------- #
# Families
# --------------------------------------------------------------------------- #
def _make_vmas(cfg: EnvConfig, seed: int | None, device: str) -> EnvBase:
    import vmas

    from torchrl_mappo.envs.family_vmas import VmasStepWrapper

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            sim = vmas.make_env(
                scenario=cfg.scenario,
                num_envs=cfg.num_envs,
                device=device,
                continuous_actions=cfg.continuous_actions,
                # The time limit is TorchRL's StepCounter's (below): VMAS's own would mark
                # a timed-out episode "terminated" and GAE would not bootstrap its last value.
                max_steps=None,
                seed=seed,
                wrapper=None,
                **cfg.scenario_kwargs,
            )
        except TypeError as err:
            raise ConfigError(
                f"env.scenario_kwargs: VMAS scenario {cfg.scenario!r} rejected them: {err}"
            ) from None
    for w in caught:
        # VMAS only warns about kwargs its scenario ignores: a typo would
        # silently train on the defaults, so it is an error here.
        match = re.search(r"Scenario kwargs: (.*) passed but not used", str(w.message))
        if match:
            raise ConfigError(
                f"env.scenario_kwargs: {match.group(1)} not used by VMAS scenario "
                f"{cfg.scenario!r}; remove or rename them"
            )
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    agents = [a.name for a in sim.agents]
    obs_shapes = {a.name: tuple(sim.observation_space[i].shape) for i, a in enumerate(sim.agents)}
    group_map = _resolve_group_map(cfg.group_map, agents, obs_shapes)
    env = VmasStepWrapper(sim, group_map=group_map, device=device)
    return TransformedEnv(env, StepCounter(max_steps=cfg.max_steps))


def _pettingzoo_batch(make_one: Callable[[], EnvBase], num_envs: int, seed: int | None) -> EnvBase:
    if num_envs == 1:
        env = make_one()
    else:
        env = SerialEnv(num_envs, make_one)
        # SerialEnv answers attribute reads with one value per sub-env (a
        # list); every copy has the same groups, so expose one group_map.
        first = make_one()
        env.group_map = dict(first.group_map)
        first.close()
    if seed is not None:
        env.set_seed(seed)
    return env


def _parallel_env_checked(factory: Callable, cfg: EnvConfig, **fixed: Any):
    try:
        return factory(**fixed, **cfg.scenario_kwargs)
    except TypeError as err:
        raise ConfigError(
            f"env.scenario_kwargs: {cfg.family} scenario {cfg.scenario!r} rejected them: {err}"
        ) from None


def _make_pettingzoo(cfg: EnvConfig, seed: int | None, device: str) -> EnvBase:
    import mpe2.all_modules

    from torchrl_mappo.envs.family_pettingzoo import make_pettingzoo_module_env, pettingzoo_wrapper

    if "." in cfg.scenario:  # any PettingZoo env by import path
        return make_pettingzoo_module_env(cfg, seed, device, _resolve_group_map, _pettingzoo_batch)

    module = mpe2.all_modules.mpe_environments[f"mpe/{cfg.scenario}"]
    probe = _parallel_env_checked(
        module.parallel_env, cfg, max_cycles=cfg.max_steps, continuous_actions=cfg.continuous_actions
    )
    agents = list(probe.possible_agents)
    obs_shapes = {a: tuple(probe.observation_space(a).shape) for a in agents}
    group_map = _resolve_group_map(cfg.group_map, agents, obs_shapes)
    probe.close()

    def make_one() -> EnvBase:
        return pettingzoo_wrapper(
            module.parallel_env(
                max_cycles=cfg.max_steps, continuous_actions=cfg.continuous_actions, **cfg.scenario_kwargs
            ),
            return_state=cfg.return_state,
            group_map=group_map,
            categorical_actions=True,
            device=device,
        )

    return _pettingzoo_batch(make_one, cfg.num_envs, seed)


def _make_magent(cfg: EnvConfig, seed: int | None, device: str) -> EnvBase:
    from torchrl_mappo.envs.family_pettingzoo import pettingzoo_wrapper

    module = magent_module(cfg.scenario)
    probe = _parallel_env_checked(module.parallel_env, cfg, max_cycles=cfg.max_steps)
    agents = list(probe.possible_agents)
    obs_shapes = {a: tuple(probe.observation_space(a).shape) for a in agents}
    group_map = _resolve_group_map(cfg.group_map, agents, obs_shapes)

    def make_one() -> EnvBase:
        raw = fix_magent_reset(module.parallel_env(max_cycles=cfg.max_steps, **cfg.scenario_kwargs))
        return pettingzoo_wrapper(
            raw,
            return_state=cfg.return_state,
            group_map=group_map,
            use_mask=True,
            done_on_any=False,
            categorical_actions=True,
            device=device,
        )

    return _pettingzoo_batch(make_one, cfg.num_envs, seed)


def _make_torchrl(cfg: EnvConfig, seed: int | None, device: str) -> EnvBase:
    from torchrl_mappo.envs.family_torchrl import make_torchrl_env

    return make_torchrl_env(cfg, seed, device)


def _make_gymnasium_ma(cfg: EnvConfig, seed: int | None, device: str) -> EnvBase:
    from torchrl_mappo.envs.family_gymnasium_ma import make_gymnasium_ma_env

    return make_gymnasium_ma_env(cfg, seed, device, _pettingzoo_batch)


_FAMILIES = {"vmas": _make_vmas, "pettingzoo": _make_pettingzoo, "magent": _make_magent,
             "torchrl": _make_torchrl, "gymnasium_ma": _make_gymnasium_ma}


def env_error(cfg_env: EnvConfig, what: str, err: Exception) -> ConfigError:
    """One line for an env that fails in its simulator's own code: the settings, then the cause."""
    kwargs = f" with env.scenario_kwargs={cfg_env.scenario_kwargs}" if cfg_env.scenario_kwargs else ""
    text = err.args[0] if isinstance(err, KeyError) and err.args and isinstance(err.args[0], str) else str(err)
    first = (text.strip().splitlines() or [""])[0][:200]  # (a KeyError's str() is its message's repr)
    if cfg_env.family == "torchrl":
        hint = "fix the env's constructor"
        if "must match the env batch size" in first:
            hint = ("an unbatched spec: give every spec the env's batch size as its leading dims "
                    "(shape=(*batch_size, ...))")
        elif "mismatch" in first and "Composite" in first:
            hint = "a spec's leading dims must be those of the Composite holding it ([*batch, n_agents, ...] in a group)"
        return ConfigError(f"env.make={cfg_env.make!r} {what} ({type(err).__name__}: {first}); {hint}")
    return ConfigError(
        f"env: {cfg_env.family} scenario {cfg_env.scenario!r}{kwargs} {what} "
        f"({type(err).__name__}{': ' + first if first else ''}); check the scenario and its kwargs"
    )


def make_base_env(cfg_env: EnvConfig, *, seed: int | None = None, device: str = "cpu") -> EnvBase:
    """The env of ``cfg_env``'s family, as its wrapper builds it (nothing checked or added yet)."""
    try:
        factory = _FAMILIES[cfg_env.family]
    except KeyError:
        raise ConfigError(
            f"env.family={cfg_env.family!r} is not supported; use one of {', '.join(_FAMILIES)}"
        ) from None
    try:
        return factory(cfg_env, seed, device)
    except ConfigError:
        raise
    except Exception as err:  # the simulator's own error, whatever its kind: one line naming the settings
        raise env_error(cfg_env, "could not be built", err) from None


def finish_env(base: EnvBase, cfg_env: EnvConfig, report) -> TransformedEnv:
    """``base`` with what the check found it needs (``report``), episode returns and reward sharing."""
    from torchrl_mappo.envs.transforms import BroadcastReward, ObservationToVector

    check_env_groups(base.group_map)
    groups = list(base.group_map)
    cfg_env.check_groups(groups)
    # A family's own transforms (VMAS: the time limit) stay first.
    env = base if isinstance(base, TransformedEnv) else TransformedEnv(base)
    if report.vectorize:
        env.append_transform(ObservationToVector(report.vectorize))
    if report.broadcast_reward:
        env.append_transform(BroadcastReward(report.broadcast_reward))
    env.append_transform(
        RewardSum(in_keys=[keys.reward(g) for g in groups], out_keys=[keys.episode_reward(g) for g in groups])
    )
    if cfg_env.reward_sharing:
        env.append_transform(RewardSharing(cfg_env.reward_shares()))
    if cfg_env.memory_steps is not None:
        env.append_transform(_memory_task(cfg_env, env))
    if cfg_env.private_features:
        from torchrl_mappo.envs.transforms import PrivateFeatures

        _check_features(env, "private_features", cfg_env.private_features)
        env.append_transform(PrivateFeatures(cfg_env.private_features, cfg_env.private_to, groups))
    return env


def make_env(cfg_env: EnvConfig | EnvBase, *, seed: int | None = None, device: str = "cpu",
             env: EnvBase | None = None) -> EnvBase:
    """Build the env named by ``cfg_env`` through TorchRL's own wrapper, or take a ready one.

    Args:
        cfg_env: family, scenario, number of envs, episode length, action
            type, scenario kwargs, grouping and reward sharing; or a ready
            TorchRL ``EnvBase`` (then the default settings apply to it).
        seed: seeds the simulator (``None``: unseeded).
        device: where the simulator runs.
        env: a ready ``EnvBase`` (batched or not) with the multi-agent
            layout, used instead of building one from ``cfg_env`` (whose
            grouping and reward sharing still apply).

    Returns:
        A ``TransformedEnv`` over the wrapper, batch size ``[num_envs]``
        (``[]`` for one PettingZoo/MAgent2 env). For each group of
        ``env.group_map`` it writes ``(group, "episode_reward")``: the sum of
        the env's ``(group, "reward")`` since the last reset. Groups named
        in ``cfg_env.reward_sharing`` then get their reward shared.

    Raises:
        ConfigError: unknown family, scenario kwargs the scenario rejects,
            a ``group_map`` naming unknown agents, leaving agents out or
            stacking agents of different shapes, ``reward_sharing`` naming
            a group the env does not have, and the first problem the env
            checker finds (:func:`torchrl_mappo.envs.check.inspect_env`).
    """
    from torchrl_mappo.envs.check import inspect_env

    if isinstance(cfg_env, EnvBase):
        cfg_env, env = EnvConfig(), cfg_env
    if env is not None:
        base, what = env, "the env given"
    else:
        base = make_base_env(cfg_env, seed=seed, device=device)
        what = f"env {cfg_env.family}/{cfg_env.make if cfg_env.family == 'torchrl' else cfg_env.scenario}"
    report = inspect_env(base, cfg_env)
    report.raise_first(what)
    return finish_env(base, cfg_env, report)


def _check_features(env: EnvBase, name: str, features: list[int]) -> None:
    """``env.<name>`` must index every group's observation features."""
    for g in env.group_map:
        width = env.observation_spec_unbatched[keys.observation(g)].shape[-1]
        bad = [i for i in features if not -width <= i < width]
        if bad:
            raise ConfigError(
                f"env.{name}={features}: group {g!r} observes {width} features, so "
                f"{bad} do not exist; use indices in [0, {width - 1}]"
            )


def _memory_task(cfg_env: EnvConfig, env: EnvBase) -> HideAfter:
    """``HideAfter`` for ``env.memory_steps`` / ``memory_features``, checked against every group's observation."""
    _check_features(env, "memory_features", cfg_env.memory_features)
    return HideAfter(cfg_env.memory_steps, cfg_env.memory_features, list(env.group_map))
