"""Sweeps: a grid of game × learner × planner × seed, run locally or on a Ray cluster.

Each *trial* is one :class:`~planners.experiment.ExperimentConfig` run in memory by a worker
(a process of a local pool, or a Ray task on any node of a cluster) that returns its result
to the driver; the driver alone writes files, so a multi-node cluster needs no shared file
system. Files in the sweep directory:

* ``trials/<game>-<learner>-<planner>-s<seed>.json`` — a finished trial's full result, or its
  error (``{"status": "failed", "error": …}``);
* ``summary.json`` — ``{"trials": [{game, learner, planner, seed, status,
  final_objective_gap, final_welfare (episodic games), iterations, wall_s}, …], "skipped": [invalid combinations],
  "aggregate": [mean ± std over seeds per game × learner × planner]}``;
* ``summary.txt`` and ``summary.png`` — the aggregated table and a bar chart.

Rerunning the same command skips finished trials (failed ones are retried). Every worker pins
BLAS/OpenMP to one thread (``threadpoolctl``), so the same seeds give the same numbers on both
backends and trials do not oversubscribe the cores.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agents.registry import spec as learner_spec
from incentive_envs.io import write_json_atomic
from incentive_envs.registry import spec as env_spec
from incentive_envs.validation import check_choice, check_positive_int
from planners.experiment import ExperimentConfig, run_experiment
from planners.registry import spec as planner_spec
from planners.registry import valid

BACKENDS = ("local", "ray")


@dataclass(frozen=True)
class Trial:
    """One cell × seed of a sweep."""

    key: str
    config: ExperimentConfig


def plan_trials(
    games: Iterable[str],
    learners: Iterable[str],
    planners: Iterable[str],
    seeds: int,
    *,
    n: int | None = None,
    iterations: int = 300,
    game_params: dict | None = None,
    learner_params: dict | None = None,
    planner_params: dict | None = None,
    feedback_noise_std: float = 0.0,
    stop_at_gap: float | None = None,
) -> tuple[list[Trial], list[list[str]]]:
    """The valid trials of the grid and the invalid combinations (skipped, listed).

    ``n`` sets each game's size field (``EnvSpec.size_field``; games without one keep their
    default). Per-kind ``*_params`` apply to every game/learner/planner that has the field.
    """
    seeds = check_positive_int(seeds, "seeds", 10_000)
    trials, skipped = [], []
    for game_name in games:
        game = env_spec(game_name)
        for learner_name in learners:
            learner = learner_spec(learner_name)
            for planner_name in planners:
                planner = planner_spec(planner_name)
                if not valid(game, learner, planner):
                    skipped.append([game.game, learner.name, planner.name])
                    continue
                params = _applicable(game.parameters(), game_params)
                if n is not None and game.size_field is not None:
                    params[game.size_field] = n
                for seed in range(seeds):
                    config = ExperimentConfig(
                        game=game.game,
                        learner=learner.name,
                        planner=planner.name,
                        game_params=params,
                        learner_params=_applicable(learner.parameters(), learner_params),
                        planner_params=_applicable(planner.parameters(), planner_params),
                        iterations=iterations,
                        seed=seed,
                        feedback_noise_std=feedback_noise_std,
                        stop_at_gap=stop_at_gap,
                    )
                    trials.append(Trial(f"{game.game}-{learner.name}-{planner.name}-s{seed}", config))
    return trials, skipped


def _applicable(fields: dict, params: dict | None) -> dict:
    return {key: value for key, value in (params or {}).items() if key in fields}


def run_trial(config_json: dict) -> dict:
    """Run one trial in the calling process with BLAS/OpenMP pinned to one thread; returns the
    result, or ``{"status": "failed", "error": …}`` (never raises: a failure is recorded)."""
    from threadpoolctl import threadpool_limits

    try:
        with threadpool_limits(limits=1):
            result = run_experiment(ExperimentConfig.from_json(config_json), progress=False, plot=False)
        return {"status": "finished", **result}
    except Exception as error:  # noqa: BLE001 - a failed trial is data, recorded with its error
        return {
            "status": "failed",
            "config": config_json,
            "error": f"{type(error).__name__}: {error}",
            "traceback": traceback.format_exc(limit=8),
        }


def _local_backend(configs: list[dict], on_result: Callable[[int, dict], None], workers: int) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {pool.submit(run_trial, config): index for index, config in enumerate(configs)}
        for future in as_completed(futures):
            on_result(futures[future], future.result())


def _ray_backend(configs: list[dict], on_result: Callable[[int, dict], None], address: str | None) -> None:
    try:
        import ray
    except ImportError:
        raise ValueError("the ray backend needs Ray: pip install 'incentive-envs[distributed]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    try:
        remote = ray.remote(num_cpus=1)(run_trial)
        pending = {remote.remote(config): index for index, config in enumerate(configs)}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for reference in done:
                on_result(pending.pop(reference), ray.get(reference))
    finally:
        if started_here:
            ray.shutdown()


def run_sweep(
    trials: list[Trial],
    skipped: list[list[str]],
    out: str | os.PathLike,
    *,
    backend: str = "local",
    address: str | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> dict:
    """Run the ``trials`` not finished yet in ``out`` on ``backend``; write and return the summary.

    Parameters
    ----------
    trials, skipped : from :func:`plan_trials`
    out : path
        The sweep directory (module docstring).
    backend : {"local", "ray"}
        ``local``: a process pool over ``workers`` processes (default: the machine's cores);
        ``ray``: one Ray task per trial, on ``ray.init(address)`` — the local machine by
        default, an existing cluster with ``address`` (e.g. ``"auto"`` or ``"host:6379"``).
    """
    from tqdm import tqdm

    backend = check_choice(backend, "backend", BACKENDS)
    if address is not None and backend != "ray":
        raise ValueError("address only applies to the ray backend")
    workers = (os.cpu_count() or 1) if workers is None else check_positive_int(workers, "workers", 1024)
    directory = Path(out)
    trial_directory = directory / "trials"
    trial_directory.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    todo = []
    for trial in trials:
        path = trial_directory / f"{trial.key}.json"
        previous = _read_trial(path)
        if (
            previous is not None
            and previous.get("status") == "finished"
            and previous["config"] == trial.config.to_json()
        ):
            results[trial.key] = previous
        else:
            todo.append(trial)
    bar = tqdm(total=len(todo), desc=f"sweep ({backend})", disable=not progress)

    def on_result(index: int, result: dict) -> None:
        trial = todo[index]
        write_json_atomic(trial_directory / f"{trial.key}.json", result)
        results[trial.key] = result
        bar.update(1)

    configs = [trial.config.to_json() for trial in todo]
    if configs:
        if backend == "local":
            _local_backend(configs, on_result, workers)
        else:
            _ray_backend(configs, on_result, address)
    bar.close()
    summary = summarize(trials, results, skipped)
    write_json_atomic(directory / "summary.json", summary)
    (directory / "summary.txt").write_text(summary_table(summary) + "\n")
    if summary["aggregate"]:
        from planners.plots import plot_sweep

        plot_sweep(summary["aggregate"], directory / "summary.png", title=f"sweep: {len(trials)} trials")
    return summary


def _read_trial(path: Path) -> dict | None:
    import json

    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None  # a damaged trial file is simply rerun
    return data if isinstance(data, dict) else None


def summarize(trials: list[Trial], results: dict[str, dict], skipped: list[list[str]]) -> dict:
    """The summary payload (module docstring) of ``results`` keyed by trial key."""
    rows = []
    for trial in trials:
        result = results.get(trial.key, {"status": "not run"})
        config = trial.config
        row = {
            "game": config.game,
            "learner": config.learner,
            "planner": config.planner,
            "seed": config.seed,
            "status": result["status"],
            "final_objective_gap": None,
            "final_welfare": None,
            "iterations": None,
            "wall_s": None,
        }
        if result["status"] == "finished":
            final = result["final"]
            row.update(
                final_objective_gap=final.get("objective_gap"),
                final_welfare=final.get("welfare"),
                iterations=result["iterations"],
                wall_s=final["wall_time_s"],
            )
        elif result["status"] == "failed":
            row["error"] = result["error"]
        rows.append(row)
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["game"], row["learner"], row["planner"]), []).append(row)
    aggregate = []
    for (game, learner, planner), members in groups.items():
        finished = [row for row in members if row["status"] == "finished"]
        entry = {
            "game": game,
            "learner": learner,
            "planner": planner,
            "seeds": len(members),
            "finished": len(finished),
        }
        for key in ("final_objective_gap", "final_welfare"):
            values = np.array([row[key] for row in finished if row[key] is not None])
            entry[f"{key}_mean"] = float(values.mean()) if values.size else None
            entry[f"{key}_std"] = float(values.std()) if values.size else None
        aggregate.append(entry)
    return {"trials": rows, "skipped": skipped, "aggregate": aggregate}


def summary_table(summary: dict) -> str:
    """The aggregated table: final objective gap (games with a model) or collective return
    (episodic games), mean ± std over seeds."""
    lines = [
        f"{'game':<14}{'learner':<17}{'planner':<17}{'finished':>9}  final objective gap / return (mean ± std)"
    ]
    for row in summary["aggregate"]:
        if row["final_objective_gap_mean"] is not None:
            value = f"{row['final_objective_gap_mean']:.3e} ± {row['final_objective_gap_std']:.1e}"
        elif row["final_welfare_mean"] is not None:
            value = f"return {row['final_welfare_mean']:.4g} ± {row['final_welfare_std']:.2g}"
        else:
            value = "—"
        lines.append(
            f"{row['game']:<14}{row['learner']:<17}{row['planner']:<17}{row['finished']:>4}/{row['seeds']:<4}  {value}"
        )
    failed = [row for row in summary["trials"] if row["status"] == "failed"]
    for row in failed:
        lines.append(
            f"failed: {row['game']}-{row['learner']}-{row['planner']}-s{row['seed']}: {row['error']}"
        )
    if summary["skipped"]:
        lines.append("skipped (not applicable): " + ", ".join("/".join(cell) for cell in summary["skipped"]))
    return "\n".join(lines)
