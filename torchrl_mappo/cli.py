"""Command line: ``torchrl-mappo train CONFIG [section.field=value ...]``.

Bad input (unknown key, wrong type, missing file, unknown scenario...) prints
one line naming the field and the fix, and exits with code 2.
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

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
    ev = sub.add_parser("eval", help="evaluate a run's trained groups (vs random or a frozen checkpoint)")
    ev.add_argument("checkpoint", help="run directory or checkpoint .pt file")
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
    return parser


def _ablate(args: argparse.Namespace) -> int:
    from torchrl_mappo.ablate import run_ablation

    out = run_ablation(
        args.config, seeds=args.seeds, frames=args.frames, variants=args.variants,
        overrides=args.overrides, out_dir=args.out,
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
        num_envs=args.num_envs,
    )
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['checkpoint']}: {result['episodes']} episodes")
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


def _train(args: argparse.Namespace) -> int:
    from torchrl_mappo.runs import RunError, train

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


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        if args.command == "train":
            return _train(args)
        if args.command == "eval":
            return _eval(args)
        if args.command == "ablate":
            return _ablate(args)
        if args.command == "plot":
            return _plot(args)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
