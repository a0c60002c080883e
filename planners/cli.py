"""``incentive-bench``: the command line over the registries and the engine.

Subcommands (a bare ``incentive-bench`` runs ``compare``, the main job):

* ``list [--json]`` — every game, learner and planner with its one-line description, and the
  valid combinations;
* ``run`` — one game × learner × planner into a run directory (``result.json``, ``plot.png``,
  checkpoints; resumes an interrupted run, never overwrites a finished one);
* ``compare`` — several planners on one game (the paper's Table 1 setting by default);
* ``matrix`` — the robustness matrix: planners × learning dynamics on the price games;
* ``sweep`` — a grid of games × learners × planners × seeds, locally or on a Ray cluster;
* ``plot DIR`` — redraw a run's, comparison's or sweep's figure from its saved results.

Options are accepted anywhere on the line; a bad choice or value prints one line and exits 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from pathlib import Path

from agents.registry import registry as learner_registry
from agents.registry import spec as learner_spec
from incentive_envs.io import check_writable, write_json_atomic
from incentive_envs.registry import registry as env_registry
from incentive_envs.registry import spec as env_spec
from planners.experiment import ExperimentConfig, compare_planners, comparison_table, run_experiment
from planners.registry import combinations
from planners.registry import registry as planner_registry
from planners.registry import spec as planner_spec

COMMANDS = ("list", "run", "compare", "matrix", "sweep", "plot")
MAIN_JOB_PLANNERS = ("single_loop", "double_loop_id", "double_loop_ad", "zeroth_order", "none", "oracle")
"""The main job: Table 1's three methods plus SPSA, no incentive and the oracle."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit status 2 (no usage block)
        self.exit(2, f"{self.prog}: error: {message}\n")


# -- parameters ---------------------------------------------------------------------------


def _parse_value(annotation: str, text: str, name: str):
    """Parse ``text`` for a config field annotated ``annotation`` (a string: ``"float | None"``…)."""
    options = [part.strip() for part in annotation.split("|")]
    if "None" in options and text.lower() == "none":
        return None
    kinds = [option for option in options if option != "None"]
    for kind in kinds:
        try:
            if kind == "int":
                return int(text)
            if kind == "float":
                return float(text)
            if kind == "bool":
                if text.lower() not in ("true", "false"):
                    raise ValueError(text)
                return text.lower() == "true"
            if kind.startswith("tuple["):
                element = kind[len("tuple[") :].split(",")[0].strip().rstrip("]")
                items = [item.strip() for item in text.split(",") if item.strip()]
                convert = {"int": int, "float": float}.get(element, str)
                return tuple(convert(item) for item in items)
            if kind == "str" or kind.endswith("str"):
                return text
        except ValueError:
            continue
    raise ValueError(f"parameter {name}={text!r} is not a valid {annotation}")


def parse_params(
    pairs: list[str], owners: dict[str, type], excluded: dict[str, frozenset] | None = None
) -> dict[str, dict]:
    """``["game.k=1", "step_size=0.1", …]`` → ``{"game": {...}, "learner": {...}, "planner": {...}}``.

    A key may be prefixed by its owner (``game.``, ``learner.``, ``planner.``); an unprefixed key
    must belong to exactly one owner's config.
    """
    parsed: dict[str, dict] = {owner: {} for owner in owners}
    excluded = excluded or {}
    annotations = {
        owner: {
            field.name: str(field.type)
            for field in fields(config)
            if field.name not in excluded.get(owner, ())
        }
        for owner, config in owners.items()
    }
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--param expects key=value, got {pair!r}")
        owner, dot, name = key.partition(".")
        if dot and owner in owners:
            candidates = [owner] if name in annotations[owner] else []
        else:
            name = key
            candidates = [owner for owner in owners if name in annotations[owner]]
        if len(candidates) != 1:
            known = {owner: sorted(names) for owner, names in annotations.items()}
            problem = (
                "is ambiguous (prefix it with game., learner. or planner.)" if candidates else "is unknown"
            )
            raise ValueError(f"parameter {key!r} {problem}; known parameters: {known}")
        owner = candidates[0]
        parsed[owner][name] = _parse_value(annotations[owner][name], text, key)
    return parsed


def _names(text: str, kind: str, known: dict) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown {kind} {unknown or text!r}; choose from {sorted(known)}")
    return names


def _game_names() -> dict:
    return {spec.game: spec for spec in env_registry().values()}


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


# -- subcommands --------------------------------------------------------------------------


def _listing() -> dict:
    def jsonable(parameters: dict) -> dict:
        return {
            name: {**info, "default": info["default"] if _is_json(info["default"]) else repr(info["default"])}
            for name, info in parameters.items()
        }

    return {
        "games": {
            spec.game: {
                "env_id": spec.env_id,
                "description": spec.description,
                "capabilities": sorted(spec.capabilities),
                "size_parameter": spec.size_field,
                "parameters": jsonable(spec.parameters()),
            }
            for spec in env_registry().values()
        },
        "learners": {
            spec.name: {
                "description": spec.description,
                "feedback": spec.feedback,
                "requires": sorted(spec.requires),
                "differentiable": spec.differentiable,
                "parameters": jsonable(spec.parameters()),
            }
            for spec in learner_registry().values()
        },
        "planners": {
            spec.name: {
                "description": spec.description,
                "information": spec.information,
                "requires": sorted(spec.requires),
                "learner_requirement": spec.learner_requirement,
                "parameters": jsonable(spec.parameters()),
            }
            for spec in planner_registry().values()
        },
        "combinations": [list(combination) for combination in combinations()],
    }


def _is_json(value) -> bool:
    try:
        json.dumps(value)
    except TypeError:
        return False
    return True


def _command_list(args) -> int:
    listing = _listing()
    if args.json:
        print(json.dumps(listing, indent=2))
        return 0
    for kind in ("games", "learners", "planners"):
        print(f"{kind}:")
        for name, info in listing[kind].items():
            print(f"  {name:<16} {info['description']}")
    by_game: dict[str, list[str]] = {}
    for game, learner, planner in listing["combinations"]:
        by_game.setdefault(game, []).append(f"{learner}/{planner}")
    print(f"valid combinations ({len(listing['combinations'])}; learner/planner per game):")
    for game, pairs in by_game.items():
        print(f"  {game}: {', '.join(pairs)}")
    return 0


def _config(args, planner: str) -> ExperimentConfig:
    game, learner = env_spec(args.game), learner_spec(args.learner)
    params = parse_params(
        args.param,
        {"game": game.config, "learner": learner.config, "planner": planner_spec(planner).config},
        excluded={"game": game.env_only_parameters},
    )
    if args.n is not None:
        if game.size_field is None:
            raise ValueError(f"--n does not apply to {game.game}: its agents are set by its other parameters")
        params["game"][game.size_field] = args.n
    return ExperimentConfig(
        game=game.game,
        learner=learner.name,
        planner=planner,
        game_params=params["game"],
        learner_params=params["learner"],
        planner_params=params["planner"],
        iterations=args.iterations,
        seed=args.seed,
        feedback_noise_std=args.noise,
        stop_at_gap=args.stop_at_gap,
    )


def _command_run(args) -> int:
    config = _config(args, args.planner)
    out = Path(args.out)
    if (out / "result.json").exists():
        raise ValueError(f"{str(out)!r} already holds a finished run; choose another --out")
    check_writable(out / "result.json", "--out")
    result = run_experiment(
        config, out=out, checkpoint_every=args.checkpoint_every, progress=not args.no_progress
    )
    final = result["final"]
    print(
        "\n".join(
            f"{key:<18}{value:.6g}" if isinstance(value, float) else f"{key:<18}{value}"
            for key, value in final.items()
        )
    )
    print(f"stopped by {result['stopped']} after {result['iterations']} iterations")
    print(f"wrote {out / 'result.json'} and {out / 'plot.png'}")
    return 0


def _command_compare(args) -> int:
    for path, name in ((args.json, "--json"), (args.plot, "--plot")):
        check_writable(path, name)
    base = _config(args, args.planners[0])
    payload = compare_planners(args.planners, base, progress=not args.no_progress)
    print(comparison_table(payload))
    write_json_atomic(args.json, payload)
    from planners.plots import plot_runs

    plot_runs(
        payload["runs"],
        args.plot,
        title=f"{base.game}: planners compared ({base.learner} learners)",
        stop_at_gap=base.stop_at_gap,
    )
    print(f"wrote {args.json} and {args.plot}")
    return 0


def _command_sweep(args) -> int:
    from planners.sweep import plan_trials, run_sweep, summary_table

    configs = {
        "game": [env_spec(name).config for name in args.games],
        "learner": [learner_spec(name).config for name in args.learners],
        "planner": [planner_spec(name).config for name in args.planners],
    }
    merged: dict[str, dict] = {kind: {} for kind in configs}
    for pair in args.param:  # a sweep parameter applies to every entry of its kind that has the field
        key, sep, text = pair.partition("=")
        kind, dot, name = key.partition(".")
        if not sep or not dot or kind not in configs:
            raise ValueError(
                f"sweep parameters are kind.key=value with kind game, learner or planner; got {pair!r}"
            )
        annotations = [
            {field.name: str(field.type) for field in fields(config)}.get(name) for config in configs[kind]
        ]
        annotation = next((found for found in annotations if found is not None), None)
        if annotation is None:
            raise ValueError(f"no {kind} of the sweep has a parameter {name!r}")
        merged[kind][name] = _parse_value(annotation, text, key)
    trials, skipped = plan_trials(
        args.games,
        args.learners,
        args.planners,
        args.seeds,
        n=args.n,
        iterations=args.iterations,
        game_params=merged["game"],
        learner_params=merged["learner"],
        planner_params=merged["planner"],
        feedback_noise_std=args.noise,
        stop_at_gap=args.stop_at_gap,
    )
    if not trials:
        raise ValueError(f"no valid combination in the grid; skipped: {skipped}")
    summary = run_sweep(
        trials,
        skipped,
        args.out,
        backend=args.backend,
        address=args.address,
        workers=args.workers,
        progress=not args.no_progress,
    )
    print(summary_table(summary))
    print(f"wrote {Path(args.out) / 'summary.json'}, summary.txt and summary.png")
    return 0


def _command_matrix(args) -> int:
    from planners.matrix import run_matrix

    run_matrix(
        args.out,
        games=args.games,
        seeds=args.seeds,
        n=args.n,
        iterations=args.iterations,
        eval_every=args.eval_every,
        backend=args.backend,
        address=args.address,
        workers=args.workers,
        progress=not args.no_progress,
    )
    return 0


def _command_plot(args) -> int:
    from planners.plots import plot_runs, plot_sweep

    directory = Path(args.directory)
    candidates = [directory / "result.json", directory / "summary.json", directory]
    source = next((path for path in candidates if path.is_file()), None)
    if source is None:
        raise ValueError(
            f"{str(directory)!r} holds no result.json or summary.json (or is not a results file)"
        )
    try:
        payload = json.loads(source.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{source}: cannot read: {error}") from None
    target = (
        Path(args.out)
        if args.out
        else (source.parent / "plot.png" if source.name != "summary.json" else source.parent / "summary.png")
    )
    check_writable(target, "--out")
    if isinstance(payload, dict) and "aggregate" in payload:
        plot_sweep(payload["aggregate"], target, title=f"sweep: {len(payload['trials'])} trials")
    elif isinstance(payload, dict) and "runs" in payload:
        settings = payload["settings"]
        plot_runs(
            payload["runs"],
            target,
            title=f"{settings['game']}: planners compared",
            stop_at_gap=settings.get("stop_at_gap"),
        )
    elif isinstance(payload, dict) and "metrics" in payload and "config" in payload:
        config = payload["config"]
        plot_runs(
            {config["planner"]: payload}, target, title=f"{config['game']}, {config['learner']} learners"
        )
    else:
        raise ValueError(f"{source}: not a run, comparison or sweep result")
    print(f"wrote {target}")
    return 0


# -- the parser ---------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    games, learners, planners = sorted(_game_names()), sorted(learner_registry()), sorted(planner_registry())
    formatter = argparse.ArgumentDefaultsHelpFormatter
    parser = _Parser(prog="incentive-bench", description=__doc__.split("\n\n")[0], formatter_class=formatter)
    common = _Parser(add_help=False)
    common.add_argument("--no-progress", action="store_true", help="hide progress bars")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    listing = sub.add_parser(
        "list",
        parents=[common],
        help="games, learners, planners and valid combinations",
        formatter_class=formatter,
    )
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(handler=_command_list)

    def experiment_options(command, *, planner: bool, defaults: dict):
        command.add_argument(
            "--game", choices=games, default=defaults.get("game", "cournot"), help="the game"
        )
        command.add_argument(
            "--learner",
            choices=learners,
            default=defaults.get("learner", "gradient"),
            help="the followers' learner",
        )
        if planner:
            command.add_argument("--planner", choices=planners, default="single_loop", help="the planner")
        command.add_argument(
            "--n",
            type=_positive_int,
            default=defaults.get("n"),
            help="number of agents (the game's size parameter)",
        )
        command.add_argument(
            "--iterations",
            type=_positive_int,
            default=defaults.get("iterations", 300),
            help="maximum iterations",
        )
        command.add_argument(
            "--seed", type=int, default=0, help="seed of the run (noise, stochastic planners)"
        )
        command.add_argument(
            "--noise",
            type=_non_negative_float,
            default=0.0,
            help="std of Gaussian noise on the followers' feedback",
        )
        command.add_argument(
            "--stop-at-gap",
            type=float,
            default=defaults.get("stop_at_gap"),
            help="stop once the objective gap is at most this",
        )
        command.add_argument(
            "--param",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="a game/learner/planner parameter (prefix game., learner. or planner. when ambiguous); see `list --json`",
        )

    run = sub.add_parser(
        "run", parents=[common], help="one game × learner × planner run", formatter_class=formatter
    )
    experiment_options(run, planner=True, defaults={})
    run.add_argument("--out", required=True, help="run directory (result.json, plot.png, checkpoints)")
    run.add_argument(
        "--checkpoint-every", type=_positive_int, default=100, help="iterations between checkpoints"
    )
    run.set_defaults(handler=_command_run)

    compare = sub.add_parser(
        "compare",
        parents=[common],
        help="planners compared on one game (the main job)",
        formatter_class=formatter,
    )
    experiment_options(compare, planner=False, defaults={"n": 100, "iterations": 300, "stop_at_gap": 1e-4})
    compare.add_argument(
        "--planners",
        type=lambda text: _names(text, "planner", planner_registry()),
        default=list(MAIN_JOB_PLANNERS),
        help=f"comma-separated, from {planners}",
    )
    compare.add_argument("--json", default="results/compare.json", help="where to write the results")
    compare.add_argument("--plot", default="results/compare.png", help="where to write the figure")
    compare.set_defaults(handler=_command_compare)

    def grid_options(command, *, defaults: dict):
        command.add_argument(
            "--seeds", type=_positive_int, default=defaults["seeds"], help="seeds 0 … S−1 per cell"
        )
        command.add_argument(
            "--n", type=_positive_int, default=defaults["n"], help="number of agents per game"
        )
        command.add_argument(
            "--iterations", type=_positive_int, default=defaults["iterations"], help="iterations per trial"
        )
        command.add_argument(
            "--backend", choices=("local", "ray"), default="local", help="local process pool or Ray tasks"
        )
        command.add_argument(
            "--address", default=None, help="Ray cluster address (ray backend; default: start Ray locally)"
        )
        command.add_argument(
            "--workers",
            type=_positive_int,
            default=None,
            help="local processes (default: the machine's cores)",
        )
        command.add_argument(
            "--out", default=defaults.get("out"), required="out" not in defaults, help="sweep directory"
        )

    matrix = sub.add_parser(
        "matrix",
        parents=[common],
        help="robustness matrix: planners × learning dynamics",
        formatter_class=formatter,
    )
    matrix.add_argument(
        "--games",
        type=lambda text: _names(text, "game", _game_names()),
        default=["cournot", "aggregative", "oscillators"],
        help="comma-separated price games",
    )
    matrix.add_argument(
        "--eval-every", type=_positive_int, default=25, help="iterations between metric evaluations"
    )
    grid_options(matrix, defaults={"seeds": 3, "n": 20, "iterations": 3000, "out": "results/matrix"})
    matrix.set_defaults(handler=_command_matrix)

    sweep = sub.add_parser(
        "sweep",
        parents=[common],
        help="grid of games × learners × planners × seeds",
        formatter_class=formatter,
    )
    sweep.add_argument(
        "--games",
        type=lambda text: _names(text, "game", _game_names()),
        required=True,
        help=f"comma-separated, from {games}",
    )
    sweep.add_argument(
        "--learners",
        type=lambda text: _names(text, "learner", learner_registry()),
        required=True,
        help=f"comma-separated, from {learners}",
    )
    sweep.add_argument(
        "--planners",
        type=lambda text: _names(text, "planner", planner_registry()),
        required=True,
        help=f"comma-separated, from {planners}",
    )
    sweep.add_argument(
        "--noise",
        type=_non_negative_float,
        default=0.0,
        help="std of Gaussian noise on the followers' feedback",
    )
    sweep.add_argument(
        "--stop-at-gap", type=float, default=None, help="stop a trial once its objective gap is at most this"
    )
    sweep.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KIND.KEY=VALUE",
        help="applies to every entry of that kind having the field",
    )
    grid_options(sweep, defaults={"seeds": 1, "n": None, "iterations": 300})
    sweep.set_defaults(handler=_command_sweep)

    plot = sub.add_parser(
        "plot", parents=[common], help="redraw a figure from saved results", formatter_class=formatter
    )
    plot.add_argument("directory", help="a run or sweep directory, or a comparison JSON file")
    plot.add_argument("--out", default=None, help="figure path (default: beside the results)")
    plot.set_defaults(handler=_command_plot)
    return parser


def _command_first(argv: list[str]) -> list[str]:
    """Options may come before the subcommand: move the first subcommand name to the front
    (``compare`` when there is none, the main job)."""
    for index, token in enumerate(argv):
        if token in COMMANDS:
            return [token, *argv[:index], *argv[index + 1 :]]
        if token in ("-h", "--help") and index == 0:
            return argv
    return ["compare", *argv]


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``incentive-bench`` (see the module docstring); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    args = parser.parse_args(_command_first(argv))
    try:
        return args.handler(args)
    except ValueError as error:
        print(f"incentive-bench {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
