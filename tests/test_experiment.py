"""The experiment engine: one loop, exact checkpoint/resume (in process and after SIGKILL),
crash-safe files, metrics from the exact model, the comparison and its plot."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from incentive_envs import io as result_io
from planners import ExperimentConfig, build, compare_planners, run_experiment, simulate
from planners.experiment import comparison_table


def _without_times(result: dict) -> dict:
    result = json.loads(json.dumps(result))
    for line in result["metrics"]:
        line.pop("wall_time_s"), line.pop("cpu_time_s")
    result["final"].pop("wall_time_s"), result["final"].pop("cpu_time_s")
    return result


CONFIGS = [
    ExperimentConfig(game_params={"n_firms": 20, "k": 1.0}, planner="single_loop", iterations=60),
    ExperimentConfig(
        game_params={"n_firms": 10, "k": 1.0},
        planner="zeroth_order",
        iterations=70,
        feedback_noise_std=0.3,
        seed=5,
    ),
    ExperimentConfig(game_params={"n_firms": 10, "k": 2.0}, planner="double_loop_id", iterations=25),
    ExperimentConfig(
        game="aggregative",
        game_params={"n_agents": 15},
        planner="social_gradient",
        planner_params={"step_size": 0.05},
        iterations=40,
    ),
    ExperimentConfig(
        game_params={"n_firms": 6, "k": 1.0},
        learner="hedge",
        learner_params={"grid_size": 51},
        planner="single_loop",
        iterations=40,
    ),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c.learner}-{c.planner}")
def test_checkpoint_resume_gives_the_same_result_as_an_uninterrupted_run(config, tmp_path):
    uninterrupted = run_experiment(config, progress=False)
    out = tmp_path / "run"
    assert run_experiment(config, out=out, checkpoint_every=7, stop_after=23, progress=False) is None
    assert json.loads((out / "state.json").read_text())["iteration"] == 23
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 23
    resumed = run_experiment(config, out=out, checkpoint_every=7, progress=False)
    assert _without_times(resumed) == _without_times(uninterrupted)
    assert _without_times(json.loads((out / "result.json").read_text())) == _without_times(uninterrupted)
    assert (out / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_run_killed_with_sigkill_resumes_to_the_uninterrupted_result(tmp_path):
    """The CLI is killed mid-run (no chance to clean up); rerunning the same command resumes
    from the last checkpoint and reproduces the uninterrupted run."""
    command = [
        sys.executable,
        "-m",
        "planners.cli",
        "run",
        "--game",
        "cournot",
        "--n",
        "30",
        "--param",
        "k=1",
        "--planner",
        "single_loop",
        "--iterations",
        "4000",
        "--checkpoint-every",
        "50",
        "--no-progress",
    ]
    reference = tmp_path / "reference"
    subprocess.run([*command, "--out", str(reference)], check=True, capture_output=True, timeout=300)
    out = tmp_path / "killed"
    process = subprocess.Popen(
        [*command, "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        state = out / "state.json"
        if state.exists() and json.loads(state.read_text())["iteration"] >= 200:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (out / "result.json").exists(), "killed too late to test resuming"
    subprocess.run([*command, "--out", str(out)], check=True, capture_output=True, timeout=300)
    killed = json.loads((out / "result.json").read_text())
    assert _without_times(killed) == _without_times(json.loads((reference / "result.json").read_text()))
    assert not list(out.glob(".*.tmp"))


def test_run_directories_are_protected(tmp_path):
    config = ExperimentConfig(game_params={"n_firms": 5}, iterations=20)
    out = tmp_path / "run"
    run_experiment(config, out=out, stop_after=5, progress=False)
    with pytest.raises(ValueError, match="different config"):
        run_experiment(
            ExperimentConfig(game_params={"n_firms": 5}, iterations=20, seed=1), out=out, progress=False
        )
    (out / ".state.json.x1y2.tmp").write_text("{")  # left by an interrupted write
    run_experiment(config, out=out, progress=False)
    assert not (out / ".state.json.x1y2.tmp").exists()
    with pytest.raises(ValueError, match="already holds a finished run"):
        run_experiment(config, out=out, progress=False)


def test_stop_after_zero_writes_a_checkpoint(tmp_path):
    out = tmp_path / "run"
    assert (
        run_experiment(
            ExperimentConfig(game_params={"n_firms": 4}, iterations=9), out=out, stop_after=0, progress=False
        )
        is None
    )
    assert json.loads((out / "state.json").read_text())["iteration"] == 0


def test_two_runs_cannot_share_a_directory(tmp_path):
    import fcntl

    out = tmp_path / "run"
    out.mkdir()
    with open(out / ".lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(ValueError, match="another run is using"):
            run_experiment(
                ExperimentConfig(game_params={"n_firms": 4}, iterations=3), out=out, progress=False
            )


@pytest.mark.parametrize(
    "damage, match",
    [
        (lambda state: '{"config": ', "cannot read the run state"),
        (lambda state: json.dumps({**state, "strategy": state["strategy"][:-1]}), "strategy must have shape"),
        (lambda state: json.dumps({**state, "iteration": 10**6}), "iteration must be <="),
        (
            lambda state: json.dumps({key: value for key, value in state.items() if key != "rng"}),
            "missing fields",
        ),
    ],
    ids=["truncated", "wrong-length strategy", "wrong iteration", "missing field"],
)
def test_damaged_checkpoints_are_refused_naming_the_file(tmp_path, damage, match):
    config = ExperimentConfig(game_params={"n_firms": 4}, iterations=9)
    out = tmp_path / "run"
    run_experiment(config, out=out, stop_after=4, progress=False)
    state_path = out / "state.json"
    state_path.write_text(damage(json.loads(state_path.read_text())))
    with pytest.raises(ValueError, match=match) as error:
        run_experiment(config, out=out, progress=False)
    assert "state.json" in str(error.value)


def test_result_files_follow_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        run_experiment(
            ExperimentConfig(game_params={"n_firms": 4}, iterations=3), out=tmp_path / "run", progress=False
        )
    finally:
        os.umask(previous)
    for name in ("result.json", "state.json", "plot.png"):
        assert (tmp_path / "run" / name).stat().st_mode & 0o777 == 0o644


def test_a_write_interrupted_midway_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "result.json"
    result_io.write_json_atomic(path, {"value": 1})
    before = path.read_bytes()

    def crash_midway(payload, handle, **kwargs):
        handle.write('{"value": ')
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(result_io.json, "dump", crash_midway)
    with pytest.raises(KeyboardInterrupt):
        result_io.write_json_atomic(path, {"value": 2})
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["result.json"]


def test_simulate_is_the_loop_and_records_both_gaps():
    config = ExperimentConfig(game_params={"n_firms": 20, "k": 1.0}, iterations=50)
    game, learner, planner = build(config)
    records = list(simulate(game, learner, planner, iterations=50))
    assert [record.iteration for record in records] == list(range(1, 51))
    first = records[0]
    # the played gap is that of what the followers played, the objective gap that of x*(θ̂)
    f_star = game.social_optimum().value
    assert first.metrics["played_gap"] == pytest.approx(
        (game.social_cost(first.strategy, first.responded_to) - f_star) / abs(f_star)
    )
    exact = game.equilibrium(first.estimate)
    assert first.metrics["objective_gap"] == pytest.approx(
        (game.social_cost(exact, first.estimate) - f_star) / abs(f_star)
    )
    assert first.metrics["equilibrium_gap"] == pytest.approx(
        np.sum((first.strategy - game.equilibrium(first.responded_to)) ** 2)
    )
    assert all(b.cpu_time_s >= a.cpu_time_s for a, b in zip(records, records[1:]))


def test_single_loop_reaches_the_unique_optimal_tax():
    # with k = 20 every firm produces at the optimum, so the optimal tax is unique
    result = run_experiment(
        ExperimentConfig(game_params={"n_firms": 20, "k": 20.0}, planner="single_loop", iterations=1500),
        progress=False,
    )
    assert result["final"]["incentive_gap"] < 1e-4 and result["final"]["objective_gap"] < 1e-4
    assert len(result["metrics"]) == 1500 and result["iterations"] == 1500
    shut_down = run_experiment(
        ExperimentConfig(game_params={"n_firms": 20, "k": 5.0}, planner="none", iterations=2), progress=False
    )
    assert shut_down["final"]["incentive_gap"] is None  # firms strictly shut at the optimum: θ* not unique


def test_incentive_gap_is_recorded_where_the_optimal_incentive_is_unique():
    result = run_experiment(
        ExperimentConfig(
            game="oscillators", game_params={"n_agents": 10}, planner="single_loop", iterations=300
        ),
        progress=False,
    )
    assert result["final"]["incentive_gap"] < 1e-10 and result["final"]["objective_gap"] < 1e-10


def test_oracle_objective_gap_is_zero_from_the_first_iteration_and_stop_at_gap_stops():
    result = run_experiment(
        ExperimentConfig(
            game_params={"n_firms": 30, "k": 1.0}, planner="oracle", iterations=50, stop_at_gap=1e-12
        ),
        progress=False,
    )
    assert result["iterations"] == 1 and abs(result["metrics"][0]["objective_gap"]) < 1e-12
    assert result["stopped"] == "stop_at_gap"
    none = run_experiment(
        ExperimentConfig(game_params={"n_firms": 30, "k": 1.0}, planner="none", iterations=10), progress=False
    )
    assert min(line["objective_gap"] for line in none["metrics"]) > 0.1


def test_compare_planners_table_and_plot(tmp_path):
    payload = compare_planners(
        ["single_loop", "none", "oracle"],
        ExperimentConfig(game_params={"n_firms": 10, "k": 1.0}, iterations=40),
        progress=False,
    )
    assert set(payload["runs"]) == {"single_loop", "none", "oracle"}
    runs = payload["runs"]
    assert runs["single_loop"]["final"]["objective_gap"] < runs["none"]["final"]["objective_gap"]
    table = comparison_table(payload)
    assert "single_loop" in table and "CPU s" in table and "played gap" in table
    from planners.plots import plot_runs

    plot_runs(runs, tmp_path / "c.png", title="t", stop_at_gap=1e-4)
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"game": "chess"}, "unknown env 'chess'"),
        ({"learner": "oracle"}, "unknown learner"),
        ({"planner": "magic"}, "unknown planner"),
        ({"game_params": {"n_firms": 0}}, "n_firms"),
        ({"game_params": {"nfirms": 3}}, "unknown parameters"),
        ({"iterations": -3}, "iterations"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"planner_params": {"step_size": 0.0}}, "step_size"),
        ({"feedback_noise_std": np.nan}, "feedback_noise_std"),
        ({"learner_params": {"step_size": -0.1}}, "step_size"),
        ({"stop_at_gap": 0.0}, "stop_at_gap"),
        ({"planner": "social_gradient", "game": "congestion"}, "does not apply"),
        ({"learner": "entropic"}, "does not apply"),
        ({"learner": "hedge", "planner": "double_loop_ad"}, "does not apply"),
    ],
)
def test_config_validation_names_the_field(kwargs, name):
    with pytest.raises(ValueError, match=name):
        ExperimentConfig(**kwargs)


def test_run_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="config"):
        run_experiment({"planner": "none"})
    with pytest.raises(ValueError, match="checkpoint_every"):
        run_experiment(ExperimentConfig(iterations=2), checkpoint_every=0)
    with pytest.raises(ValueError, match="out directory"):
        run_experiment(ExperimentConfig(iterations=2), stop_after=1)
