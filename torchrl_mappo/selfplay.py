"""Self-play: a group that plays with another group's policy (``mirror``) or with frozen snapshots
of it (``pool``), and the league that rates checkpoints against each other.

- ``per_group.<g>.policy: mirror <source>``: ``g`` acts with ``source``'s actor (the same
  parameters, read through ``g``'s own keys) and ``g``'s experience trains it too: ``g`` gets a
  loss whose actor and critic share ``source``'s networks and ``source``'s optimizer, so each
  minibatch steps the one policy on both teams' data (the design of MAgent2 battle self-play:
  one policy, both teams, all experience pooled).
- ``per_group.<g>.policy: pool``: ``g`` acts with a frozen snapshot of ``source``'s actor
  (``pool_of``), drawn before each batch from the last ``pool_size`` snapshots, one taken every
  ``snapshot_every`` iterations (the first: the initial policy); ``g`` never trains. With
  ``pool_swap_sides: p``, each batch (drawn with probability ``p``) the sides swap: ``source``'s
  live actor plays ``g``'s side and the drawn snapshot plays ``source``'s side
  (:class:`SidePolicy`), and that batch trains ``source``'s actor and critic on ``g``'s data only
  (:func:`make_side_swap`'s loss: ``source``'s networks read through ``g``'s keys, ``source``'s
  optimizer); ``source``'s own data, played by a snapshot, trains nothing.

Both need ``g`` and ``source`` to have the same observation and action specs (MAgent2's teams
do), and a mirrored critic must not read the global state: it is the same for both teams, so a
critic trained for ``source`` cannot tell which team it values.
"""
from __future__ import annotations

import copy
from typing import Any, Mapping

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModuleBase
from torch import nn
from torchrl.envs import EnvBase
from torchrl.objectives import LossModule

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


def snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of ``module``'s weights (a pool's frozen snapshot)."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def draw(n: int, sampling: str, generator: torch.Generator) -> int:
    """The index of one of ``n`` snapshots (oldest first): ``uniform``, or ``latest`` (weight ``i + 1``,
    the newest the most likely); one ``torch.multinomial`` draw from the pool's own ``generator``."""
    weights = torch.arange(1, n + 1, dtype=torch.float) if sampling == "latest" else torch.ones(n)
    return int(torch.multinomial(weights, 1, generator=generator))


class OpponentPool:
    """Frozen snapshots of ``source``'s actor, one of which ``target`` (a group's own actor,
    never trained) plays each batch.

    Draws come from a generator of its own (seeded), so a pool does not move the training RNG;
    its snapshots, draw count and generator are in the checkpoint (:meth:`state_dict`).

    With ``swap_sides`` > 0 (and ``swap_loss``, :func:`make_side_swap`'s loss), after drawing the
    snapshot the pool also draws whether the next batch is played with the sides swapped
    (:attr:`swapped`, probability ``swap_sides``; the first batch is never swapped). The trainer
    then trains the source group with ``swap_loss`` on that batch instead of its own loss.
    """

    def __init__(self, source: nn.Module, target: nn.Module, *, size: int, every: int, sampling: str,
                 seed: int, swap_sides: float = 0.0, swap_loss: LossModule | None = None,
                 source_group: str | None = None) -> None:
        if swap_sides > 0 and (swap_loss is None or source_group is None):
            raise ValueError("swap_sides > 0 needs swap_loss and source_group (make_side_swap)")
        self.source, self.target = source, target
        self.size, self.every, self.sampling = size, every, sampling
        self.swap_sides, self.swap_loss, self.source_group = swap_sides, swap_loss, source_group
        self.swapped = False
        self.generator = torch.Generator().manual_seed(seed)
        self.snapshots: list[dict[str, torch.Tensor]] = [self._snapshot()]
        self.current = 0
        for p in target.parameters():
            p.requires_grad_(False)
        self._load(0)

    def _snapshot(self) -> dict[str, torch.Tensor]:
        return snapshot(self.source)

    def _load(self, index: int) -> None:
        self.current = index
        self.target.load_state_dict(self.snapshots[index])

    def after_update(self, iteration: int) -> dict[str, float]:
        """Snapshot ``source`` every ``every`` iterations, then draw the opponent of the next batch."""
        if iteration % self.every == 0:
            self.snapshots.append(self._snapshot())
            del self.snapshots[: max(0, len(self.snapshots) - self.size)]
        n = len(self.snapshots)
        self._load(draw(n, self.sampling, self.generator))
        if self.swap_sides > 0:  # drawn after the snapshot: a pool without swaps draws as before
            self.swapped = bool(torch.rand((), generator=self.generator) < self.swap_sides)
        return {"pool_size": float(n), "pool_index": float(self.current)}

    def state_dict(self) -> dict[str, Any]:
        state = {"snapshots": copy.deepcopy(self.snapshots), "current": self.current,
                 "generator": self.generator.get_state()}
        if self.swap_loss is not None:  # its networks are the source's; its own buffers (value norm) too
            state.update(swapped=self.swapped, swap_loss=copy.deepcopy(self.swap_loss.state_dict()))
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if (self.swap_loss is None) != ("swap_loss" not in state):
            from torchrl_mappo.errors import ConfigError

            raise ConfigError("checkpoint: its opponent pool was saved with pool_swap_sides "
                              f"{'> 0' if 'swap_loss' in state else '0'}, this config differs; use the run's pool_swap_sides")
        self.snapshots = copy.deepcopy(list(state["snapshots"]))
        self.generator.set_state(state["generator"])
        self._load(state["current"])
        if self.swap_loss is not None:
            self.swapped = bool(state["swapped"])
            self.swap_loss.load_state_dict(state["swap_loss"])


class SidePolicy(TensorDictModuleBase):
    """The collector's policy with a side-swapping pool: ``own`` (every group's actor: the learner on
    its side, the pool's snapshot on the other) or, on the batches where ``pool.swapped``, ``swapped``
    (the same actors with the learner and the snapshot exchanged). Both hold the same parameter
    objects: the learner's weights are never copied, so its updates reach both at once."""

    def __init__(self, pool: OpponentPool, own: TensorDictModuleBase, swapped: TensorDictModuleBase) -> None:
        super().__init__()
        if set(own.out_keys) != set(swapped.out_keys):
            raise ValueError(f"the two policies write different keys: {own.out_keys} vs {swapped.out_keys}")
        self.own, self.swapped = own, swapped
        self.pool = pool  # a plain object, read at every step
        self.in_keys = list(dict.fromkeys([*own.in_keys, *swapped.in_keys]))
        self.out_keys = list(own.out_keys)

    def forward(self, tensordict: TensorDictBase, *args, **kwargs) -> TensorDictBase:
        return (self.swapped if self.pool.swapped else self.own)(tensordict, *args, **kwargs)


def make_side_swap(env: EnvBase, cfg, group: str, source: str, actors: Mapping[str, nn.Module],
                   source_loss: LossModule, where: str) -> tuple[LossModule, dict[str, nn.Module]]:
    """The pieces of ``per_group.<group>.pool_swap_sides``: the loss that trains ``source``'s actor and
    critic on ``group``'s side (their networks read through ``group``'s keys, like ``mirror``), and
    the actors of a swapped batch: ``{group: source's live actor on group's keys, source: the pool's
    snapshot (``actors[group]``'s network) on source's keys}``.

    Raises ``ConfigError`` (one line) for what a swap cannot do: a critic on the global state (it is
    the same for both sides, so one critic cannot value both), recurrent models (two policies would
    share one hidden-state slot per side), other collectors than ``sync`` (the side is chosen in the
    trainer's process) and a curriculum (a stage change rebuilds the collector's policy).
    """
    from torchrl_mappo.loss import make_loss
    from torchrl_mappo.modules import make_actor, make_critic

    model = cfg.group_model(source)
    field_name = f"per_group.{group}.pool_swap_sides={cfg.group(group).pool_swap_sides}"
    if model.is_recurrent:
        raise ConfigError(f"{where}: {field_name}: recurrent models cannot swap sides; use model.recurrent: none "
                          "or pool_swap_sides: 0")
    if cfg.collector.kind != "sync":
        raise ConfigError(f"{where}: {field_name}: the side is drawn in the trainer's process; use "
                          f"collector.kind: sync (not {cfg.collector.kind!r}) or pool_swap_sides: 0")
    if cfg.train.curriculum:
        raise ConfigError(f"{where}: {field_name}: a curriculum stage change rebuilds the collector's policy; "
                          "drop train.curriculum or set pool_swap_sides: 0")
    critic = make_critic(env, group, model)
    if keys.STATE in critic.in_keys:
        raise ConfigError(
            f"{where}: {field_name}: the critic reads the global state, which is the same for both sides, so the "
            f"learner's critic cannot value both; set model.critic_input: concat_obs (each side's own observations)"
        )
    tie(critic, source_loss.critic_network)
    live = make_actor(env, group, model)
    tie(live, actors[source])
    frozen = make_actor(env, source, model)
    tie(frozen, actors[group])
    loss = make_loss(live, critic, env, group, cfg.group_loss(source))
    loss.entropy_coeff = source_loss.entropy_coeff  # one buffer: the entropy schedule moves both
    if getattr(source_loss, "value_norm", None) is not None:
        loss.value_norm = source_loss.value_norm  # one critic, one normaliser
    return loss, {group: live, source: frozen}


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
