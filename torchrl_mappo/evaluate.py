"""Evaluate trained groups, alone or against an opponent (random or a frozen checkpoint).

``evaluate`` plays whole episodes with a TorchRL policy and reports, per
group, the mean and std of the episode return (mean over the group's
agents), and, where agents can die (MAgent2 battle), each group's win rate:
a team wins an episode when it ends with more survivors than every other
team, ties broken by the higher team return. In a turn-based (AEC) game
(tic-tac-toe) the mask marks whose turn it is, not who lives: a group wins
with a higher return than every other, equal returns are a draw.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictSequential
from torchrl.envs import EnvBase, ExplorationType, set_exploration_type

from torchrl_mappo import keys
from torchrl_mappo.config import Config, ConfigError, config_from_dict
from torchrl_mappo.config_io import apply_overrides, config_to_dict
from torchrl_mappo.curriculum import stage_config
from torchrl_mappo.metrics import episode_returns, episode_win_rates, survivors, win_rates  # noqa: F401 (win_rates: importable here too)

EVAL_SEED_OFFSET = 1_000_003
"""``train.eval_every``'s env is seeded ``train.seed + EVAL_SEED_OFFSET``: never the training env's seed."""


def evaluate(
    env: EnvBase,
    policy: TensorDictSequential,
    groups: list[str],
    *,
    episodes: int = 10,
    deterministic: bool = False,
    max_steps: int = 100_000,
    on_step: Callable[[TensorDictBase], None] | None = None,
) -> dict[str, Any]:
    """Play ``episodes`` whole episodes; per-group returns and win rates.

    Episodes are counted in the order they finish; when several envs finish
    at the same step, only as many as are still needed count.

    Returns ``{"episodes": n, "groups": {g: {"return_mean", "return_std",
    "win_rate" (battles and turn-based games), "survivors_mean" (battles only)}}}``.
    ``on_step`` is called with each step's tensordict (e.g. to draw a frame).
    """
    from torchrl_mappo.envs.family_pettingzoo import turn_based

    turns = turn_based(env)
    returns: dict[str, list[torch.Tensor]] = {g: [] for g in groups}
    alive: dict[str, list[torch.Tensor]] = {g: [] for g in groups}
    done_count, steps = 0, 0
    exploration = ExplorationType.DETERMINISTIC if deterministic else ExplorationType.RANDOM
    with torch.no_grad(), set_exploration_type(exploration):
        td = env.reset()
        # One step at a time, so the episode count is exact.
        while done_count < episodes and steps < max_steps:
            td, td_next = env.step_and_maybe_reset(policy(td))
            steps += 1
            if on_step is not None:
                on_step(td)
            done = td.get((keys.NEXT, keys.DONE))
            if done.any():
                step = td if td.batch_dims else td.unsqueeze(0)
                end = survivors(step, groups, turn_based=turns)
                wanted = episodes - done_count
                for g in groups:
                    returns[g].append(episode_returns(step, g).mean(-1)[:wanted])
                    if g in end:
                        alive[g].append(end[g].float()[:wanted])
                done_count += min(int(done.sum()), wanted)
            td = td_next
    out: dict[str, Any] = {"episodes": done_count, "groups": {}}
    stacked = {g: torch.cat(r) if r else torch.empty(0) for g, r in returns.items()}
    for g in groups:
        r = stacked[g]
        entry = {
            "return_mean": float(r.mean()) if r.numel() else float("nan"),
            "return_std": float(r.std(correction=0)) if r.numel() else float("nan"),
        }
        if alive[g]:
            entry["survivors_mean"] = float(torch.cat(alive[g]).mean())
        out["groups"][g] = entry
    if turns or all(alive[g] for g in groups):
        ended = {g: torch.cat(alive[g]) for g in groups if alive[g]}
        for g, rate in episode_win_rates(ended, stacked, turn_based=turns).items():
            out["groups"][g]["win_rate"] = rate
    return out


class PeriodicEvaluation:
    """The training policy, deterministic, on its own env every ``every`` frames (``train.eval_every``).

    Each evaluation re-seeds its env with ``seed``, so every evaluation of a
    run plays the same ``episodes`` starting states and their returns compare
    like for like (exactly the episodes ``torchrl-mappo eval RUN
    --deterministic --seed <train.seed + EVAL_SEED_OFFSET> --episodes
    <eval_episodes>`` plays); every RNG training draws from (torch, numpy,
    random, VMAS's own) is saved before and restored after, so a run with evaluation trains exactly as one
    without, and resumes exactly. Returns metric entries
    ``eval/<group>/episode_return`` (mean over episodes of the group's mean
    agent return), ``eval/<group>/episode_return_std`` and, for battles,
    ``eval/<group>/win_rate``.
    """

    def __init__(self, env: EnvBase, policy: TensorDictSequential, groups: list[str], *,
                 every: int, episodes: int, seed: int) -> None:
        self.env, self.policy, self.groups = env, policy, list(groups)
        self.every, self.episodes, self.seed = every, episodes, seed

    def due(self, frames_before: int, frames_after: int, last: bool) -> bool:
        """After the iteration that reaches each multiple of ``every`` frames, and after the last one."""
        return last or frames_after // self.every > frames_before // self.every

    def __call__(self) -> dict[str, float]:
        from torchrl_mappo.envs.snapshot import isolated_rng

        with isolated_rng():
            result = evaluate_seeded(self.env, self.policy, self.groups, self.seed, episodes=self.episodes,
                                     deterministic=True)
        out: dict[str, float] = {}
        for g, entry in result["groups"].items():
            out[f"eval/{g}/episode_return"] = entry["return_mean"]
            out[f"eval/{g}/episode_return_std"] = entry["return_std"]
            if "win_rate" in entry:
                out[f"eval/{g}/win_rate"] = entry["win_rate"]
        return out

    def close(self) -> None:
        self.env.close()


def make_evaluation(cfg: Config, actors: Mapping[str, Any]) -> PeriodicEvaluation | None:
    """``train.eval_every``'s evaluation: its own env (``min(env.num_envs, eval_episodes)`` copies,
    seeded ``train.seed + EVAL_SEED_OFFSET``) over ``actors`` (every group's); ``None`` when off."""
    import dataclasses

    from torchrl_mappo.envs import make_env
    from torchrl_mappo.envs.snapshot import isolated_rng

    t = cfg.train
    if not t.eval_every:
        return None
    seed = (t.seed + EVAL_SEED_OFFSET) % 2**32
    env_cfg = dataclasses.replace(cfg.env, num_envs=min(cfg.env.num_envs, t.eval_episodes))
    with isolated_rng():  # seeding a simulator seeds the RNGs training draws from
        env = make_env(env_cfg, seed=seed, device=t.device)
    policy = TensorDictSequential(*actors.values())
    from torchrl_mappo.modules.recurrent import recurrent_env_transforms

    env = recurrent_env_transforms(env, policy)  # recurrent actors: reset flag and hidden states
    return PeriodicEvaluation(env, policy, list(env.group_map), every=t.eval_every, episodes=t.eval_episodes,
                              seed=seed)


def evaluate_seeded(env: EnvBase, policy: TensorDictSequential, groups: list[str], seed: int,
                    **kwargs: Any) -> dict[str, Any]:
    """:func:`evaluate` from a fresh start: torch's RNG (random opponents, sampled actions) and
    the env seeded with ``seed``, so the same policy always plays the same episodes."""
    torch.manual_seed(seed)
    env.set_seed(seed)
    return evaluate(env, policy, groups, **kwargs)


def load_checkpoint(path: str | Path) -> tuple[dict, Path]:
    """Read a checkpoint (a run directory or a ``.pt`` file) -> (state, file path)."""
    from torchrl_mappo import checkpoint

    return checkpoint.read(path)


def build_policy(
    cfg: Config,
    env: EnvBase,
    trained: Mapping[str, Mapping[str, Any]],
    opponent: str | None = None,
    opponent_groups: list[str] | None = None,
    transfer: str | None = None,
) -> tuple[TensorDictSequential, dict[str, str]]:
    """One actor per env group: trained weights, a random policy, or a frozen checkpoint's.

    ``trained``: ``{group: actor state_dict}``. Groups in ``opponent_groups``
    (default: groups without trained weights) play ``opponent``: ``"random"``
    or the path of another checkpoint whose weights they load.
    ``transfer``: the env overrides this env was built with (e.g.
    ``"env.scenario_kwargs.n_agents=8"``); a trained actor that cannot run
    in it is then a :mod:`torchrl_mappo.transfer` error naming why.
    Returns the policy and ``{group: where its actions come from}``.
    """
    from torchrl_mappo.modules import make_actor, make_random_actor
    from torchrl_mappo.transfer import check_fits

    groups = list(env.group_map)
    opponent_groups = opponent_groups if opponent_groups is not None else [g for g in groups if g not in trained]
    for g in opponent_groups:
        if g not in groups:
            raise ConfigError(f"--opponent-groups: the env has no group {g!r} (its groups: {', '.join(groups)})")
    frozen: Mapping[str, Any] = {}
    if opponent not in (None, "random"):
        frozen = load_checkpoint(opponent)[0]["actors"]
    actors, source = [], {}
    for g in groups:
        if g in opponent_groups and opponent not in (None, "random"):
            if g not in frozen:
                raise ConfigError(f"--opponent {opponent}: that checkpoint has no trained group {g!r}")
            weights, source[g] = frozen[g], f"checkpoint {opponent}"
        elif g in opponent_groups or g not in trained:
            actors.append(make_random_actor(env, g))
            source[g] = "random"
            continue
        else:
            weights, source[g] = trained[g], "trained"
        actor = make_actor(env, g, cfg.group_model(g))
        if transfer:
            check_fits("actor", g, cfg.group_model(g), weights, actor, f"eval {transfer}")
        try:
            actor.load_state_dict(weights)
        except RuntimeError as err:
            raise ConfigError(
                f"group {g!r}: the checkpoint's actor does not fit this config's model ({str(err).splitlines()[0]})"
            ) from None
        actors.append(actor)
    return TensorDictSequential(*actors), source


def evaluate_checkpoint(
    path: str | Path,
    *,
    episodes: int = 10,
    deterministic: bool = False,
    opponent: str | None = None,
    opponent_groups: list[str] | None = None,
    seed: int = 12345,
    num_envs: int | None = None,
    video: str | Path | None = None,
    video_episodes: int = 2,
    overrides: Sequence[str] = (),
) -> dict[str, Any]:
    """Evaluate a run directory's (or checkpoint file's) trained groups.

    ``overrides``: ``env.*`` settings that differ from training
    (``env.scenario_kwargs.n_agents=8``: zero-shot transfer to 8 agents,
    where the trained actors allow it, see :mod:`torchrl_mappo.transfer`).

    ``video``: also draw the first ``video_episodes`` episodes of the first
    env into a ``.gif`` (or ``.mp4`` with ffmpeg): VMAS envs drawn from their
    state, PettingZoo and MAgent2 envs built with ``render_mode="rgb_array"``
    and drawn by their own ``render()``.
    """
    from torchrl_mappo.envs import make_env
    from torchrl_mappo.render import check_video_path, video_recorder

    state, file = load_checkpoint(path)
    for override in overrides:
        key = str(override).partition("=")[0].strip()
        if not key.startswith("env.") or key == "env.num_envs":
            raise ConfigError(
                f"eval {override}: only env settings can change at evaluation (the trained model is fixed; "
                "envs stepped together: --num-envs), e.g. env.scenario_kwargs.n_agents=8"
            )
    cfg = config_from_dict(apply_overrides(state["config"], overrides), origin=f"{file} + {' '.join(overrides)}"
                           if overrides else str(file))
    # A curriculum run plays the env of the stage its checkpoint was in (the overrides on top).
    stage = (state.get("curriculum") or {}).get("stage")
    if stage is not None:
        cfg = stage_config(cfg, stage)
        cfg = config_from_dict(apply_overrides(config_to_dict(cfg), overrides), origin=str(file))
    if video is not None:
        video = check_video_path(video, cfg.env.family)
        if cfg.env.family != "vmas":  # the env draws itself
            cfg.env.scenario_kwargs = {**cfg.env.scenario_kwargs, "render_mode": "rgb_array"}
    # One episode per env where possible: a run's 120 training envs would
    # otherwise play 120 episodes when 2 are asked for.
    cfg.env.num_envs = num_envs if num_envs is not None else min(cfg.env.num_envs, episodes)
    torch.manual_seed(seed)
    env = make_env(cfg.env, seed=seed)
    policy, source = build_policy(cfg, env, state["actors"], opponent, opponent_groups,
                                  transfer=" ".join(overrides) or None)
    from torchrl_mappo.modules.recurrent import recurrent_env_transforms

    env = recurrent_env_transforms(env, policy)  # recurrent actors: reset flag and hidden states
    record = recorder = None
    if video is not None:
        recorder = video_recorder(env)
        finished = [0]

        def record(td: TensorDictBase) -> None:
            if finished[0] >= video_episodes:
                return
            done = td.get((keys.NEXT, keys.DONE)).reshape(-1)[0]
            recorder.capture(f"episode {finished[0] + 1}")
            finished[0] += int(done)

        recorder.begin()
    result = evaluate_seeded(env, policy, list(env.group_map), seed, episodes=episodes,
                             deterministic=deterministic, on_step=record)
    result["checkpoint"] = str(file)
    result["policies"] = source
    if recorder is not None:
        result["video"] = str(recorder.save(video))
    env.close()
    return result
