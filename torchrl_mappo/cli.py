"""Command line: ``torchrl-mappo train CONFIG [section.field=value ...]``, ``check-env``, ``eval``, ...

Bad input (unknown key, wrong type, missing file, unknown scenario...) prints
one line naming the field and the fix, and exits with code 2.
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from torchrl_mappo import startup
from torchrl_mappo.config import ConfigError

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, no usage dump
        raise ConfigError(f"{self.prog}: {message} (see '{self.prog} --help')")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="torchrl-mappo", description="Multi-agent PPO on TorchRL.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    train = sub.add_parser("train", help="train from a YAML config (or resume a run)")
    train.add_argument("config", nargs="?", help="YAML config file, e.g. configs/vmas_navigation.yaml")
    train.add_argument(
        "overrides", nargs="*", metavar="section.field=value",
        help="config overrides, e.g. train.seed=1 env.num_envs=32",
    )
    train.add_argument(
        "--resume", metavar="RUN_DIR", default=None,
        help="continue the run in RUN_DIR from its latest checkpoint (config from RUN_DIR/config.yaml; "
             "overrides such as train.total_frames=... still apply)",
    )
    train.add_argument("--seeds", nargs="+", default=None, metavar="SEED",
                       help="one run per seed, in parallel, under one new directory, with a summary")
    _jobs_argument(train)
    ce = sub.add_parser("check-env", help="build a config's env and check it against what MAPPO needs")
    ce.add_argument("config", help="YAML config file")
    ce.add_argument("overrides", nargs="*", metavar="section.field=value", help="config overrides")
    sw = sub.add_parser("sweep", help="train every combination of --grid values x --seeds, with a summary")
    sw.add_argument("config", help="YAML config file")
    sw.add_argument("overrides", nargs="*", metavar="section.field=value", help="config overrides for every run")
    sw.add_argument("--grid", action="append", required=True, metavar="section.field=V1,V2",
                    help="one axis of the grid (repeat for more), e.g. --grid train.lr=3e-4,1e-3")
    sw.add_argument("--seeds", nargs="+", default=["0"], metavar="SEED", help="seeds per point (default 0)")
    _jobs_argument(sw)
    sw.add_argument("--out", default=None, help="output directory (default: <run.dir>/<config>-sweep-<time>)")
    sw.add_argument("--target", type=float, default=None, metavar="R",
                    help="time and frames to this return in the summary (default: train.target_return, "
                         "which also stops the runs; this does not)")
    ev = sub.add_parser("eval", help="evaluate a run's trained groups (vs random or a frozen checkpoint)")
    ev.add_argument("checkpoint", help="run directory or checkpoint .pt file")
    ev.add_argument("overrides", nargs="*", metavar="env.field=value",
                    help="env settings that differ from training, e.g. env.scenario_kwargs.n_agents=8 "
                         "(zero-shot transfer: shared-parameter actors over local observations allow it)")
    ev.add_argument("--episodes", type=int, default=10, help="episodes to play (default 10)")
    ev.add_argument("--deterministic", action="store_true", help="act with the policy's mode")
    ev.add_argument(
        "--opponent", default=None,
        help="what the opponent groups play: 'random' or another run's checkpoint (default: "
             "groups the run did not train act at random)",
    )
    ev.add_argument(
        "--opponent-groups", nargs="+", default=None, metavar="GROUP",
        help="groups that play --opponent (default: the groups the run did not train)",
    )
    ev.add_argument("--num-envs", type=int, default=None,
                    help="envs stepped together (default: min(episodes, the run's env.num_envs))")
    ev.add_argument("--seed", type=int, default=12345)
    ev.add_argument("--json", action="store_true", help="print the result as JSON")
    ev.add_argument("--video", default=None, metavar="OUT.gif|OUT.mp4",
                    help="draw the first episodes of the first env (VMAS) into a GIF or MP4")

    lg = sub.add_parser("league", help="round-robin of checkpoints (and 'random') on a two-team battle: "
                                       "win-rate matrix and Elo")
    lg.add_argument("players", nargs="+", metavar="RUN_OR_CKPT", help="run directories, checkpoint files or 'random'")
    lg.add_argument("--episodes", type=int, default=20, help="episodes per pair and side (default 20)")
    lg.add_argument("--group", default=None, help="the trained group whose policy a checkpoint plays "
                                                  "(default: its first)")
    lg.add_argument("--deterministic", action="store_true", help="act with the policies' modes")
    lg.add_argument("--seed", type=int, default=12345)
    lg.add_argument("--out", default=None, help="write league.md, league.json and league.png there")
    lg.add_argument("--json", action="store_true", help="print the result as JSON")
    lg.add_argument("--returns", action="store_true",
                    help="games without a winner (simple_tag): a cross-play matrix of both groups' returns, each "
                         "player's --group (default: the env's first) against each player's other group; "
                         "writes crossplay.md/json/png")

    pl = sub.add_parser("plot", help="learning curves (return per group vs frames and vs wall time)")
    pl.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories (several are overlaid)")
    pl.add_argument("--out", default=None, help="PNG path (default: <first run>/learning_curves.png)")

    ab = sub.add_parser("ablate", help="run the MAPPO ablation table (every variant, several seeds)")
    ab.add_argument("config", help="YAML config of full MAPPO")
    ab.add_argument("overrides", nargs="*", metavar="section.field=value", help="config overrides")
    ab.add_argument("--seeds", type=int, default=3, help="seeds per variant (default 3)")
    ab.add_argument("--frames", type=int, default=None, help="frames per run (default: train.total_frames)")
    ab.add_argument("--variants", nargs="+", default=None, metavar="NAME",
                    help="variants to run (default: all); 'full' is always included")
    ab.add_argument("--out", default=None, help="output directory (default: <run.dir>/<config>-ablation-<time>)")
    _jobs_argument(ab)
    return parser


def _jobs_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--jobs", type=int, default=None, metavar="N",
                        help="runs at a time, the cores split between them (default: one per core)")


def _many(args: argparse.Namespace, grid: Sequence[str] = (), kind: str = "seeds") -> int:
    """``train --seeds`` and ``sweep``: every run in a process of its own, then the summary."""
    from torchrl_mappo.runner import parse_seeds, report, sweep

    # "--seeds 0 1 train.lr=1e-3": argparse hands the overrides after the seeds to --seeds.
    seeds, overrides = parse_seeds(args.seeds)
    parent, runs, finished = sweep(args.config, grid=grid, seeds=seeds, jobs=args.jobs,
                                   overrides=[*args.overrides, *overrides], out=getattr(args, "out", None),
                                   kind=kind, target=getattr(args, "target", None))
    return report(parent, runs, finished)


def _ablate(args: argparse.Namespace) -> int:
    from torchrl_mappo.ablate import run_ablation

    out = run_ablation(
        args.config, seeds=args.seeds, frames=args.frames, variants=args.variants,
        overrides=args.overrides, out_dir=args.out, jobs=args.jobs,
    )
    print((out / "ablation.md").read_text())
    print(f"table: {out / 'ablation.md'}\nplot: {out / 'ablation.png'}\nruns: {out}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    import json

    from torchrl_mappo.evaluate import evaluate_checkpoint

    if args.episodes <= 0:
        raise ConfigError(f"--episodes={args.episodes}: must be a positive integer")
    if args.num_envs is not None and args.num_envs <= 0:
        raise ConfigError(f"--num-envs={args.num_envs}: must be a positive integer")
    if not 0 <= args.seed < 2**32:
        raise ConfigError(f"--seed={args.seed}: must be in [0, 2**32)")
    result = evaluate_checkpoint(
        args.checkpoint, episodes=args.episodes, deterministic=args.deterministic,
        opponent=args.opponent, opponent_groups=args.opponent_groups, seed=args.seed, video=args.video,
        num_envs=args.num_envs, overrides=args.overrides,
    )
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    n = result["episodes"]
    print(f"{result['checkpoint']}: {n} episode{'' if n == 1 else 's'}")
    for g, r in result["groups"].items():
        extra = f", win rate {r['win_rate']:.0%}" if "win_rate" in r else ""
        extra += f", survivors {r['survivors_mean']:.1f}" if "survivors_mean" in r else ""
        print(f"  {g} ({result['policies'][g]}): return {r['return_mean']:.3f} ± {r['return_std']:.3f}{extra}")
    if "video" in result:
        print(f"video: {result['video']}")
    return 0


def _plot(args: argparse.Namespace) -> int:
    from torchrl_mappo.plot import plot_runs

    print(f"plot: {plot_runs(args.runs, args.out)}")
    return 0


def _check_env(args: argparse.Namespace) -> int:
    from torchrl_mappo.config_io import load_config
    from torchrl_mappo.envs.check import check_env
    from torchrl_mappo.threads import apply_threads

    cfg = load_config(args.config, args.overrides)
    apply_threads(cfg)
    report, env = check_env(cfg)
    if env is not None:
        env.close()
    for line in report.found:
        print(line)
    for note in report.notes:
        print(f"note: {note}")
    for problem in report.problems:
        print(f"problem: {problem}")
    if report.problems:
        raise ConfigError(f"check-env {args.config}: {len(report.problems)} problem(s), listed above")
    print(f"ok: {args.config} builds an env torchrl_mappo can train")
    return 0


def _train(args: argparse.Namespace) -> int:
    from torchrl_mappo.runs import RunError, train

    if args.seeds is not None or args.jobs is not None:
        if args.seeds is None:
            raise ConfigError("train --jobs: give --seeds too (e.g. --seeds 0 1 2 --jobs 2)")
        if args.resume is not None or args.config is None:
            raise ConfigError("train --seeds: give a config file; to continue a run use --resume RUN alone")
        return _many(args)
    overrides = list(args.overrides)
    config = args.config
    if args.resume is not None and config is not None:
        if "=" not in config:
            raise ConfigError(
                f"train --resume {args.resume}: the config comes from the run; drop {config!r} "
                "(overrides such as train.total_frames=... are allowed)"
            )
        overrides.insert(0, config)
        config = None
    try:
        train(config, overrides, resume=args.resume)
    except RunError:
        return 1  # its one line is already printed (and in the run's console.log)
    return 0


def _league(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from torchrl_mappo.league import labels_of, markdown, play_league, write

    if args.episodes <= 0:
        raise ConfigError(f"--episodes={args.episodes}: must be a positive integer")
    if not 0 <= args.seed < 2**32:
        raise ConfigError(f"--seed={args.seed}: must be in [0, 2**32)")
    if args.returns:
        return _crossplay(args)
    result = play_league(args.players, episodes=args.episodes, group=args.group, seed=args.seed,
                         deterministic=args.deterministic)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(markdown(result, labels_of(result["players"])))
    if args.out is not None:
        md, js, png = write(result, Path(args.out))
        print(f"table: {md}\njson: {js}\nheatmap: {png}")
    return 0


def _crossplay(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from torchrl_mappo import crossplay
    from torchrl_mappo.league import labels_of

    result = crossplay.play_crossplay(args.players, episodes=args.episodes, rows=args.group, seed=args.seed,
                                      deterministic=args.deterministic)
    labels = labels_of(result["players"])
    print(json.dumps(result, indent=2) if args.json else crossplay.markdown(result, labels))
    if args.out is not None:
        md, js, png = crossplay.write(result, Path(args.out), labels)
        print(f"table: {md}\njson: {js}\nheatmap: {png}")
    return 0


def entry() -> None:
    """The ``torchrl-mappo`` console script and ``python -m torchrl_mappo``: :func:`main` in a
    process of its own, with the garbage collector kept off the imported dependencies
    (:mod:`torchrl_mappo.startup`)."""
    with startup.one_command():
        code = main()
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = _parser()
        args, rest = parser.parse_known_args(argv)
        # Overrides after an option (``--jobs 2 train.lr=1e-3``) are left over by argparse.
        if rest and (not hasattr(args, "overrides") or any(a.startswith("-") or "=" not in a for a in rest)):
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        if rest:
            args.overrides = [*args.overrides, *rest]
        if args.command != "train" or args.seeds is not None or args.jobs is not None:
            startup.imports_done()  # only a single run defers it, to once its trainer is imported
        if args.command == "train":
            return _train(args)
        if args.command == "eval":
            return _eval(args)
        if args.command == "ablate":
            return _ablate(args)
        if args.command == "check-env":
            return _check_env(args)
        if args.command == "plot":
            return _plot(args)
        if args.command == "sweep":
            return _many(args, grid=args.grid, kind="sweep")
        if args.command == "league":
            return _league(args)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    entry()
