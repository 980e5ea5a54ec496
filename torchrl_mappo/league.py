"""``torchrl-mappo league``: a round-robin between checkpoints (and ``random``) on a two-team battle.

Every pair plays ``episodes`` episodes on each side (so a side's advantage cancels); an episode
is won by the team with more survivors (ties: the higher team return, as in
:func:`torchrl_mappo.metrics.win_rates`), a draw counts half. Reports the win-rate matrix (row
vs column) and Elo ratings fitted to it (:func:`torchrl_mappo.selfplay.elo_ratings`), as a
markdown table, a JSON record and a heatmap PNG.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Sequence

import torch
from tensordict.nn import TensorDictSequential

from torchrl_mappo.config import Config, ConfigError, config_from_dict, config_to_dict
from torchrl_mappo.selfplay import check_same_specs, elo_ratings

RANDOM = "random"


@dataclasses.dataclass
class Entry:
    """A player: ``random``, or a checkpoint's policy (its ``group``'s actor weights)."""

    name: str
    cfg: Config | None = None
    weights: dict | None = None
    group: str | None = None


def read_players(names: Sequence[str], where: str) -> list[tuple[str, Config | None, dict | None]]:
    """``(name, config, {group: actor state_dict})`` per player (``random``: ``(name, None, None)``), after the
    checks every league needs: two players or more, none twice, one checkpoint at least, one env for all.
    ``where`` names the command in the one-line errors (``league``, ``league --returns``)."""
    from torchrl_mappo import checkpoint

    if len(names) < 2:
        raise ConfigError(f"{where}: give at least two players (checkpoints, run directories or 'random')")
    if len(set(names)) < len(names):
        raise ConfigError(f"{where}: a player is named twice; give each checkpoint once")
    players = []
    for name in names:
        if name == RANDOM:
            players.append((name, None, None))
            continue
        state, file = checkpoint.read(name)
        players.append((name, config_from_dict(state["config"], origin=str(file)), dict(state["actors"])))
    trained = [(name, cfg) for name, cfg, _ in players if cfg is not None]
    if not trained:
        raise ConfigError(f"{where}: give at least one checkpoint or run directory (random alone plays no one)")
    env0 = config_to_dict(trained[0][1])["env"]
    for name, cfg in trained[1:]:
        if config_to_dict(cfg)["env"] != env0:
            raise ConfigError(f"{where}: {name} was trained on another env than {trained[0][0]} (env sections "
                              "differ); a league compares policies of one env")
    return players


def load_entries(names: Sequence[str], group: str | None) -> list[Entry]:
    entries = []
    for name, cfg, actors in read_players(names, "league"):
        if cfg is None:
            entries.append(Entry(RANDOM))
            continue
        g = group if group is not None else next(iter(actors))
        if g not in actors:
            raise ConfigError(f"league: {name} has no trained group {g!r} (it trained {', '.join(actors)}); "
                              "choose one with --group")
        entries.append(Entry(name, cfg, actors[g], g))
    return entries


def _actor(entry: Entry, env, side: str, base: Config):
    from torchrl_mappo.modules import make_actor, make_random_actor

    if entry.name == RANDOM:
        return make_random_actor(env, side)
    actor = make_actor(env, side, entry.cfg.group_model(entry.group))
    try:
        actor.load_state_dict(entry.weights)
    except RuntimeError as err:
        raise ConfigError(f"league: {entry.name}'s policy does not fit side {side!r} ({str(err).splitlines()[0]})") from None
    return actor


def play_league(names: Sequence[str], *, episodes: int = 20, group: str | None = None, seed: int = 12345,
                deterministic: bool = False, num_envs: int | None = None) -> dict[str, Any]:
    """The round-robin; returns ``{"players", "win_rate" (matrix, row vs column), "elo", "episodes"}``."""
    from torchrl_mappo.envs import make_env
    from torchrl_mappo.evaluate import evaluate_seeded

    if episodes < 1:
        raise ConfigError("league: --episodes must be >= 1")
    entries = load_entries(names, group)
    base = next(e.cfg for e in entries if e.cfg is not None)
    env_cfg = dataclasses.replace(base.env, num_envs=num_envs or min(base.env.num_envs, episodes))
    env = make_env(env_cfg, seed=seed)
    sides = list(env.group_map)
    if len(sides) != 2:
        raise ConfigError(f"league: the env has {len(sides)} groups ({', '.join(sides)}); a league needs two teams")
    check_same_specs(env, sides[1], sides[0], "league")
    n = len(entries)
    wins = torch.zeros(n, n)
    games = torch.zeros(n, n)
    first_side = torch.full((n, n), float("nan"))  # i's score playing sides[0] against j on sides[1]
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            # i plays the first side, j the second; the pair (j, i) plays the other way round.
            policy = TensorDictSequential(_actor(entries[i], env, sides[0], base), _actor(entries[j], env, sides[1], base))
            result = evaluate_seeded(env, policy, sides, seed + 7 * i + 13 * j, episodes=episodes,
                                     deterministic=deterministic)
            got = result["groups"]
            if "win_rate" not in got[sides[0]]:
                raise ConfigError("league: this env reports no winner (no survivors per team, as MAgent2 battle has)")
            a, b = got[sides[0]]["win_rate"], got[sides[1]]["win_rate"]
            k = result["episodes"]
            draws = k * (1 - a - b)
            wins[i, j] += k * a + draws / 2
            first_side[i, j] = a + (1 - a - b) / 2
            wins[j, i] += k * b + draws / 2
            games[i, j] += k
            games[j, i] += k
    env.close()
    rate = torch.where(games > 0, wins / games.clamp(min=1), torch.full_like(wins, float("nan")))
    anchor = next((i for i, e in enumerate(entries) if e.name == RANDOM), None)
    return {
        "players": [e.name for e in entries], "episodes_per_side": episodes, "sides": sides,
        "win_rate": [[None if i == j else float(rate[i, j]) for j in range(n)] for i in range(n)],
        # by side: row i on sides[0] vs column j on sides[1]; win_rate[i][j] is the mean of
        # first_side_win_rate[i][j] and 1 - first_side_win_rate[j][i]
        "first_side_win_rate": [[None if i == j else float(first_side[i, j]) for j in range(n)] for i in range(n)],
        "elo": elo_ratings(wins, games, anchor=anchor),
        "elo_anchor": entries[anchor].name if anchor is not None else "mean",
    }


def markdown(result: dict[str, Any], labels: Sequence[str]) -> str:
    n = len(labels)
    head = "| player (row wins vs column) | " + " | ".join(labels) + " | Elo |"
    lines = [head, "|" + "---|" * (n + 2)]
    for i in range(n):
        cells = ["-" if v is None else f"{v:.2f}" for v in result["win_rate"][i]]
        lines.append(f"| {labels[i]} | " + " | ".join(cells) + f" | {result['elo'][i]:.0f} |")
    if "first_side_win_rate" in result:
        first, second = result["sides"]
        lines += ["", f"By side: row on {first} vs column on {second} (the row's score)", "",
                  f"| {first} \\ {second} | " + " | ".join(labels) + " |", "|" + "---|" * (n + 1)]
        for i in range(n):
            cells = ["-" if v is None else f"{v:.2f}" for v in result["first_side_win_rate"][i]]
            lines.append(f"| {labels[i]} | " + " | ".join(cells) + " |")
    anchor = result["elo_anchor"]
    lines += ["", f"{result['episodes_per_side']} episodes per pair and side; a draw counts half; Elo "
              f"{'with random at 1000' if anchor == RANDOM else 'with mean 1000'}."]
    return "\n".join(lines) + "\n"


def heatmap(result: dict[str, Any], labels: Sequence[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(labels)
    data = [[float("nan") if v is None else v for v in row] for row in result["win_rate"]]
    fig, ax = plt.subplots(figsize=(1.1 * n + 2.5, 0.9 * n + 1.5))
    ax.imshow(data, cmap="RdYlGn", vmin=0, vmax=1)
    ax.set_xticks(range(n), labels, rotation=30, ha="right")
    ax.set_yticks(range(n), [f"{lab} ({e:.0f})" for lab, e in zip(labels, result["elo"])])
    for i in range(n):
        for j in range(n):
            if i != j:
                ax.text(j, i, f"{data[i][j]:.2f}", ha="center", va="center", fontsize=8)
    ax.set_title("win rate, row vs column (Elo)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def labels_of(names: Sequence[str]) -> list[str]:
    """Short names: the run directory (the checkpoint's grandparent for ``checkpoints/*.pt``)."""
    out = []
    for name in names:
        p = Path(name)
        if name == RANDOM:
            out.append(RANDOM)
        elif p.suffix == ".pt":
            out.append(f"{p.parent.parent.name if p.parent.name == 'checkpoints' else p.parent.name}/{p.stem}")
        else:
            out.append(p.name)
    return out


def write(result: dict[str, Any], out: Path) -> tuple[Path, Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    labels = labels_of(result["players"])
    md, js, png = out / "league.md", out / "league.json", out / "league.png"
    md.write_text(markdown(result, labels))
    js.write_text(json.dumps(result, indent=1))
    heatmap(result, labels, png)
    return md, js, png
