"""Issue 15's result tables and plots, from the runs of ``examples/results/any_agents/commands.sh``.

    python benchmarks/any_agents.py --runs /tmp/issue15-runs --out examples/results/any_agents [--parts ...]

Parts (each skipped, with a line saying so, when its runs are missing):

- ``critic``: target 1, attention vs concatenated-observation critic on
  navigation with 12 agents (the sweep's own summary and curves);
- ``critic_more``: target 1 on navigation with 24 agents and on discovery
  (one sweep per seed, both critics in it);
- ``speed``: frames/s of both critics at 12 and 24 agents, measured here
  side by side (alternating, 3 rounds, one thread, in this process);
- ``transfer``: target 2, the 4-agent policies evaluated at 2, 4, 8, 16
  agents vs policies trained at that size (return per agent);
- ``curriculum``: target 3, 2 -> 4 -> 8 agents vs 8 from scratch at equal
  frames: final training return and evaluation at 8 agents;
- ``communication``: target 4, communicating actors on vs off on the
  hidden-goal navigation (``configs/vmas_navigation_comm.yaml``): the
  sweep's summary and curves, an evaluation per seed with the first agent
  (who sees the goal) and the others apart, and the 3-agent policies played
  with 5 agents.
"""
from __future__ import annotations

import argparse
import csv
import math
import shutil
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SIZES = (2, 4, 8, 16)
SEEDS = (0, 1, 2)
EPISODES = 30


def side(n: int) -> float:
    """benchmarks/run.py's spawn scaling: the density of 4 agents in [-1, 1]^2."""
    return round(max(1.0, math.sqrt(n / 4)), 3)


def nav(n: int) -> list[str]:
    s = side(n)
    return [f"env.scenario_kwargs.n_agents={n}", f"env.scenario_kwargs.world_spawning_x={s}",
            f"env.scenario_kwargs.world_spawning_y={s}"]


def mean_std(xs: list[float]) -> str:
    xs = [x for x in xs if math.isfinite(x)]
    if not xs:
        return "-"
    return f"{statistics.mean(xs):.3f} ± {statistics.pstdev(xs):.3f}" if len(xs) > 1 else f"{xs[0]:.3f}"


def evaluate(run: Path, n: int) -> float:
    from torchrl_mappo.evaluate import evaluate_checkpoint

    result = evaluate_checkpoint(run, episodes=EPISODES, num_envs=EPISODES, overrides=nav(n), seed=12345)
    return result["groups"]["agents"]["return_mean"]


def seeds(parent: Path, point: str) -> list[Path]:
    """The finished seeds of a sweep, from ``parent`` and ``parent-rerun`` (seeds run again there)."""
    out = []
    for s in SEEDS:
        for d in (parent, parent.with_name(parent.name + "-rerun")):
            run = d / point / f"seed{s}"
            if (run / "checkpoint.pt").exists() and _finished(run):
                out.append(run)
                break
    return out


def _rows(run: Path) -> list[dict]:
    with open(run / "metrics.csv") as f:
        return list(csv.DictReader(f))


def _finished(run: Path) -> bool:
    import yaml

    total = yaml.safe_load((run / "config.yaml").read_text())["train"]["total_frames"]
    return int(_rows(run)[-1]["frames"]) >= total


def final_return(run: Path) -> float:
    """The runner's figure: mean batch return of the last 3 iterations (NaN batches left out)."""
    values = [float(r["agents/episode_return"]) for r in _rows(run)[-3:] if r["agents/episode_return"] not in ("", "nan")]
    return statistics.mean(values) if values else math.nan


def fps(run: Path) -> float:
    rows = _rows(run)
    return float(rows[-1]["frames"]) / float(rows[-1]["wall_time"])


def copy_sweep(src: Path, out: Path, name: str, part: str) -> bool:
    """Copy a sweep's summary and curves to ``out/<name>.md/.png``; False (and a note) when it is missing."""
    if not (src / "summary.md").exists():
        print(f"{part}: no {src.name} sweep, skipped")
        return False
    shutil.copy(src / "summary.md", out / f"{name}.md")
    shutil.copy(src / "curves.png", out / f"{name}.png")
    return True


def part_critic(runs: Path, out: Path) -> None:
    src = runs / "nav12"
    if not copy_sweep(src, out, "target1_nav12", "critic"):
        return
    print((src / "summary.md").read_text())


def part_speed(out: Path, rounds: int = 3) -> None:
    """Frames/s of the training loop (collection + GAE + update) with each critic, alternating."""
    import torch

    from torchrl_mappo import Trainer
    from torchrl_mappo.config import load_config

    torch.set_num_threads(1)
    fps: dict[tuple[int, str], list[float]] = {}
    for _ in range(rounds):
        for n in (12, 24):
            for critic in ("mlp", "attention"):
                cfg = load_config(REPO / "configs/vmas_navigation.yaml", [
                    *nav(n), f"model.critic={critic}", "env.num_envs=60", "train.frames_per_batch=1200",
                    "train.minibatch_size=400", "train.total_frames=2400", "train.num_threads=1",
                    "run.progress_bar=false"])
                history = Trainer.from_config(cfg).train()
                fps.setdefault((n, critic), []).append(statistics.mean(r["fps"] for r in history[1:]))
    lines = ["# Training-loop frames/s, navigation, attention vs MLP (concatenated-observation) critic", "",
             "Measured by `python benchmarks/any_agents.py --parts speed`: 60 envs, 1200 frames per batch (20 steps), "
             "10 epochs of 400-frame minibatches (the sweeps' 3 minibatches per epoch), one thread; per round each "
             "config trains 2 batches and the "
             "second is timed; the configs alternate within each of 3 rounds (the machine was shared with other "
             "developers' jobs: compare the columns, not the absolute figures, with other tables).", "",
             "| agents | mlp frames/s | attention frames/s | attention / mlp |", "|---|---|---|---|"]
    for n in (12, 24):
        m, a = statistics.median(fps[(n, "mlp")]), statistics.median(fps[(n, "attention")])
        lines.append(f"| {n} | {m:.0f} | {a:.0f} | {a / m:.2f} |")
    lines += ["", "Each round's figures: " + "; ".join(
        f"{n} {c}: {', '.join(f'{x:.0f}' for x in v)}" for (n, c), v in fps.items())]
    (out / "speed_critics.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def part_transfer(runs: Path, out: Path) -> None:
    four = seeds(runs / "transfer-train4", "critic=mlp")
    if not four:
        print("transfer: no transfer-train4 runs, skipped")
        return
    rows, zero, native = [], {}, {}
    for n in SIZES:
        zero[n] = [evaluate(r, n) for r in four]
        native[n] = [evaluate(r, n) for r in seeds(runs / f"transfer-train{n}", "critic=mlp")]
        z, t = statistics.mean(zero[n]), statistics.mean(native[n]) if native[n] else math.nan
        rows.append(f"| {n} | {side(n)} | {mean_std(zero[n])} | {mean_std(native[n])} | {z - t:+.3f} |")
        print(rows[-1], flush=True)
    lines = ["# Zero-shot transfer: navigation policies trained with 4 agents, played with 2 to 16", "",
             "Return per agent (mean episode return over the group's agents), "
             f"{EPISODES} episodes per seed (`torchrl-mappo eval RUN env.scenario_kwargs.n_agents=N ...`, seed 12345, "
             "stochastic policy); mean ± std over 3 training seeds. Every policy: configs/vmas_navigation.yaml, "
             "60k frames, 60 envs, MLP critic (the actor, a shared MLP over local observations, is what transfers). "
             "The spawn area grows with the agents as in benchmarks/run.py (side sqrt(n/4), at least 1).", "",
             "| agents | spawn side | trained with 4 (zero-shot) | trained with n | difference |", "|---|---|---|---|---|",
             *rows]
    (out / "target2_transfer.md").write_text("\n".join(lines) + "\n")
    _bars(out / "target2_transfer.png", zero, native)


def _bars(path: Path, zero: dict, native: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    x = range(len(SIZES))
    for off, data, label in ((-0.2, zero, "trained with 4 agents (zero-shot)"), (0.2, native, "trained with n agents")):
        means = [statistics.mean(data[n]) if data[n] else math.nan for n in SIZES]
        errs = [statistics.pstdev(data[n]) if len(data[n]) > 1 else 0 for n in SIZES]
        ax.bar([i + off for i in x], means, 0.4, yerr=errs, label=label, capsize=3)
    ax.set_xticks(list(x), [str(n) for n in SIZES])
    ax.set_xlabel("agents at evaluation")
    ax.set_ylabel("return per agent")
    ax.set_title("VMAS navigation: zero-shot transfer (3 seeds)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def _curve(run: Path) -> tuple[list[float], list[float], list[int]]:
    rows = _rows(run)
    ok = [r for r in rows if r["agents/episode_return"] not in ("", "nan")]
    return ([float(r["frames"]) for r in ok], [float(r["agents/episode_return"]) for r in ok],
            [int(r.get("curriculum_stage") or 0) for r in ok])


def part_curriculum(runs: Path, out: Path) -> None:
    cur, scratch = seeds(runs / "curriculum", "critic=attention"), seeds(runs / "scratch8", "critic=attention")
    if not cur or not scratch:
        print("curriculum: runs missing, skipped")
        return
    ev = {"curriculum": [evaluate(r, 8) for r in cur], "scratch8": [evaluate(r, 8) for r in scratch]}
    label = {"curriculum": "2 -> 4 -> 8 agents (15k, 15k, 30k frames)", "scratch8": "8 agents from scratch"}
    lines = ["# Curriculum 2 -> 4 -> 8 agents vs 8 agents from scratch (VMAS navigation, 60k frames)", "",
             "Both: configs/vmas_navigation.yaml, attention critic, 60 envs, 3000 frames per batch, 3 seeds. "
             "Final return: the sweep's (mean batch return of the last 3 iterations, at 8 agents for both). "
             f"Evaluation: {EPISODES} episodes per seed at 8 agents (spawn side {side(8)}), stochastic policy. "
             "mean ± std over seeds.", "",
             "| run | final training return | eval return at 8 agents | frames/s (shared machine) |", "|---|---|---|---|"]
    for name, runs_ in (("curriculum", cur), ("scratch8", scratch)):
        final = [final_return(r) for r in runs_]
        speed = statistics.mean(fps(r) for r in runs_)
        lines.append(f"| {label[name]} ({len(runs_)} seeds) | {mean_std(final)} | {mean_std(ev[name])} | {speed:.0f} |")
    lines += ["", "Per seed (eval at 8): " + "; ".join(f"{n}: {', '.join(f'{x:.3f}' for x in v)}" for n, v in ev.items())]
    (out / "target3_curriculum.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for name, color in (("curriculum", "tab:orange"), ("scratch8", "tab:blue")):
        for i, run in enumerate(cur if name == "curriculum" else scratch):
            frames, returns, _ = _curve(run)
            ax.plot(frames, returns, color=color, alpha=0.7, label=label[name] if i == 0 else None)
    for x in (15000, 30000):
        ax.axvline(x, color="grey", ls=":", lw=1)
    ax.set_xlabel("frames")
    ax.set_ylabel("batch mean episode return (per agent)")
    ax.set_title("navigation: curriculum stages at 15k / 30k frames (3 seeds)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "target3_curriculum.png", dpi=120)


def _eval_return(run: Path) -> float:
    """The last periodic evaluation's return (``eval/agents/episode_return``), NaN when the run has none."""
    for row in reversed(_rows(run)):
        value = row.get("eval/agents/episode_return", "")
        if value not in ("", "nan"):
            return float(value)
    return math.nan


def _fps_text(xs: list[float]) -> str:
    return f"{statistics.mean(xs):.0f} ± {statistics.pstdev(xs):.0f}" if len(xs) > 1 else f"{xs[0]:.0f}"


def _last_finished(run: Path, k: int = 3) -> float:
    """Mean of the last ``k`` batch returns with a finished episode (100-step episodes over 25-step batches
    leave most batches without one)."""
    values = [float(r["agents/episode_return"]) for r in _rows(run) if r["agents/episode_return"] not in ("", "nan")]
    return statistics.mean(values[-k:]) if values else math.nan


def part_critic_more(runs: Path, out: Path) -> None:
    """Target 1's other settings: navigation with 24 agents and discovery, one sweep per seed
    (``<task>-s<seed>/critic=<kind>/seed<seed>``, both critics side by side in each)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    titles = {"nav24": "navigation, 24 agents (spawn side 2.449), configs/vmas_navigation.yaml, 60 envs",
              "discovery": "discovery (5 agents, 7 targets, BenchMARL's settings), configs/vmas.yaml"}
    short = {"nav24": "navigation, 24 agents", "discovery": "discovery, 5 agents"}
    # Batches with finished episodes: every 2nd on nav24 (50-step batches), every 4th on discovery (25 steps).
    last = {"nav24": 3, "discovery": 1}
    for task, title in titles.items():
        found = {kind: sorted(runs.glob(f"{task}-s*/critic={kind}/seed*")) for kind in ("mlp", "attention")}
        found = {k: [r for r in v if (r / "metrics.csv").exists() and _finished(r)] for k, v in found.items()}
        if not any(found.values()):
            print(f"critic_more: no {task} runs, skipped")
            continue
        frames = int(_rows(next(r for v in found.values() for r in v))[-1]["frames"])
        lines = [f"# Attention vs concatenated-observation critic: {title}", "",
                 f"{frames} frames per run, one thread per run, one run at a time (both critics of a seed back to "
                 "back), shared 2-core machine: frames/s are lower bounds, comparable within this table only. "
                 f"Final return: mean of the last {last[task]} batch return(s) with finished episodes; eval: the run's last periodic "
                 "evaluation (30 episodes, deterministic) where the config has one. mean ± std over seeds.", "",
                 "| critic | seeds | final return | per seed | eval return | frames/s |", "|---|---|---|---|---|---|"]
        fig, ax = plt.subplots(figsize=(6.5, 3.8))
        for kind, color in (("mlp", "tab:blue"), ("attention", "tab:orange")):
            rs = found[kind]
            if not rs:
                continue
            final = [_last_finished(r, last[task]) for r in rs]
            lines.append(f"| `{kind}` | {len(rs)} | {mean_std(final)} | {', '.join(f'{x:.3f}' for x in final)} | "
                         f"{mean_std([_eval_return(r) for r in rs])} | {_fps_text([fps(r) for r in rs])} |")
            for i, r in enumerate(rs):
                f, y, _ = _curve(r)
                ax.plot(f, y, color=color, alpha=0.7, label=f"critic={kind}" if i == 0 else None)
        ax.set_xlabel("frames")
        ax.set_ylabel("batch mean episode return")
        ax.set_title(f"{short[task]}: attention vs MLP critic ({len(found['mlp'])}+{len(found['attention'])} seeds)",
                     fontsize=9)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / f"target1_{task}.png", dpi=120)
        (out / f"target1_{task}.md").write_text("\n".join(lines) + "\n")
        print("\n".join(lines))


def _per_agent_eval(run: Path, n: int, episodes: int = EPISODES) -> list[float]:
    """Mean return of each of the ``n`` agents over ``episodes`` episodes of the hidden-goal task (all agents
    share the goal, the first sees it), stochastic policy, seed 12345."""
    import torch
    from tensordict.nn import set_interaction_type
    from torchrl.envs.utils import ExplorationType

    from torchrl_mappo.config import load_config
    from torchrl_mappo.evaluate import load_checkpoint
    from torchrl_mappo.envs.factory import make_env
    from torchrl_mappo.modules.actor import make_actor

    cfg = load_config(run / "config.yaml", [f"env.num_envs={episodes}", f"env.scenario_kwargs.n_agents={n}",
                                            f"env.scenario_kwargs.agents_with_same_goal={n}"])
    env = make_env(cfg.env, seed=12345)
    actor = make_actor(env, "agents", cfg.model)
    actor.load_state_dict(load_checkpoint(run)[0]["actors"]["agents"])
    with torch.no_grad(), set_interaction_type(ExplorationType.RANDOM):
        torch.manual_seed(12345)
        rollout = env.rollout(cfg.env.max_steps, actor, break_when_any_done=False)
    reward = rollout["next", "agents", "reward"]  # [envs, steps, n, 1]
    # Each env's first episode only: navigation ends when every agent is on the goal, and the rollout
    # then starts another episode whose rewards are not this episode's return.
    done = rollout["next", "done"].float()  # [envs, steps, 1]
    first = (done.cumsum(1) - done) == 0  # the steps up to and including the first done
    return (reward * first.unsqueeze(-1)).sum(1).mean(0).squeeze(-1).tolist()


def part_communication(runs: Path, out: Path) -> None:
    src = runs / "comm"
    if not copy_sweep(src, out, "target4_comm", "communication"):
        return
    lines = ["", "## Evaluation per agent", "",
             f"{EPISODES} episodes per seed (each env's first episode of a {EPISODES}-env rollout; stochastic policy, "
             "env seed 12345), return per agent: agent 0 sees the "
             "goal, agents 1.. do not; mean ± std over seeds. At 5 agents: the 3-agent policies played unchanged "
             "with 5 agents (one goal, agent 0 sees it).", "",
             "| communication | agents | agent 0 (sees the goal) | the others (blind) | all |", "|---|---|---|---|---|"]
    for point in ("communication=none", "communication=attention"):
        runs_ = seeds(src, point)
        for n in (3, 5):
            if n == 5 and point == "communication=none":
                continue  # the MLP actor is per-agent-count free too, but the table is about messages
            per = [_per_agent_eval(r, n) for r in runs_]
            lines.append(f"| {point.split('=')[1]} | {n} | {mean_std([p[0] for p in per])} | "
                         f"{mean_std([statistics.mean(p[1:]) for p in per])} | "
                         f"{mean_std([statistics.mean(p) for p in per])} |")
    with open(out / "target4_comm.md", "a") as f:
        f.write("\n".join(lines) + "\n")
    print((out / "target4_comm.md").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="/tmp/issue15-runs", type=Path)
    parser.add_argument("--out", default=REPO / "examples/results/any_agents", type=Path)
    parser.add_argument("--parts", nargs="+", default=["critic", "critic_more", "transfer", "curriculum", "communication", "speed"],
                        choices=["critic", "critic_more", "transfer", "curriculum", "communication", "speed"])
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    for part in args.parts:
        if part == "speed":
            part_speed(args.out)
        else:
            globals()[f"part_{part}"](args.runs, args.out)
    print(f"done in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
