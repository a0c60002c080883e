"""Experiments over the registries: one game × learner × planner run with results, plots and
crash-safe checkpoints, and the planner comparison (the main job).

A run directory holds

* ``metrics.jsonl`` — one JSON line per iteration, appended (a checkpoint's cost does not grow
  with the history);
* ``state.json`` — a small checkpoint (config, iteration, joint strategy, incentive, the
  planner's, learner's and generator's states, time spent), replaced atomically; episodic
  games' designers hold torch tensors, so theirs is ``state.pt`` (``torch.save``);
* ``result.json`` and ``plot.png`` — written when the run finishes;
* ``.lock`` — held while a run uses the directory, so two runs cannot share it.

A run killed at any point resumes from ``state.json`` (metrics lines beyond it are dropped and
recomputed) and reproduces an uninterrupted run exactly, except the wall and CPU times.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType

import numpy as np

from agents.registry import spec as learner_spec
from incentive_envs.episodic import EpisodicTask
from incentive_envs.io import remove_stale_temporaries, write_bytes_atomic, write_json_atomic
from incentive_envs.registry import spec as env_spec
from incentive_envs.validation import (
    check_bool,
    check_generator_state,
    check_int,
    check_positive_int,
    check_scalar,
    check_seed,
)
from planners.engine import EPISODIC_METRICS, MODEL_METRICS, Record, simulate
from planners.registry import spec as planner_spec
from planners.registry import valid

MAX_ITERATIONS = 10**9
"""Largest accepted number of iterations of one run."""


def _frozen_mapping(value, name: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise ValueError(f"{name} must be a mapping of parameter names to values, got {value!r}")
    if not all(isinstance(key, str) for key in value):
        raise ValueError(f"{name} keys must be parameter names, got {list(value)!r}")
    return MappingProxyType(dict(value))


@dataclass(frozen=True)
class ExperimentConfig:
    """One run of game × learner × planner; names and parameters from the registries."""

    game: str = "cournot"
    """A game name or env id of :func:`incentive_envs.registry`."""
    learner: str = "gradient"
    """A learner of :func:`agents.registry.registry`."""
    planner: str = "single_loop"
    """A planner of :func:`planners.registry.registry`."""
    game_params: Mapping = field(default_factory=dict)
    """Fields of the game's config dataclass."""
    learner_params: Mapping = field(default_factory=dict)
    """Fields of the learner's config dataclass."""
    planner_params: Mapping = field(default_factory=dict)
    """Fields of the planner's config dataclass."""
    iterations: int = 300
    """Maximum number of iterations."""
    seed: int = 0
    """Seed of the run's generator (feedback noise) and of stochastic planners."""
    feedback_noise_std: float = 0.0
    """Standard deviation of Gaussian noise on the followers' gradient/payoff feedback."""
    stop_at_gap: float | None = None
    """Stop once the objective gap is at most this (``None``: run every iteration)."""
    metric_every: int = 1
    """Evaluate the metrics every this many iterations (and at the last one)."""

    def __post_init__(self) -> None:
        game, learner, planner = env_spec(self.game), learner_spec(self.learner), planner_spec(self.planner)
        object.__setattr__(self, "game", game.game)
        if not valid(game, learner, planner):
            raise ValueError(
                f"{planner.name} with {learner.name} learners does not apply to {game.game} "
                f"(game capabilities {sorted(game.capabilities)}; learner needs {sorted(learner.requires)}; "
                f"planner needs {sorted(planner.requires)} and {planner.learner_requirement!r} learners)"
            )
        env_only = sorted(set(self.game_params) & game.env_only_parameters)
        if env_only:
            raise ValueError(
                f"game_params {env_only} configure the env adapter only; the engine plays the model "
                "directly (use feedback_noise_std of the run for noisy feedback)"
            )
        for name, owner in (("game_params", game), ("learner_params", learner), ("planner_params", planner)):
            params = _frozen_mapping(getattr(self, name), name)
            # the JSON form (tuples as lists), so a config equals itself after a round trip
            params = json.loads(json.dumps(dict(params), default=_json_default))
            try:  # validates names and values now, not mid-run
                owner.make_config(**params)
            except ValueError as error:
                raise ValueError(f"{name}: {error}") from None
            object.__setattr__(self, name, MappingProxyType(params))
        object.__setattr__(
            self, "iterations", check_positive_int(self.iterations, "iterations", MAX_ITERATIONS)
        )
        object.__setattr__(self, "seed", check_seed(self.seed))
        object.__setattr__(
            self, "feedback_noise_std", check_scalar(self.feedback_noise_std, "feedback_noise_std", low=0.0)
        )
        if self.stop_at_gap is not None:
            object.__setattr__(
                self,
                "stop_at_gap",
                check_scalar(self.stop_at_gap, "stop_at_gap", low=0.0, low_inclusive=False),
            )
        object.__setattr__(
            self, "metric_every", check_positive_int(self.metric_every, "metric_every", MAX_ITERATIONS)
        )

    def to_json(self) -> dict:
        """A plain, JSON-serialisable dict (``from_json`` inverts it)."""
        data = {field.name: getattr(self, field.name) for field in fields(self)}
        for name in ("game_params", "learner_params", "planner_params"):
            data[name] = dict(data[name])
        return data

    @classmethod
    def from_json(cls, data, source: str = "config") -> ExperimentConfig:
        if not isinstance(data, dict):
            raise ValueError(f"{source} must be a JSON object, got {type(data).__name__}")
        try:
            return cls(**data)
        except TypeError as error:
            raise ValueError(f"{source} has unknown fields: {error}") from None
        except ValueError as error:
            raise ValueError(f"{source}: {error}") from None


def _json_default(value):
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, np.generic):
        return value.item()
    raise ValueError(
        f"parameter value {value!r} is not JSON-serialisable; pass plain numbers, strings or lists"
    )


def build(config: ExperimentConfig):
    """``(game, learner, planner)`` of ``config``, built from the registries."""
    follower = learner_spec(config.learner)
    game_spec = env_spec(config.game)
    if follower.feedback == "rollouts":
        game = game_spec.make_task(**config.game_params)
    else:
        game = game_spec.make_game(**config.game_params)
    learner = follower.make(game, config.seed, **config.learner_params)
    planner = planner_spec(config.planner).make(game, learner, config.seed, **config.planner_params)
    return game, learner, planner


def record_json(record: Record) -> dict:
    """The JSON line of a record: iteration, times and metrics."""
    return {
        "iteration": record.iteration,
        "wall_time_s": record.wall_time_s,
        "cpu_time_s": record.cpu_time_s,
        **record.metrics,
    }


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(f"out {str(directory)!r} cannot be created: {error.strerror}") from None
    handle = open(directory / ".lock", "a")  # noqa: SIM115 - held for the block
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ValueError(f"another run is using {str(directory)!r} (its .lock is held)") from None
        yield
    finally:
        handle.close()


def _load_state(path: Path) -> dict:
    """A run state: JSON (``state.json``), or torch's format (``state.pt``, episodic runs whose
    designers hold tensors; loaded with pickle, so only resume runs you wrote yourself)."""
    try:
        if path.suffix == ".pt":
            import torch

            data = torch.load(path, weights_only=False)
        else:
            data = json.loads(path.read_text())
    except Exception as error:  # noqa: BLE001 - any unreadable state is reported with its file
        raise ValueError(f"{path}: cannot read the run state: {error}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return data


def _restore(state: dict, path: Path, config: ExperimentConfig, game, learner, planner, rng):
    """Validate ``state.json`` against the config and the objects; return (iteration, x, θ, times)."""
    expected = {
        "config",
        "iteration",
        "strategy",
        "incentive",
        "planner",
        "learner",
        "rng",
        "wall_time_s",
        "cpu_time_s",
    }
    missing, unknown = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unknown:
        raise ValueError(f"{path}: missing fields {missing}, unknown fields {unknown}")
    if ExperimentConfig.from_json(state["config"], f"{path}: config") != config:
        raise ValueError(f"{path} belongs to a different config: {state['config']}")
    iteration = check_int(state["iteration"], f"{path}: iteration", low=0, high=config.iterations)
    episodic = isinstance(game, EpisodicTask)
    x = None if episodic else game.validate_strategy(state["strategy"], f"{path}: strategy")
    theta = None if episodic else game.validate_incentive(state["incentive"], f"{path}: incentive")
    try:
        planner.load_state_dict(state["planner"])  # an episodic designer's state holds its learners'
        if not episodic:
            learner.load_state_dict(state["learner"])
        rng.bit_generator.state = check_generator_state(rng, state["rng"], "rng")
    except (TypeError, KeyError, ValueError) as error:
        raise ValueError(f"{path}: {error}") from None
    times = (
        check_scalar(state["wall_time_s"], f"{path}: wall_time_s", low=0.0),
        check_scalar(state["cpu_time_s"], f"{path}: cpu_time_s", low=0.0),
    )
    return iteration, x, theta, times


def _read_metrics(path: Path, count: int) -> list[dict]:
    """The first ``count`` lines of ``metrics.jsonl``; lines beyond a checkpoint are dropped."""
    if count == 0:
        return []
    lines = path.read_text().splitlines() if path.exists() else []
    if len(lines) < count:
        raise ValueError(f"{path}: {len(lines)} metric lines for a checkpoint at iteration {count}")
    records = []
    for number, line in enumerate(lines[:count], start=1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}:{number}: {error}") from None
    return records


def run_experiment(
    config: ExperimentConfig,
    *,
    out: str | os.PathLike | None = None,
    checkpoint_every: int = 100,
    stop_after: int | None = None,
    progress: bool = True,
    plot: bool = True,
) -> dict | None:
    """Run ``config``; return the result (``None`` when paused by ``stop_after``).

    Parameters
    ----------
    config : ExperimentConfig
    out : path, optional
        Run directory (module docstring). A directory holding a finished run is refused (never
        overwritten); one holding a checkpoint of the same config is resumed; of another
        config, refused. ``None``: run in memory only.
    checkpoint_every : int
        Iterations between checkpoints.
    stop_after : int, optional
        Pause after this many iterations in total, leaving a checkpoint, and return ``None``
        (split a long run; a later call resumes it). Needs ``out``.
    progress : bool
        Show a tqdm progress bar.
    plot : bool
        Write ``plot.png`` beside ``result.json``.

    Returns
    -------
    dict
        ``{"config", "f_star", "metrics": [one record per evaluated iteration], "final": the
        last record, "iterations", "incentive": the planner's final answer, "stopped": why}``.
    """
    from tqdm import tqdm

    if not isinstance(config, ExperimentConfig):
        raise ValueError(f"config must be an ExperimentConfig, got {type(config).__name__}")
    checkpoint_every = check_positive_int(checkpoint_every, "checkpoint_every", MAX_ITERATIONS)
    progress, plot = check_bool(progress, "progress"), check_bool(plot, "plot")
    if stop_after is not None:
        stop_after = check_int(stop_after, "stop_after", low=0, high=MAX_ITERATIONS)
        if out is None:
            raise ValueError("stop_after needs an out directory to resume from")
    if out is not None and not isinstance(out, (str, os.PathLike)):
        raise ValueError(f"out must be a directory path (str or os.PathLike), got {out!r}")
    directory = None if out is None else Path(out)
    if directory is not None and directory.exists() and not directory.is_dir():
        raise ValueError(f"out {str(directory)!r} exists and is not a directory")
    with contextlib.ExitStack() as stack:
        if directory is not None:
            stack.enter_context(_locked(directory))
            if (directory / "result.json").exists():
                raise ValueError(
                    f"{str(directory)!r} already holds a finished run (result.json); choose another out"
                )
            remove_stale_temporaries(directory)
        game, learner, planner = build(config)
        episodic = isinstance(game, EpisodicTask)
        rng = np.random.default_rng(config.seed)
        start, times, records = 0, (0.0, 0.0), []
        x, theta = (
            (None, None) if episodic else (game.strategy_set.uniform_point(), planner.initial_incentive())
        )
        state_path = None if directory is None else directory / ("state.pt" if episodic else "state.json")
        metrics_path = None if directory is None else directory / "metrics.jsonl"
        if state_path is not None and state_path.exists():
            start, x, theta, times = _restore(
                _load_state(state_path), state_path, config, game, learner, planner, rng
            )
            records = _read_metrics(metrics_path, start // config.metric_every)
            metrics_path.write_text("".join(json.dumps(record) + "\n" for record in records))
        elif metrics_path is not None:
            metrics_path.write_text("")
        pending: list[dict] = []
        current = {
            "iteration": start,
            "strategy": x,
            "incentive": theta,
            "wall_time_s": times[0],
            "cpu_time_s": times[1],
        }

        def checkpoint() -> None:
            with open(metrics_path, "a") as handle:
                handle.write("".join(json.dumps(line) + "\n" for line in pending))
                handle.flush()
                os.fsync(handle.fileno())
            pending.clear()
            state = {
                "config": config.to_json(),
                "iteration": current["iteration"],
                "strategy": None if episodic else current["strategy"].tolist(),
                "incentive": None if episodic else current["incentive"].tolist(),
                "planner": planner.state_dict(),
                "learner": None if episodic else learner.state_dict(),
                "rng": rng.bit_generator.state,
                "wall_time_s": current["wall_time_s"],
                "cpu_time_s": current["cpu_time_s"],
            }
            if episodic:
                import io

                import torch

                buffer = io.BytesIO()
                torch.save(state, buffer)
                write_bytes_atomic(state_path, buffer.getvalue())
            else:
                write_json_atomic(state_path, state)

        def reached(line: dict | None) -> bool:
            gap = None if line is None else line.get("objective_gap")
            return config.stop_at_gap is not None and gap is not None and gap <= config.stop_at_gap

        finished = start >= config.iterations or (records and reached(records[-1]))
        if stop_after is not None and stop_after <= start and not finished:
            checkpoint()
            return None
        with tqdm(
            total=config.iterations,
            initial=start,
            desc=f"{config.game}/{config.planner}",
            disable=not progress,
            leave=False,
        ) as bar:
            iterator = simulate(
                game,
                learner,
                planner,
                seed=rng,
                noise_std=config.feedback_noise_std,
                x0=x,
                theta0=theta,
                iterations=config.iterations,
                start=start,
                elapsed=times,
                metric_every=config.metric_every,
                metrics=MODEL_METRICS,
            )
            for record in () if finished else iterator:
                bar.update(1)
                current.update(
                    iteration=record.iteration,
                    strategy=record.strategy,
                    incentive=record.incentive,
                    wall_time_s=record.wall_time_s,
                    cpu_time_s=record.cpu_time_s,
                )
                line = record_json(record) if record.metrics else None
                if line is not None:
                    records.append(line)
                    pending.append(line)
                done = reached(line)
                if directory is not None and (record.iteration % checkpoint_every == 0 or done):
                    checkpoint()
                if done:
                    break
                if stop_after is not None and stop_after <= record.iteration < config.iterations:
                    checkpoint()
                    return None
        result = {
            "config": config.to_json(),
            "f_star": None if episodic else game.social_optimum().value,
            "iterations": current["iteration"],
            "stopped": "stop_at_gap" if records and reached(records[-1]) else "iterations",
            "metrics": records,
            "final": records[-1],
            "incentive": None if episodic else planner.incentive_estimate(current["incentive"]).tolist(),
            "metric_descriptions": EPISODIC_METRICS
            if episodic
            else {metric.name: metric.description for metric in MODEL_METRICS},
        }
        if directory is not None:
            checkpoint()
            if plot:
                from planners.plots import plot_runs

                plot_runs({config.planner: result}, directory / "plot.png", title=_title(config))
            write_json_atomic(directory / "result.json", result)
        return result


def _title(config: ExperimentConfig) -> str:
    params = ", ".join(f"{key}={value}" for key, value in config.game_params.items())
    return f"{config.game}{f' ({params})' if params else ''}, {config.learner} learners"


def compare_planners(
    planners,
    base: ExperimentConfig,
    *,
    planner_params: Mapping[str, Mapping] | None = None,
    progress: bool = True,
) -> dict:
    """Run every planner of ``planners`` with ``base`` otherwise unchanged (in memory).

    Returns ``{"runs": {planner: result}, "settings": base.to_json()}``.
    """
    planner_params = dict(planner_params or {})
    runs = {}
    for name in planners:
        config = ExperimentConfig(
            **{**base.to_json(), "planner": name, "planner_params": dict(planner_params.get(name, {}))}
        )
        runs[name] = run_experiment(config, progress=progress)
    return {"runs": runs, "settings": base.to_json()}


def comparison_table(payload: dict) -> str:
    """The comparison as a text table (objective gap at the exact equilibrium, iterations,
    CPU and wall time)."""
    settings = payload["settings"]
    lines = [
        f"{settings['game']} {dict(settings['game_params'])}, {settings['learner']} learners"
        + (f", stop at objective gap {settings['stop_at_gap']:g}" if settings["stop_at_gap"] else ""),
        f"{'planner':<16}{'objective gap':>15}{'played gap':>13}{'iterations':>12}{'CPU s':>10}{'wall s':>10}{'ms / it':>10}",
    ]
    for name, result in payload["runs"].items():
        final = result["final"]
        lines.append(
            f"{name:<16}{final['objective_gap']:>15.3e}{final['played_gap']:>13.3e}{result['iterations']:>12d}"
            f"{final['cpu_time_s']:>10.3f}{final['wall_time_s']:>10.3f}"
            f"{1e3 * final['cpu_time_s'] / result['iterations']:>10.3f}"
        )
    lines.append(
        "objective gap: at the exact equilibrium of the planner's incentive; played gap: of the followers' play"
    )
    return "\n".join(lines)
