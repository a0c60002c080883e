"""Experiment runner: game × learner × planner for N iterations, with metrics, checkpoints,
atomic results and plots; and the ``incentive-bench`` console script (the main job).

One iteration follows the planners' protocol: ``x ← planner.advance_followers(learner, …)``
(one learner step, or a solved lower level for double loops), then
``θ ← planner.update(θ, x, k)``. Recorded per iteration (SPEC §5), at the planner's estimate
``θ̂ = planner.incentive_estimate(θ)``:

* ``objective_gap``: ``(f(θ̂, x*(θ̂)) − f*) / |f*|`` with the exact equilibrium solver;
* ``incentive_gap``: ``‖θ̂ − θ*‖²`` when the game says θ* is unique, else ``None``;
* ``equilibrium_gap``: ``‖x_{k+1} − x*(θ_k)‖²``, the followers' distance to the equilibrium of
  the incentive they responded to (the paper's ``ε^x_{k+1}``);
* ``wall_time_s``: cumulative time spent in the learner and planner (metrics excluded).

Runs checkpoint every ``checkpoint_every`` iterations (config, iterate, planner state, the
random generator's state, metrics so far) and resume from a checkpoint with the same config:
every recorded field except the wall times equals an uninterrupted run's.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
from tqdm import tqdm

from agents import BestResponse, EuclideanMirrorDescent, jacobian_norm
from incentive_envs import (
    AggregativeGame,
    AggregativeParams,
    CournotGame,
    CournotParams,
    OscillatorGame,
    OscillatorParams,
)
from incentive_envs.io import save_figure_atomic, write_json_atomic
from incentive_envs.validation import check_positive_int, check_scalar
from planners.baselines import NoIncentivePlanner, OraclePlanner, ZerothOrderPlanner
from planners.double_loop import DoubleLoopPlanner
from planners.single_loop import SingleLoopPlanner
from planners.social_gradient import SocialGradientPlanner

GAMES = {
    "cournot": lambda c: CournotGame(CournotParams.paper(n=c.n, k=c.k, seed=c.instance_seed)),
    "aggregative": lambda c: AggregativeGame(AggregativeParams.default(n=c.n, seed=c.instance_seed)),
    "oscillators": lambda c: OscillatorGame(OscillatorParams.default(n=c.n, seed=c.instance_seed)),
}
LEARNERS = ("gradient", "best_response")
PLANNERS = (
    "single_loop",
    "double_loop_id",
    "double_loop_ad",
    "zeroth_order",
    "social_gradient",
    "none",
    "oracle",
)
DEFAULT_COMPARISON = ("single_loop", "double_loop_id", "double_loop_ad", "zeroth_order", "none", "oracle")


@dataclass(frozen=True)
class ExperimentConfig:
    """One run of game × learner × planner."""

    game: str = "cournot"
    """``cournot`` (paper §7 instance), ``aggregative`` or ``oscillators``."""
    n: int = 100
    """Number of agents."""
    k: float = 0.0
    """Cournot production-cost curvature (ignored by the other games)."""
    instance_seed: int = 0
    """Seed of the game's random parameters."""
    learner: str = "gradient"
    """``gradient`` (projected gradient play) or ``best_response`` (inertial)."""
    learner_step: float | None = None
    """Learner step; default ``1.5/‖∂v/∂x‖₂`` at the start for gradient play, 0.03 for best response."""
    planner: str = "single_loop"
    """One of ``PLANNERS``."""
    planner_step: float = 1.0
    """``α`` of the gradient planners (constant step)."""
    spsa_gain: float = 0.1
    """Gain ``a`` of the zeroth-order (SPSA) planner; larger values diverge on the default game."""
    iterations: int = 300
    """Maximum number of iterations."""
    stop_at_gap: float | None = None
    """Stop once the relative objective gap is at most this (``None``: run all iterations)."""
    seed: int = 0
    """Seed of the run's generator (feedback noise, SPSA probes)."""
    feedback_noise_std: float = 0.0
    """Standard deviation of Gaussian noise on the learners' gradient feedback."""
    inner_tolerance: float = 1e-6
    """Double loops solve the lower level until ``‖Δx‖∞ <= inner_tolerance``."""

    def __post_init__(self) -> None:
        if self.game not in GAMES:
            raise ValueError(f"game must be one of {sorted(GAMES)}, got {self.game!r}")
        if self.learner not in LEARNERS:
            raise ValueError(f"learner must be one of {LEARNERS}, got {self.learner!r}")
        if self.planner not in PLANNERS:
            raise ValueError(f"planner must be one of {PLANNERS}, got {self.planner!r}")
        for name in ("n", "iterations"):
            check_positive_int(getattr(self, name), name)
        for name in ("seed", "instance_seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        check_scalar(self.k, "k", low=0.0)
        check_scalar(self.planner_step, "planner_step", low=0.0, low_inclusive=False)
        check_scalar(self.spsa_gain, "spsa_gain", low=0.0, low_inclusive=False)
        check_scalar(self.feedback_noise_std, "feedback_noise_std", low=0.0)
        check_scalar(self.inner_tolerance, "inner_tolerance", low=0.0, low_inclusive=False)
        if self.learner_step is not None:
            check_scalar(self.learner_step, "learner_step", low=0.0, low_inclusive=False)
        if self.stop_at_gap is not None:
            check_scalar(self.stop_at_gap, "stop_at_gap", low=0.0, low_inclusive=False)


def make_game(config: ExperimentConfig):
    return GAMES[config.game](config)


def make_learner(config: ExperimentConfig, game):
    if config.learner == "best_response":
        return BestResponse(0.03 if config.learner_step is None else config.learner_step)
    step = config.learner_step
    if step is None:
        start = game.strategy_set.project(np.zeros(game.strategy_set.dim))
        step = 1.5 / jacobian_norm(game, start, game.incentive_set.project(np.zeros(game.incentive_set.dim)))
    return EuclideanMirrorDescent(game.strategy_set, step)


def make_planner(config: ExperimentConfig, game, learner, rng: np.random.Generator):
    name, alpha = config.planner, config.planner_step
    if name == "single_loop":
        beta = learner.step_size if isinstance(learner, EuclideanMirrorDescent) else 1.0
        return SingleLoopPlanner(game, alpha, learner_step=beta)
    if name in ("double_loop_id", "double_loop_ad"):
        differentiation = "implicit" if name == "double_loop_id" else "unrolled"
        return DoubleLoopPlanner(
            game, alpha, differentiation=differentiation, tolerance=config.inner_tolerance
        )
    if name == "zeroth_order":
        return ZerothOrderPlanner(game, rng, gain=config.spsa_gain, perturbation=0.5, probe_steps=10)
    if name == "social_gradient":
        return SocialGradientPlanner(game, alpha)
    if name == "none":
        return NoIncentivePlanner(game)
    return OraclePlanner(game)


def _config_from(raw: dict) -> ExperimentConfig:
    known = {field.name for field in fields(ExperimentConfig)}
    return ExperimentConfig(**{key: value for key, value in raw.items() if key in known})


def run_experiment(
    config: ExperimentConfig,
    *,
    json_path: str | Path | None = None,
    plot_path: str | Path | None = None,
    checkpoint_path: str | Path | None = None,
    checkpoint_every: int = 100,
    stop_after: int | None = None,
    progress: bool = True,
) -> dict | None:
    """Run ``config`` (see the module docstring) and return the result dict.

    Parameters
    ----------
    json_path, plot_path : path, optional
        Where to write the result (atomically) and a convergence plot.
    checkpoint_path : path, optional
        Checkpoint file; an existing one with the same config is resumed.
    checkpoint_every : int
        Iterations between checkpoints.
    stop_after : int, optional
        Pause after this many iterations in total, leaving a checkpoint, and return ``None``
        (split a long run; a later call resumes it).
    progress : bool
        Show a tqdm progress bar.
    """
    if not isinstance(config, ExperimentConfig):
        raise ValueError(f"config must be an ExperimentConfig, got {type(config).__name__}")
    check_positive_int(checkpoint_every, "checkpoint_every")
    if stop_after is not None and checkpoint_path is None:
        raise ValueError("stop_after needs a checkpoint_path to resume from")
    game = make_game(config)
    rng = np.random.default_rng(config.seed)
    learner = make_learner(config, game)
    planner = make_planner(config, game, learner, rng)
    f_star = game.social_optimum().value
    try:
        first_best = game.first_best_incentive()
        theta_star = first_best.theta if first_best.unique else None
    except (NotImplementedError, ValueError):
        theta_star = None

    record = {
        "objective_gap": [],
        "incentive_gap": [] if theta_star is not None else None,
        "equilibrium_gap": [],
        "wall_time_s": [],
    }
    theta, x, start, elapsed = planner.initial_incentive(), game.strategy_set.uniform_point(), 0, 0.0
    checkpoint_path = None if checkpoint_path is None else Path(checkpoint_path)
    if checkpoint_path is not None and checkpoint_path.exists():
        saved = json.loads(checkpoint_path.read_text())
        if _config_from(saved["config"]) != config:
            raise ValueError(f"checkpoint {checkpoint_path} belongs to a different config: {saved['config']}")
        start, elapsed = saved["iteration"], saved["elapsed_s"]
        theta, x = np.asarray(saved["theta"]), np.asarray(saved["x"])
        record = saved["record"]
        planner.load_state_dict(saved["planner"])
        rng.bit_generator.state = saved["rng"]

    def save_checkpoint(iteration: int) -> None:
        write_json_atomic(
            checkpoint_path,
            {
                "config": asdict(config),
                "iteration": iteration,
                "elapsed_s": elapsed,
                "theta": theta.tolist(),
                "x": x.tolist(),
                "record": record,
                "planner": planner.state_dict(),
                "rng": rng.bit_generator.state,
            },
        )

    done = start > 0 and config.stop_at_gap is not None and record["objective_gap"][-1] <= config.stop_at_gap
    bar = tqdm(total=config.iterations, initial=start, desc=config.planner, disable=not progress, leave=False)
    k = start
    while k < config.iterations and not done:
        began = time.perf_counter()
        responded_to = theta
        x = planner.advance_followers(learner, x, theta, k, rng, config.feedback_noise_std)
        theta = planner.update(theta, x, k)
        elapsed += time.perf_counter() - began
        estimate = planner.incentive_estimate(theta)
        gap = (game.equilibrium_social_cost(estimate) - f_star) / abs(f_star)
        record["objective_gap"].append(float(gap))
        record["equilibrium_gap"].append(float(np.sum((x - game.equilibrium(responded_to)) ** 2)))
        record["wall_time_s"].append(elapsed)
        if theta_star is not None:
            record["incentive_gap"].append(float(np.sum((estimate - theta_star) ** 2)))
        k += 1
        bar.update(1)
        done = config.stop_at_gap is not None and gap <= config.stop_at_gap
        if checkpoint_path is not None and (k % checkpoint_every == 0 or k == stop_after):
            save_checkpoint(k)
        if stop_after is not None and k >= stop_after and k < config.iterations and not done:
            bar.close()
            return None
    bar.close()

    result = {
        "config": asdict(config),
        "f_star": f_star,
        "iterations": k,
        **record,
        "final": {
            "objective_gap": record["objective_gap"][-1],
            "incentive_gap": None if theta_star is None else record["incentive_gap"][-1],
            "equilibrium_gap": record["equilibrium_gap"][-1],
            "total_time_s": elapsed,
            "time_per_iter_ms": 1e3 * elapsed / k,
        },
        "incentive": planner.incentive_estimate(theta).tolist(),
    }
    if json_path is not None:
        write_json_atomic(json_path, result)
    if plot_path is not None:
        _plot(
            {config.planner: result},
            plot_path,
            title=f"{config.game}, n = {config.n}, {config.learner} learners",
        )
    if checkpoint_path is not None:
        save_checkpoint(k)
    return result


def _plot(results: dict, path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (objective, equilibrium) = plt.subplots(1, 2, figsize=(11, 4))
    styles = ("-", "--", "-.", ":")
    for index, (name, result) in enumerate(results.items()):
        steps = np.arange(1, result["iterations"] + 1)
        style = {
            "linestyle": styles[index % len(styles)],
            "marker": "o" if len(steps) < 5 else None,
            "label": name,
        }
        objective.semilogy(steps, np.maximum(np.abs(result["objective_gap"]), 1e-16), **style)
        equilibrium.semilogy(steps, np.maximum(result["equilibrium_gap"], 1e-30), **style)
    objective.set(xlabel="iteration", ylabel="relative objective gap (floored at 1e-16)", title=title)
    equilibrium.set(
        xlabel="iteration", ylabel=r"$\|x_{k+1} - x^*(\theta_k)\|^2$", title="lower-level equilibrium gap"
    )
    objective.legend(fontsize=8)
    save_figure_atomic(figure, path)
    plt.close(figure)


def compare_planners(
    planner_names,
    base_config: ExperimentConfig,
    *,
    json_path=None,
    plot_path=None,
    progress: bool = True,
) -> dict:
    """Run each planner with ``base_config`` otherwise unchanged; print a table, write one JSON
    ``{"runs": {name: result}}`` and one plot of all objective-gap curves."""
    runs = {}
    for name in planner_names:
        config = ExperimentConfig(**{**asdict(base_config), "planner": name})
        runs[name] = run_experiment(config, progress=progress)
    print(
        f"\n{base_config.game} (n = {base_config.n}, k = {base_config.k}), {base_config.learner} learners"
        + (f", stop at relative gap {base_config.stop_at_gap:g}" if base_config.stop_at_gap else "")
    )
    print(f"{'planner':<16}{'rel. objective gap':>20}{'iterations':>12}{'total s':>10}{'ms / it':>10}")
    for name, result in runs.items():
        final = result["final"]
        print(
            f"{name:<16}{final['objective_gap']:>20.3e}{result['iterations']:>12d}"
            f"{final['total_time_s']:>10.3f}{final['time_per_iter_ms']:>10.3f}"
        )
    payload = {"runs": runs}
    if json_path is not None:
        write_json_atomic(json_path, payload)
    if plot_path is not None:
        _plot(runs, plot_path, title=f"{base_config.game}, n = {base_config.n}: planners compared")
    return payload


def main(argv=None) -> None:
    """Console entry point ``incentive-bench``.

    Without a sub-command it runs the main job: every Table 1 planner plus SPSA, no incentive
    and the oracle on the paper's n = 100 emission-tax game, each until the relative objective
    gap is 1e-4 or 300 iterations, and writes ``results/compare.json`` and ``results/compare.png``.
    """
    parser = argparse.ArgumentParser(prog="incentive-bench", description="Run incentive-design experiments.")
    parser.add_argument("--json", default="results/compare.json")
    parser.add_argument("--plot", default="results/compare.png")
    parser.add_argument("--no-progress", action="store_true")
    sub = parser.add_subparsers(dest="command")
    single = sub.add_parser("run", help="one game × learner × planner run")
    for field in fields(ExperimentConfig):  # annotations are strings: "int", "str", "float | None"…
        kind = {"int": int, "str": str}.get(field.type, float)
        single.add_argument(f"--{field.name.replace('_', '-')}", type=kind, default=field.default)
    single.add_argument("--checkpoint", default=None)
    single.add_argument("--checkpoint-every", type=int, default=100)
    args = parser.parse_args(argv)
    if args.command == "run":
        config = ExperimentConfig(
            **{field.name: getattr(args, field.name) for field in fields(ExperimentConfig)}
        )
        result = run_experiment(
            config,
            json_path=args.json,
            plot_path=args.plot,
            checkpoint_path=args.checkpoint,
            checkpoint_every=args.checkpoint_every,
            progress=not args.no_progress,
        )
        print(json.dumps(result["final"], indent=2))
    else:
        compare_planners(
            DEFAULT_COMPARISON,
            ExperimentConfig(iterations=300, stop_at_gap=1e-4),
            json_path=args.json,
            plot_path=args.plot,
            progress=not args.no_progress,
        )
    print(f"wrote {args.json} and {args.plot}")


if __name__ == "__main__":
    main()
