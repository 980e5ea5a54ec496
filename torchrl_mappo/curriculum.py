"""``train.curriculum``: training in stages, each an env of its own (e.g. 2 -> 4 -> 8 agents).

A stage is ``{overrides: {env.<field>: value, ...}, until: {frames: N, return: R, eval_return: R}}``:
its ``env.*`` overrides apply on top of the run's config while it lasts; it
ends at the end of the first iteration where a condition of ``until`` holds
(``frames``: N frames trained in this stage; ``return``: every learning
group's mean episode return over that iteration's batch >= R, an iteration
that finished no episode does not count; ``eval_return``: every learning
group's return in that iteration's ``train.eval_every`` evaluation, on the
stage's env, >= R). The last stage has no ``until``: it runs to
``train.total_frames``.

At a stage change the env and the collector are rebuilt
(:func:`torchrl_mappo.build.make_stage_collector`); actors, critics, losses
and optimizers carry on, so every stage must fit them (same observation
sizes; a new agent count needs shared parameters and the attention critic,
see :mod:`torchrl_mappo.transfer`); :func:`~torchrl_mappo.build.build` checks
every stage before training starts. The stage is the ``curriculum_stage``
column of ``metrics.csv`` and is saved in checkpoints: a resumed run
continues in its stage.

The schema is checked here (torch-free) by :func:`check_stages`, called from
``TrainConfig.check``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from torchrl_mappo.errors import ConfigError

if TYPE_CHECKING:
    from torchrl_mappo.config import Config

UNTIL_KEYS = ("frames", "return", "eval_return")


@dataclass(frozen=True)
class Stage:
    overrides: dict[str, Any]
    """``{"env.<field>[.<key>]": value}``."""
    frames: int | None = None
    """Advance after this many frames in the stage (``None``: no frame condition)."""
    target_return: float | None = None
    """Advance once every learning group's batch mean episode return reaches it."""
    eval_return: float | None = None
    """Advance once every learning group's evaluation return (``train.eval_every``) reaches it."""

    @property
    def last(self) -> bool:
        return self.frames is None and self.target_return is None and self.eval_return is None


def check_stages(stages: Sequence[Any], where: str, total_frames: int, eval_every: int | None = None) -> list[Stage]:
    """Parse ``train.curriculum`` (``where``: ``"<origin>: train"``); one-line errors naming the stage."""
    out = []
    for i, raw in enumerate(stages):
        at = f"{where}.curriculum[{i}]"
        if not isinstance(raw, dict) or set(raw) - {"overrides", "until"} or "overrides" not in raw:
            raise ConfigError(f"{at}: a stage is {{overrides: {{env.<field>: value}}, until: {{frames: N}} or "
                              f"{{return: R}}}}, got {raw!r}")
        overrides = raw["overrides"]
        if not isinstance(overrides, dict) or not overrides:
            raise ConfigError(f"{at}.overrides: give a mapping of env settings, e.g. {{env.scenario_kwargs.n_agents: 2}}")
        for key in overrides:
            if not str(key).startswith("env.") or key in ("env.num_envs", "env.family"):
                raise ConfigError(
                    f"{at}.overrides.{key}: a stage changes env settings only (the env and collector are rebuilt; "
                    "the model, loss and optimizers carry on), and not env.num_envs or env.family"
                )
        until = raw.get("until")
        last = i == len(stages) - 1
        if last:
            if until is not None:
                raise ConfigError(f"{at}.until: the last stage runs until train.total_frames; drop its until")
            out.append(Stage(dict(overrides)))
            continue
        if not isinstance(until, dict) or not until or set(until) - set(UNTIL_KEYS):
            raise ConfigError(f"{at}.until: give {{frames: N}}, {{return: R}} and/or {{eval_return: R}} (whichever "
                              f"holds first), got {until!r}")
        frames, target, evaluated = until.get("frames"), until.get("return"), until.get("eval_return")
        if frames is not None and (isinstance(frames, bool) or not isinstance(frames, int) or frames <= 0):
            raise ConfigError(f"{at}.until.frames={frames!r}: must be a positive integer")
        for name, value in (("return", target), ("eval_return", evaluated)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not math.isfinite(value)):
                raise ConfigError(f"{at}.until.{name}={value!r}: must be a finite number")
        if evaluated is not None and not eval_every:
            raise ConfigError(f"{at}.until.eval_return: needs train.eval_every (the evaluation it reads); "
                              "set it, or use until.return (the training batches' return)")
        out.append(Stage(dict(overrides), frames, None if target is None else float(target),
                         None if evaluated is None else float(evaluated)))
    if len(out) == 1:
        raise ConfigError(f"{where}.curriculum: one stage is no curriculum; give two or more, or put its "
                          "overrides in the env section")
    fixed = sum(s.frames for s in out[:-1] if s.frames is not None and s.target_return is None
                and s.eval_return is None)
    if out and fixed >= total_frames:
        raise ConfigError(f"{where}.curriculum: its stages take {fixed} frames before the last one, "
                          f"train.total_frames={total_frames} leaves it none; raise train.total_frames")
    return out


def stage_config(cfg: Config, stage: int) -> Config:
    """``cfg`` with stage ``stage``'s env overrides applied (``cfg`` itself without a curriculum)."""
    from torchrl_mappo.config_io import apply_overrides, config_from_dict, config_to_dict

    stages = cfg.train.curriculum
    if not stages:
        return cfg
    overrides = [f"{k}={_yaml(v)}" for k, v in stages[stage]["overrides"].items()]
    origin = f"{cfg.source or 'config'}: train.curriculum[{stage}]"
    out = config_from_dict(apply_overrides(config_to_dict(cfg), overrides), origin=origin)
    out.source = cfg.source
    return out


def _yaml(value: Any) -> str:
    import yaml

    return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix("\n...")


class Curriculum:
    """Which stage a run is in and when it advances; the trainer asks :meth:`advance` after each iteration.

    ``rebuild(stage, frames_done)`` returns the new stage's collector (see
    :func:`torchrl_mappo.build.make_stage_collector`).
    """

    def __init__(self, stages: Sequence[Stage], rebuild: Callable[[int, int], Any]):
        self.stages = list(stages)
        self.rebuild = rebuild
        self.stage = 0
        self.stage_start = 0  # frames done when the stage began

    def advance(self, frames: int, metrics: Mapping[str, float], groups: Sequence[str]) -> bool:
        """Whether the current stage is over after an iteration that ended at ``frames`` frames."""
        s = self.stages[self.stage]
        if s.last:
            return False
        if s.frames is not None and frames - self.stage_start >= s.frames:
            return True
        for prefix, target in (("", s.target_return), ("eval/", s.eval_return)):
            if target is not None:
                values = [metrics.get(f"{prefix}{g}/episode_return", math.nan) for g in groups]
                if all(not math.isnan(v) and v >= target for v in values):
                    return True
        return False

    def next_collector(self, frames: int) -> Any:
        """Enter the next stage; its collector (for the frames left)."""
        self.stage += 1
        self.stage_start = frames
        return self.rebuild(self.stage, frames)

    def state_dict(self) -> dict[str, int]:
        return {"stage": self.stage, "stage_start": self.stage_start}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        self.stage, self.stage_start = int(state["stage"]), int(state["stage_start"])
