"""Self-play: a group that plays with another group's policy (``mirror``) or with frozen snapshots
of it (``pool``), and the league that rates checkpoints against each other.

- ``per_group.<g>.policy: mirror <source>``: ``g`` acts with ``source``'s actor (the same
  parameters, read through ``g``'s own keys) and ``g``'s experience trains it too: ``g`` gets a
  loss whose actor and critic share ``source``'s networks and ``source``'s optimizer, so each
  minibatch steps the one policy on both teams' data (the design of MAgent2 battle self-play:
  one policy, both teams, all experience pooled).
- ``per_group.<g>.policy: pool``: ``g`` acts with a frozen snapshot of ``source``'s actor
  (``pool_of``), drawn before each batch from the last ``pool_size`` snapshots, one taken every
  ``snapshot_every`` iterations (the first: the initial policy); ``g`` never trains.

Both need ``g`` and ``source`` to have the same observation and action specs (MAgent2's teams
do), and a mirrored critic must not read the global state: it is the same for both teams, so a
critic trained for ``source`` cannot tell which team it values.
"""
from __future__ import annotations

import copy
from typing import Any, Mapping

import torch
from torch import nn
from torchrl.envs import EnvBase

from torchrl_mappo import keys
from torchrl_mappo.errors import ConfigError

POLICIES = ("learn", "random", "mirror <group>", "pool")


def parse_policy(spec: str) -> tuple[str, str | None]:
    """``per_group.<g>.policy`` -> ``(kind, source group or None)``; shape only (groups: :func:`check_pairs`)."""
    words = str(spec).split()
    if words in (["learn"], ["random"], ["pool"]):
        return words[0], None
    if len(words) == 2 and words[0] == "mirror":
        return "mirror", words[1]
    raise ValueError(f"use one of {', '.join(POLICIES)}")


def check_same_specs(env: EnvBase, group: str, source: str, where: str) -> None:
    """``group`` can act with ``source``'s networks: equal observation and action specs."""
    for what, spec in (("observation", env.observation_spec_unbatched), ("action", env.full_action_spec_unbatched)):
        key = (keys.observation if what == "observation" else keys.action)
        a, b = spec[key(group)], spec[key(source)]
        if a.shape != b.shape or type(a) is not type(b) or getattr(a.space, "n", None) != getattr(b.space, "n", None):
            raise ConfigError(
                f"{where}: groups {group!r} and {source!r} have different {what} specs ({tuple(a.shape)} vs "
                f"{tuple(b.shape)}); only groups with equal specs can share a policy"
            )


def tie(target: nn.Module, source: nn.Module) -> None:
    """Make ``target`` (an actor or critic built for another group) compute with ``source``'s
    network: the same parameter objects, so gradients of either reach both."""
    if hasattr(source, "module") and isinstance(getattr(source, "module"), nn.ModuleList):
        # ProbabilisticActor: its first module is the TensorDictModule around the network.
        target.module[0].module = source.module[0].module
    else:  # a critic: a TensorDictModule around the network
        target.module = source.module


class OpponentPool:
    """Frozen snapshots of ``source``'s actor, one of which ``target`` (a group's own actor,
    never trained) plays each batch.

    Draws come from a generator of its own (seeded), so a pool does not move the training RNG;
    its snapshots, draw count and generator are in the checkpoint (:meth:`state_dict`).
    """

    def __init__(self, source: nn.Module, target: nn.Module, *, size: int, every: int, sampling: str,
                 seed: int) -> None:
        self.source, self.target = source, target
        self.size, self.every, self.sampling = size, every, sampling
        self.generator = torch.Generator().manual_seed(seed)
        self.snapshots: list[dict[str, torch.Tensor]] = [self._snapshot()]
        self.current = 0
        for p in target.parameters():
            p.requires_grad_(False)
        self._load(0)

    def _snapshot(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.source.state_dict().items()}

    def _load(self, index: int) -> None:
        self.current = index
        self.target.load_state_dict(self.snapshots[index])

    def after_update(self, iteration: int) -> dict[str, float]:
        """Snapshot ``source`` every ``every`` iterations, then draw the opponent of the next batch."""
        if iteration % self.every == 0:
            self.snapshots.append(self._snapshot())
            del self.snapshots[: max(0, len(self.snapshots) - self.size)]
        n = len(self.snapshots)
        if self.sampling == "latest":  # weight i + 1: the newest the most likely
            weights = torch.arange(1, n + 1, dtype=torch.float)
        else:
            weights = torch.ones(n)
        self._load(int(torch.multinomial(weights, 1, generator=self.generator)))
        return {"pool_size": float(n), "pool_index": float(self.current)}

    def state_dict(self) -> dict[str, Any]:
        return {"snapshots": copy.deepcopy(self.snapshots), "current": self.current,
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.snapshots = copy.deepcopy(list(state["snapshots"]))
        self.generator.set_state(state["generator"])
        self._load(state["current"])


# --------------------------------------------------------------------------- #
# League: round-robin win rates and Elo ratings
# --------------------------------------------------------------------------- #
def elo_ratings(wins: torch.Tensor, games: torch.Tensor, *, anchor: int | None = None, iters: int = 2000) -> list[float]:
    """Elo ratings (400-point logistic scale) that best explain a round-robin: the maximum-likelihood
    Bradley-Terry fit of ``wins[i, j]`` (i's wins over j, draws counted as half) out of ``games[i, j]``.

    The ratings of players who never lost (or never won) diverge; a weak prior (one drawn game
    against a 1000-rated player each) keeps them finite. Returns ratings with mean 1000, or
    with ``anchor``'s rating at 1000.
    """
    n = wins.shape[0]
    w = wins.double() + 0.5  # the prior: half a win and half a loss against an average player
    g = games.double() + 1.0
    w.fill_diagonal_(0)
    g.fill_diagonal_(0)
    r = torch.zeros(n, dtype=torch.double)  # natural-log scale
    for _ in range(iters):  # minorization-maximization (Hunter 2004): monotone, converges
        gamma = r.exp()
        denom = (g / (gamma[:, None] + gamma[None, :])).sum(1)
        new = torch.log(w.sum(1) / denom)
        new -= new.mean()
        if torch.allclose(new, r, atol=1e-12):
            break
        r = new
    elo = r * 400 / torch.log(torch.tensor(10.0, dtype=torch.double))
    elo = elo - (elo[anchor] if anchor is not None else elo.mean()) + 1000
    return [float(x) for x in elo]
