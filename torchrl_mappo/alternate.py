"""Both sides learn by pool: learning groups take turns, each resting group playing its own past.

``alternate.groups: [A, B]`` (section :class:`~torchrl_mappo.config.AlternateConfig`): iteration
``k`` (1-based) is ``groups[((k - 1) // turn_iterations) % len(groups)]``'s turn. That group
collects the batch with its live policy and trains on it; every other listed group acts with a
frozen snapshot of its own past, drawn for that batch from its pool, and skips the update (its
data came from a snapshot, not from the policy it would train). A group snapshots its live
actor after every ``snapshot_every`` of its own updates and keeps the last ``pool_size`` (the
first snapshot is its initial policy). So each side trains against a spread of the other's past
policies rather than chasing its current one, and the sides may have different specs
(simple_tag's predators and prey), which ``per_group.<g>.policy: pool`` (a frozen copy of
*another* group with equal specs) cannot do.

How it is wired (:func:`make_turns`): each listed group gets a second actor, its *acting* actor,
which the collector runs instead of the live one. The live actor is the one the loss trains,
checkpoints save and evaluation plays; the acting actor's weights are copied from it for the
group's turns and from a snapshot for its rests. One :class:`TurnPool` per listed group sits in
the trainer's ``pools`` (so its state is in the checkpoint) and tells the trainer, through
:meth:`TurnPool.trains`, which groups update on a batch.
"""
from __future__ import annotations

import copy
from typing import Any, Mapping

import torch
from torch import nn

from torchrl_mappo.errors import ConfigError
from torchrl_mappo.selfplay import draw, snapshot


def turn_of(iteration: int, groups: list[str], turn_iterations: int) -> str:
    """The group whose turn iteration ``iteration`` (1-based) is."""
    return groups[((iteration - 1) // turn_iterations) % len(groups)]


def check_turn_groups(cfg, groups: list[str]) -> None:
    """Every ``alternate.groups`` entry is a learning group of the env that no other group mirrors or pools."""
    where = f"{cfg.source or 'config'}: alternate.groups"
    for g in cfg.alternate.groups:
        if g not in groups:
            raise ConfigError(f"{where}: the env has no group {g!r} (its groups: {', '.join(groups)})")
        if cfg.group(g).kind()[0] != "learn":
            raise ConfigError(f"{where}: {g!r} has per_group.{g}.policy={cfg.group(g).policy!r}; only groups "
                              "with policy: learn take turns (remove it from alternate.groups)")
    for g in groups:
        if cfg.policy_source(g, groups) in cfg.alternate.groups:
            raise ConfigError(
                f"{where}: per_group.{g}.policy={cfg.group(g).policy!r} plays {cfg.policy_source(g, groups)!r}, "
                "which takes turns; a group cannot both take turns and lend its policy to another group"
            )


class TurnPool:
    """One group's turns and its pool of its own past snapshots.

    Args:
        group: the group.
        live: its live actor (trained by its loss).
        acting: its acting actor (the collector's), same architecture; its parameters never train.
        groups: ``alternate.groups`` (the turn order); ``turn_iterations``: iterations per turn.
        size, every, sampling: ``pool_size``, ``snapshot_every``, ``pool_sampling``.
        seed: the draws' own generator (a pool never moves the training RNG).

    ``current`` is what the acting actor holds now: ``-1`` the live weights (the group's turn),
    else the index of the snapshot it plays.
    """

    def __init__(self, group: str, live: nn.Module, acting: nn.Module, *, groups: list[str],
                 turn_iterations: int, size: int, every: int, sampling: str, seed: int) -> None:
        self.group, self.live, self.acting = group, live, acting
        self.groups, self.turn_iterations = list(groups), turn_iterations
        self.size, self.every, self.sampling = size, every, sampling
        self.generator = torch.Generator().manual_seed(seed)
        for p in acting.parameters():
            p.requires_grad_(False)
        self.snapshots: list[dict[str, torch.Tensor]] = [self._snapshot()]
        self.updates = 0  # the group's own updates so far
        self.current = -1
        self._prepare(1)

    def trains(self, iteration: int) -> bool:
        """Whether the group updates on batch ``iteration`` (its turn)."""
        return turn_of(iteration, self.groups, self.turn_iterations) == self.group

    def _snapshot(self) -> dict[str, torch.Tensor]:
        return snapshot(self.live)

    def _draw(self) -> int:
        return draw(len(self.snapshots), self.sampling, self.generator)

    def _load(self, index: int) -> None:
        self.current = index
        self.acting.load_state_dict(self.live.state_dict() if index < 0 else self.snapshots[index])

    def _prepare(self, iteration: int) -> None:
        """Set the acting actor for batch ``iteration``: live on the group's turn, else a drawn snapshot."""
        self._load(-1 if self.trains(iteration) else self._draw())

    def after_update(self, iteration: int) -> dict[str, float]:
        """After batch ``iteration``'s update: count and maybe snapshot the group's update, then set up
        the next batch. Returns what this batch was: ``learned`` (1/0), ``played`` (-1: the live
        policy, else the snapshot index) and ``pool_size``."""
        learned = self.trains(iteration)
        played = self.current
        if learned:
            self.updates += 1
            if self.updates % self.every == 0:
                self.snapshots.append(self._snapshot())
                del self.snapshots[: max(0, len(self.snapshots) - self.size)]
        self._prepare(iteration + 1)
        return {"learned": float(learned), "played": float(played), "pool_size": float(len(self.snapshots))}

    def state_dict(self) -> dict[str, Any]:
        return {"kind": "turns", "snapshots": copy.deepcopy(self.snapshots), "updates": self.updates,
                "current": self.current, "generator": self.generator.get_state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get("kind") != "turns":
            raise ConfigError(f"checkpoint: group {self.group!r}'s pool is not an alternate pool "
                              "(alternate.groups changed since it was written)")
        self.snapshots = copy.deepcopy(list(state["snapshots"]))
        self.updates = int(state["updates"])
        self.generator.set_state(state["generator"])
        self._load(int(state["current"]))  # the live weights are already restored


def make_turns(cfg, env, actors: Mapping[str, nn.Module]) -> tuple[dict[str, nn.Module], dict[str, TurnPool]]:
    """The collector's actors (``actors`` with an acting actor for each ``alternate.groups`` entry)
    and a :class:`TurnPool` per entry; ``({}, {})``-like passthrough when ``alternate`` is off."""
    from torchrl_mappo.modules import make_actor

    a = cfg.alternate
    if not a.groups:
        return dict(actors), {}
    groups = list(env.group_map)
    check_turn_groups(cfg, groups)
    acting, pools = dict(actors), {}
    for i, g in enumerate(a.groups):
        acting[g] = make_actor(env, g, cfg.group_model(g))
        pools[g] = TurnPool(g, actors[g], acting[g], groups=a.groups, turn_iterations=a.turn_iterations,
                            size=a.pool_size, every=a.snapshot_every, sampling=a.pool_sampling,
                            seed=(cfg.train.seed + 104729 * (i + 1)) % 2**32)
    return acting, pools
