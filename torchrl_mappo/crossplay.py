"""``torchrl-mappo league --returns``: a cross-play matrix of returns, for games without a winner.

A predator-prey game (simple_tag) has two groups with different roles and specs and no winner
per episode, so the win-rate league (:mod:`torchrl_mappo.league`) does not apply. Here every
player (a checkpoint or run directory, or ``random``) lends its ``rows`` group's actor to the
rows and its other group's actor to the columns: cell ``(i, j)`` is player i's ``rows`` group
against player j's ``cols`` group, ``episodes`` whole episodes from the same seeded starts for
every cell, and reports each side's mean episode return (mean over its agents), its std and the
episode count. The diagonal is a checkpoint against its own partner.

Given the players in training order (snapshots of one run), :func:`improvement` says whether
later ones are better, per side, with each side's own return as the score: the rows side
improves where a later row earns more than an earlier row against the same column, the columns
side where a later column earns more (loses less) than an earlier one against the same row.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Sequence

import torch
from tensordict.nn import TensorDictSequential

from torchrl_mappo.config import Config, ConfigError
from torchrl_mappo.league import RANDOM, read_players


@dataclasses.dataclass
class Player:
    """``random``, or a checkpoint's config and trained actors (``{group: state_dict}``)."""

    name: str
    cfg: Config | None = None
    actors: dict | None = None


def load_players(names: Sequence[str]) -> list[Player]:
    """The players of a cross-play league (:func:`torchrl_mappo.league.read_players`'s checks)."""
    return [Player(name, cfg, actors) for name, cfg, actors in read_players(names, "league --returns")]


def _actor(player: Player, env, group: str):
    from torchrl_mappo.modules import make_actor, make_random_actor

    if player.name == RANDOM:
        return make_random_actor(env, group)
    if group not in player.actors:
        raise ConfigError(f"league --returns: {player.name} has no trained group {group!r} (it trained "
                          f"{', '.join(player.actors)}); give checkpoints of runs in which both groups learn")
    actor = make_actor(env, group, player.cfg.group_model(group))
    try:
        actor.load_state_dict(player.actors[group])
    except RuntimeError as err:
        raise ConfigError(f"league --returns: {player.name}'s {group!r} policy does not fit the env "
                          f"({str(err).splitlines()[0]})") from None
    return actor


def play_crossplay(names: Sequence[str], *, episodes: int = 32, rows: str | None = None, seed: int = 12345,
                   deterministic: bool = False, num_envs: int | None = None) -> dict[str, Any]:
    """The cross-play matrix: ``{"players", "sides": [rows group, cols group], "episodes",
    "return_mean"/"return_std": {group: matrix [row][col]}, "improvement": :func:`improvement`}``."""
    from torchrl_mappo.envs import make_env
    from torchrl_mappo.evaluate import evaluate_seeded

    if episodes < 1:
        raise ConfigError("league --returns: --episodes must be >= 1")
    players = load_players(names)
    base = next(p.cfg for p in players if p.cfg is not None)
    env = make_env(dataclasses.replace(base.env, num_envs=num_envs or min(base.env.num_envs, episodes)), seed=seed)
    groups = list(env.group_map)
    if len(groups) != 2:
        env.close()
        raise ConfigError(f"league --returns: the env has {len(groups)} groups ({', '.join(groups)}); "
                          "cross-play needs two")
    if rows is not None and rows not in groups:
        env.close()
        raise ConfigError(f"league --returns: --group {rows!r} is not a group of the env ({', '.join(groups)})")
    a = rows if rows is not None else groups[0]
    b = next(g for g in groups if g != a)
    n = len(players)
    mean = {g: [[0.0] * n for _ in range(n)] for g in (a, b)}
    std = {g: [[0.0] * n for _ in range(n)] for g in (a, b)}
    counts = [[0] * n for _ in range(n)]
    try:
        for i in range(n):
            for j in range(n):
                policy = TensorDictSequential(*[_actor(players[i], env, a) if g == a else _actor(players[j], env, b)
                                                for g in groups])  # the env's group order
                # Every cell plays the same seeded starts: rows and columns compare like for like.
                result = evaluate_seeded(env, policy, groups, seed, episodes=episodes, deterministic=deterministic)
                counts[i][j] = result["episodes"]
                for g in (a, b):
                    mean[g][i][j] = result["groups"][g]["return_mean"]
                    std[g][i][j] = result["groups"][g]["return_std"]
    finally:
        env.close()
    out = {"players": [p.name for p in players], "sides": [a, b], "episodes": counts,
           "deterministic": deterministic, "seed": seed, "return_mean": mean, "return_std": std}
    out["improvement"] = summarize(out)
    return out


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    """:func:`improvement` of a result's matrices over its checkpoints (``random`` left out), with
    each cell's standard error (std / sqrt(episodes))."""
    a, b = result["sides"]
    ordered = [k for k, name in enumerate(result["players"]) if name != RANDOM]

    def sub(m):
        return torch.tensor(m, dtype=torch.double)[ordered][:, ordered]

    eps = sub(result["episodes"]).clamp(min=1)
    out = improvement(sub(result["return_mean"][a]), sub(result["return_mean"][b]),
                      sub(result["return_std"][a]) / eps.sqrt(), sub(result["return_std"][b]) / eps.sqrt())
    out["players"] = [result["players"][k] for k in ordered]
    return out


def improvement(rows_return: torch.Tensor, cols_return: torch.Tensor, rows_se: torch.Tensor | None = None,
                cols_se: torch.Tensor | None = None) -> dict[str, Any]:
    """Whether later players beat earlier ones, per side, players in training order.

    ``rows_return[i, j]``: the rows side's return, row i against column j; ``cols_return[i, j]``:
    the columns side's. Rows side: over every column j and every pair of rows ``i < k``, the share
    in which row k earned more than row i (a tie counts half); columns side: over every row i and
    every pair of columns ``j < k``, the share in which column k earned more than column j. Also
    the mean gain of the last player over the first (against every opponent) per side. With the
    cells' standard errors, also the shares in which the later one is ahead (``clearly_better``) or
    behind (``clearly_worse``) by more than twice the standard error of the difference
    (``sqrt(se_k^2 + se_i^2)``, conservative: every cell plays the same seeded starts).
    """
    n = rows_return.shape[0]
    if n < 2:
        return {"rows_later_beats_earlier": float("nan"), "cols_later_beats_earlier": float("nan"), "pairs": 0}

    def share(m: torch.Tensor, se: torch.Tensor | None) -> tuple[float, float, float]:
        # m[k, opponent]: a later index k against an earlier i, opponent by opponent
        score = better = worse = 0.0
        pairs = 0
        for i in range(n):
            for k in range(i + 1, n):
                diff = m[k] - m[i]
                score += float((diff > 0).sum()) + 0.5 * float((diff == 0).sum())
                if se is not None:
                    margin = 2 * (se[k] ** 2 + se[i] ** 2).sqrt()
                    better += float((diff > margin).sum())
                    worse += float((diff < -margin).sum())
                pairs += m.shape[1]
        return score / pairs, better / pairs, worse / pairs

    rows = share(rows_return, rows_se)
    cols = share(cols_return.T, None if cols_se is None else cols_se.T)
    out = {
        "rows_later_beats_earlier": rows[0],
        "cols_later_beats_earlier": cols[0],
        "pairs": n * (n - 1) // 2 * n,
        "rows_last_minus_first": float((rows_return[-1] - rows_return[0]).mean()),
        "cols_last_minus_first": float((cols_return[:, -1] - cols_return[:, 0]).mean()),
    }
    if rows_se is not None and cols_se is not None:
        out.update(rows_clearly_better=rows[1], rows_clearly_worse=rows[2],
                   cols_clearly_better=cols[1], cols_clearly_worse=cols[2])
    return out


def summary_lines(result: dict[str, Any]) -> list[str]:
    a, b = result["sides"]
    imp = result["improvement"]
    n = len(imp["players"])
    if n < 2:
        return ["(fewer than two checkpoints: no ordering to test)"]
    lines = []
    for side, g, other in (("rows", a, b), ("cols", b, a)):
        line = (f"- {g} ({'rows' if side == 'rows' else 'columns'}): a later snapshot earns more than an earlier "
                f"one against the same {other} in {imp[f'{side}_later_beats_earlier']:.2f} of {imp['pairs']} "
                f"comparisons")
        if f"{side}_clearly_better" in imp:
            line += (f" (by more than 2 standard errors: {imp[f'{side}_clearly_better']:.2f} ahead, "
                     f"{imp[f'{side}_clearly_worse']:.2f} behind)")
        lines.append(line + f"; last minus first: {imp[f'{side}_last_minus_first']:+.2f} (mean over the {other} snapshots)")
    return lines


def short_labels(labels: Sequence[str]) -> tuple[list[str], str | None]:
    """Labels without their run when every checkpoint comes from one run (``run/iter_000005`` ->
    ``iter_000005``), and that run (else ``None``)."""
    runs = {lab.split("/", 1)[0] for lab in labels if lab != RANDOM}
    if len(runs) != 1 or not all("/" in lab for lab in labels if lab != RANDOM):
        return list(labels), None
    return [lab.split("/", 1)[1] if lab != RANDOM else lab for lab in labels], runs.pop()


def markdown(result: dict[str, Any], labels: Sequence[str]) -> str:
    a, b = result["sides"]
    n = len(labels)
    labels, run = short_labels(labels)
    lines = [f"Checkpoints of run {run}.", ""] if run else []
    for g in (a, b):
        lines += [f"{g}'s mean episode return (+- std over episodes): row = {a} of, column = {b} of", "",
                  f"| {a} \\ {b} | " + " | ".join(labels) + " |", "|" + "---|" * (n + 1)]
        for i in range(n):
            cells = [f"{result['return_mean'][g][i][j]:.2f} +- {result['return_std'][g][i][j]:.2f}" for j in range(n)]
            lines.append(f"| {labels[i]} | " + " | ".join(cells) + " |")
        lines.append("")
    eps = {e for row in result["episodes"] for e in row}
    lines += [f"{'/'.join(map(str, sorted(eps)))} episodes per cell, the same seeded starts in every cell "
              f"(seed {result['seed']}), {'deterministic' if result['deterministic'] else 'sampled'} actions.", ""]
    if run:
        lines += ["Later snapshots against earlier ones (players in the order given, random left out):", "",
                  *summary_lines(result)]
    else:  # the order of checkpoints of different runs means nothing
        lines += ["The players are not checkpoints of one run, so no later-vs-earlier summary (give one run's "
                  "checkpoints in training order for it)."]
    return "\n".join(lines) + "\n"


def heatmap(result: dict[str, Any], labels: Sequence[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a, b = result["sides"]
    n = len(labels)
    labels, run = short_labels(labels)
    fig, axes = plt.subplots(1, 2, figsize=(2 * (0.75 * n + 1.8), 0.65 * n + 1.8))
    for ax, g in zip(axes, (a, b)):
        data = torch.tensor(result["return_mean"][g])
        ax.imshow(data, cmap="RdYlGn")  # green: high return for that side
        ax.set_xticks(range(n), labels, rotation=35, ha="right", fontsize=7)
        ax.set_yticks(range(n), labels, fontsize=7)
        ax.set_xlabel(f"{b} of", fontsize=8)
        ax.set_ylabel(f"{a} of", fontsize=8)
        for i in range(n):
            for j in range(n):
                ax.text(j, i, f"{float(data[i, j]):.1f}", ha="center", va="center", fontsize=7)
        ax.set_title(f"{g}'s mean return" + (f" ({run})" if run else ""), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(result: dict[str, Any], out: Path, labels: Sequence[str]) -> tuple[Path, Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    md, js, png = out / "crossplay.md", out / "crossplay.json", out / "crossplay.png"
    md.write_text(markdown(result, labels))
    js.write_text(json.dumps(result, indent=1))
    heatmap(result, labels, png)
    return md, js, png
