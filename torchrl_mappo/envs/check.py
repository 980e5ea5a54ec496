"""The env checker: does an env give MAPPO what it needs? (``torchrl-mappo check-env``, and every ``make_env``)

Two passes:

- :func:`inspect_env`, on the env as its family built it (no stepping):
  batched specs, groups, ``(group, "observation")`` / ``(group, "action")``,
  the action spec's kind, reward and done shapes, masks, the critic's
  input. It also says what :func:`~torchrl_mappo.make_env` will add: a team
  reward at the root copied to the agents, observations made float vectors.
  :func:`~torchrl_mappo.make_env` raises its first problem.
- :func:`run_checks`, on the finished env (what training steps): TorchRL's
  ``check_env_specs`` and a short random rollout whose numbers must all be
  finite. :func:`~torchrl_mappo.build.build` runs it before every training.

Every problem is one line that says what to change.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch
from torchrl.data import Bounded, Categorical, Composite, OneHot
from torchrl.envs import EnvBase

from torchrl_mappo import keys
from torchrl_mappo.config import Config, ConfigError, EnvConfig, ModelConfig

__all__ = ["EnvReport", "alike_at_reset", "check_env", "inspect_env", "run_checks"]


@dataclass
class EnvReport:
    """What the checker found: per-group lines, notes (what is adapted), problems (what to change)."""

    found: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    broadcast_reward: dict[str, int] = field(default_factory=dict)
    """``{group: n_agents}`` whose reward comes from the root (``BroadcastReward``)."""
    vectorize: list[str] = field(default_factory=list)
    """Groups whose observation is nested or not float (``ObservationToVector``)."""

    def raise_first(self, what: str) -> None:
        if self.problems:
            more = f" (and {len(self.problems) - 1} more problem(s))" if len(self.problems) > 1 else ""
            raise ConfigError(f"{what}: {self.problems[0]}{more}; 'torchrl-mappo check-env CONFIG' lists them all")


def _shape(spec) -> list[int]:
    return list(spec.shape)


def _batched(env: EnvBase, report: EnvReport) -> bool:
    batch = tuple(env.batch_size)
    for name, spec in (("observation_spec", env.observation_spec), ("action_spec", env.full_action_spec),
                       ("reward_spec", env.full_reward_spec), ("done_spec", env.full_done_spec)):
        for key in spec.keys(True, True):
            leaf = spec[key]
            if tuple(leaf.shape[: len(batch)]) != batch:
                report.problems.append(
                    f"{name} {key!r} has shape {_shape(leaf)} but the env's batch_size is {list(batch)}: an unbatched "
                    f"spec; give every spec the leading batch dims (shape=(*batch_size, ...)), e.g. "
                    f"{[*batch, *leaf.shape]}"
                )
                return False
    return True


def _action_kind(spec) -> tuple[str | None, str]:
    """(kind, description) of a group's action spec; kind None: MAPPO cannot act on it."""
    if isinstance(spec, (Categorical, OneHot)):
        n = spec.space.n
        return "discrete", f"discrete, {n} actions -> {'one-hot ' if isinstance(spec, OneHot) else ''}Categorical"
    if isinstance(spec, Bounded) and spec.dtype.is_floating_point:
        low, high = spec.space.low, spec.space.high
        if torch.isfinite(low).all() and torch.isfinite(high).all():
            return "continuous", (f"continuous {_shape(spec)[-1:]} in [{float(low.min()):g}, {float(high.max()):g}] "
                                  "-> TanhNormal")
    if spec.dtype.is_floating_point:
        return None, "continuous actions without finite bounds: TanhNormal needs them; give the action spec " \
                     "finite low/high (torchrl.data.Bounded)"
    return None, f"a {type(spec).__name__} action spec; torchrl_mappo acts with Categorical (Categorical/OneHot " \
                 "specs) or TanhNormal (Bounded float specs)"


def inspect_env(env: EnvBase, cfg_env: EnvConfig, cfg_model: ModelConfig | None = None) -> EnvReport:
    """Check ``env`` (as its family built it) against what MAPPO needs, without stepping it."""
    from torchrl_mappo.envs.family_torchrl import ensure_group_map

    report = EnvReport()
    bd = env.batch_dims
    report.found.append(f"env: {type(env).__name__}, batch_size {list(env.batch_size)}")
    if not _batched(env, report):
        return report
    group_map = ensure_group_map(env)
    if not group_map or any(not agents for agents in group_map.values()):
        empty = [g for g, a in group_map.items() if not a]
        report.problems.append(
            f"no agents{f' in group(s) {empty}' if empty else ''}: torchrl_mappo needs each group's observations at "
            "(group, 'observation') with shape [*batch, n_agents, ...]; check env.scenario_kwargs (e.g. "
            "n_agents >= 1), env.group_map, or the env's specs"
        )
        return report
    obs_spec, act_spec = env.observation_spec, env.full_action_spec
    rew_spec, done_spec = env.full_reward_spec, env.full_done_spec
    root_reward = keys.REWARD in rew_spec.keys() and _shape(rew_spec[keys.REWARD])[bd:] == [1]
    root_done = keys.DONE in done_spec.keys() and _shape(done_spec[keys.DONE])[bd:] == [1]
    for group, agents in group_map.items():
        n = len(agents)
        where = f"group {group!r}"
        obs_key = keys.observation(group)
        if obs_key not in obs_spec.keys(True):
            have = list(obs_spec[group].keys()) if group in obs_spec.keys() else []
            report.problems.append(
                f"{where}: no {obs_key!r} in the observation spec (found {have or 'no entry for the group'}); put the "
                f"agents' observations at {obs_key!r}, e.g. with TorchRL's RenameTransform"
            )
            continue
        obs = obs_spec[obs_key]
        if obs.shape[bd:bd + 1] != torch.Size([n]):
            report.problems.append(
                f"{where}: {obs_key!r} has shape {_shape(obs)}; it needs the agent dim after the batch dims: "
                f"[{', '.join(map(str, env.batch_size))}{', ' if bd else ''}{n}, ...]"
            )
            continue
        if isinstance(obs, Composite) or not obs.dtype.is_floating_point:
            report.vectorize.append(group)
            report.notes.append(f"{where}: observation {'is nested' if isinstance(obs, Composite) else f'is {obs.dtype}'}"
                                "; made a float vector per agent (ObservationToVector)")
        act_key = keys.action(group)
        if act_key not in act_spec.keys(True):
            have = list(act_spec[group].keys()) if group in act_spec.keys() else []
            report.problems.append(
                f"{where}: no {act_key!r} in the action spec (found {have or 'no entry for the group'}); the env must "
                f"read each agent's action from {act_key!r}"
            )
            continue
        kind, act_text = _action_kind(act_spec[act_key])
        if kind is None:
            report.problems.append(f"{where}: {act_text}")
            continue
        rew_key = keys.reward(group)
        if rew_key in rew_spec.keys(True):
            got = _shape(rew_spec[rew_key])[bd:]
            if got != [n, 1]:
                report.problems.append(
                    f"{where}: {rew_key!r} has shape {_shape(rew_spec[rew_key])}; MAPPO needs one reward per agent, "
                    f"[*batch, n_agents, 1] = {[*env.batch_size, n, 1]} (a team reward: give it at the root "
                    "'reward', [*batch, 1], and it is copied to the agents)"
                )
                continue
            rew_text = "per agent"
        elif root_reward:
            report.broadcast_reward[group] = n
            report.notes.append(f"{where}: reward only at the root: the team reward is copied to each agent "
                                "(BroadcastReward)")
            rew_text = "team reward at the root, copied to the agents"
        else:
            report.problems.append(
                f"{where}: no reward at {rew_key!r} ([*batch, n_agents, 1]) nor a team reward at the root 'reward' "
                "([*batch, 1]); give one of them"
            )
            continue
        done_key = keys.done(group)
        if done_key in done_spec.keys(True) and _shape(done_spec[done_key])[bd:] == [n, 1]:
            done_text = "per agent"
        elif root_done:
            done_text = "at the root (MultiAgentGAE broadcasts it to the agents)"
        else:
            report.problems.append(
                f"{where}: no done at {done_key!r} ([*batch, n_agents, 1]) nor at the root 'done' ([*batch, 1]); "
                "give the env a done spec (done, terminated, truncated)"
            )
            continue
        extras = []
        if keys.mask(group) in obs_spec.keys(True):
            extras.append("live/acting agents masked in the loss")
        if keys.action_mask(group) in obs_spec.keys(True):
            extras.append("action mask honoured (masked Categorical)")
        shape = _shape(obs)[bd + 1:] if not isinstance(obs, Composite) else "nested"
        report.found.append(
            f"{where}: {n} agent(s) {agents[:4]}{' ...' if n > 4 else ''}; observation {shape}; action {act_text}; "
            f"reward {rew_text}; done {done_text}" + "".join(f"; {e}" for e in extras)
        )
    if cfg_model is not None:
        has_state = keys.STATE in obs_spec.keys()
        mode = cfg_model.critic_input if cfg_model.centralized else "local"
        if mode == "state" and not has_state:
            report.problems.append(
                "model.critic_input='state' but this env has no global state (root 'state'); use 'concat_obs' or "
                "'all_obs' (or give the env a root 'state'; PettingZoo: env.return_state: true where the env has one)"
            )
        elif mode == "auto":
            report.found.append(f"critic input: {'the global state' if has_state else 'concat_obs'} (model.critic_input: "
                                f"auto; the env has {'a' if has_state else 'no'} root 'state')")
        else:
            report.found.append(f"critic input: {mode}")
    if not report.problems:
        done_where = "per agent" if any(isinstance(k, tuple) for k in env.done_keys) else "at the root"
        if done_where == "at the root" and env.batch_dims and cfg_env.family == "torchrl":
            report.notes.append("done only at the root: MultiAgentGAE broadcasts it to every agent")
    return report


def _finite(td) -> list:
    bad = []
    for key, value in td.items(True, True):
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not torch.isfinite(value).all():
            bad.append(key)
    return bad


def run_checks(env: EnvBase, steps: int = 8, seed: int | None = 0) -> list[str]:
    """Problems of the finished env when stepped: TorchRL's ``check_env_specs``, then a random
    rollout of ``steps`` steps whose numbers must be finite. The RNG is left as it was."""
    from torchrl.envs.utils import check_env_specs

    from torchrl._utils import logger

    problems = []

    def quiet(record) -> bool:  # its "check_env_specs succeeded!" on every run
        return record.levelno >= logging.WARNING

    # A filter, not setLevel: toggling the level here left wandb's offline record empty (test_loggers.py).
    logger.addFilter(quiet)
    with torch.random.fork_rng():
        try:
            check_env_specs(env, seed=seed)
        except Exception as err:  # whatever the env raises: the checker reports, never crashes
            first = (str(err).strip().splitlines() or [""])[0][:300]
            problems.append(
                f"TorchRL's check_env_specs failed ({type(err).__name__}: {first}); the data the env returns must "
                "match its specs (keys, shapes, dtypes)"
            )
            return problems
        finally:
            logger.removeFilter(quiet)
        try:
            rollout = env.rollout(steps, break_when_any_done=False)
        except Exception as err:
            first = (str(err).strip().splitlines() or [""])[0][:300]
            return [f"a random rollout of {steps} steps failed ({type(err).__name__}: {first})"]
    bad = _finite(rollout)
    if bad:
        problems.append(
            f"non-finite numbers (NaN or inf) at {bad[:4]} in a random rollout of {steps} steps; fix the env, "
            "or clean them in a transform (e.g. torch.nan_to_num) before training"
        )
    return problems


def alike_at_reset(env: EnvBase, groups: list[str]) -> set[str]:
    """The ``groups`` in which, on a reset of ``env``, two agents of one env observe exactly the same.

    A network shared by such agents, played deterministically, moves them alike
    from then on (VMAS dispersion's agents all start at the origin): what
    ``model.actor_agent_id: auto`` adds an agent id for. The env is reset
    once; the torch RNG is left as it was.
    """
    with torch.random.fork_rng():
        td = env.reset()
    alike, b = set(), len(env.batch_size)
    for group in groups:
        obs = td.get(keys.observation(group))
        n_agents = obs.shape[b]
        per_env = obs.reshape(obs.shape[:b].numel(), n_agents, -1)  # [envs, agents, features]
        if any(torch.unique(agents, dim=0).shape[0] < n_agents for agents in per_env):
            alike.add(group)
    return alike


def check_env(cfg: Config, env: EnvBase | None = None) -> tuple[EnvReport, EnvBase | None]:
    """The whole check of the env ``cfg`` names (or ``env``, ready): inspect, then (if that passed)
    finish it as :func:`~torchrl_mappo.make_env` does and step it. Returns the report and the
    finished env (``None`` when inspection found problems)."""
    from torchrl_mappo.envs.factory import finish_env, make_base_env

    base = env if env is not None else make_base_env(cfg.env, seed=cfg.train.seed, device=cfg.train.device)
    report = inspect_env(base, cfg.env, cfg.model)
    if report.problems:
        return report, None
    finished = finish_env(base, cfg.env, report)
    report.problems.extend(run_checks(finished))
    return report, finished
