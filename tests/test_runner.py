"""Experiment runner: exact checkpoint/resume, atomic result files, validation, metrics."""

import json
import os

import numpy as np
import pytest

from incentive_envs import io as result_io
from planners.runner import ExperimentConfig, compare_planners, main, run_experiment


def _without_wall_times(result: dict) -> dict:
    result = json.loads(json.dumps(result))
    result.pop("wall_time_s")
    for key in ("total_time_s", "time_per_iter_ms"):
        result["final"].pop(key)
    return result


@pytest.mark.parametrize(
    "config",
    [
        ExperimentConfig(n=20, k=1.0, planner="single_loop", iterations=60),
        ExperimentConfig(n=10, k=1.0, planner="zeroth_order", iterations=70, feedback_noise_std=0.3, seed=5),
        ExperimentConfig(n=10, k=2.0, planner="double_loop_id", iterations=25),
        ExperimentConfig(
            game="aggregative", n=15, planner="social_gradient", planner_step=0.05, iterations=40
        ),
    ],
    ids=lambda c: c.planner,
)
def test_checkpoint_resume_gives_the_same_result_as_an_uninterrupted_run(config, tmp_path):
    uninterrupted = run_experiment(config, progress=False)
    checkpoint = tmp_path / "run.ckpt.json"
    assert (
        run_experiment(config, checkpoint_path=checkpoint, checkpoint_every=7, stop_after=23, progress=False)
        is None
    )
    assert json.loads(checkpoint.read_text())["iteration"] == 23
    resumed = run_experiment(
        config, json_path=tmp_path / "run.json", checkpoint_path=checkpoint, progress=False
    )
    assert _without_wall_times(resumed) == _without_wall_times(uninterrupted)
    assert _without_wall_times(json.loads((tmp_path / "run.json").read_text())) == _without_wall_times(
        uninterrupted
    )


def test_resuming_with_another_config_is_refused(tmp_path):
    checkpoint = tmp_path / "ckpt.json"
    config = ExperimentConfig(n=5, iterations=20)
    run_experiment(config, checkpoint_path=checkpoint, stop_after=5, progress=False)
    with pytest.raises(ValueError, match="different config"):
        run_experiment(
            ExperimentConfig(n=5, iterations=20, seed=1), checkpoint_path=checkpoint, progress=False
        )


def test_a_run_killed_while_writing_leaves_the_previous_result_intact(tmp_path, monkeypatch):
    path = tmp_path / "result.json"
    config = ExperimentConfig(n=5, iterations=5)
    run_experiment(config, json_path=path, progress=False)
    before = path.read_bytes()

    def crash_midway(payload, handle, **kwargs):
        handle.write('{"objective_gap": [0.1, ')
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(result_io.json, "dump", crash_midway)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(ExperimentConfig(n=5, iterations=7), json_path=path, progress=False)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["result.json"]


def test_single_loop_reaches_the_unique_optimal_tax():
    # with k = 20 every firm produces at the optimum, so the optimal tax is unique
    result = run_experiment(
        ExperimentConfig(n=20, k=20.0, planner="single_loop", iterations=1500), progress=False
    )
    assert result["incentive_gap"] is not None
    assert result["final"]["incentive_gap"] < 1e-4 and result["final"]["objective_gap"] < 1e-4
    assert len(result["objective_gap"]) == 1500 and result["iterations"] == 1500
    shut_down = run_experiment(ExperimentConfig(n=20, k=5.0, planner="none", iterations=2), progress=False)
    assert shut_down["incentive_gap"] is None  # firms strictly shut at the optimum: θ* not unique


def test_incentive_gap_is_recorded_where_the_optimal_incentive_is_unique():
    result = run_experiment(
        ExperimentConfig(game="oscillators", n=10, planner="single_loop", iterations=300), progress=False
    )
    assert result["incentive_gap"] is not None and result["final"]["incentive_gap"] < 1e-10
    assert result["final"]["objective_gap"] < 1e-10


def test_oracle_objective_gap_is_zero_from_the_first_iteration_and_stop_at_gap_stops():
    result = run_experiment(
        ExperimentConfig(n=30, k=1.0, planner="oracle", iterations=50, stop_at_gap=1e-12), progress=False
    )
    assert result["iterations"] == 1 and abs(result["objective_gap"][0]) < 1e-12
    none = run_experiment(ExperimentConfig(n=30, k=1.0, planner="none", iterations=10), progress=False)
    assert min(none["objective_gap"]) > 0.1


def test_compare_planners_writes_json_and_a_png(tmp_path, capsys):
    payload = compare_planners(
        ["single_loop", "none"],
        ExperimentConfig(n=10, k=1.0, iterations=40),
        json_path=tmp_path / "c.json",
        plot_path=tmp_path / "c.png",
        progress=False,
    )
    assert set(json.loads((tmp_path / "c.json").read_text())["runs"]) == {"single_loop", "none"}
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (
        payload["runs"]["single_loop"]["final"]["objective_gap"]
        < payload["runs"]["none"]["final"]["objective_gap"]
    )
    assert "single_loop" in capsys.readouterr().out


def test_console_script_single_run(tmp_path, capsys):
    main(
        [
            "--json",
            str(tmp_path / "r.json"),
            "--plot",
            str(tmp_path / "r.png"),
            "--no-progress",
            "run",
            "--n",
            "8",
            "--k",
            "1.0",
            "--planner",
            "social_gradient",
            "--planner-step",
            "0.05",
            "--iterations",
            "30",
        ]
    )
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["config"]["planner"] == "social_gradient" and result["iterations"] == 30
    assert (tmp_path / "r.png").exists() and "objective_gap" in capsys.readouterr().out


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"game": "chess"}, "game"),
        ({"learner": "oracle"}, "learner"),
        ({"planner": "magic"}, "planner"),
        ({"n": 0}, "n"),
        ({"iterations": -3}, "iterations"),
        ({"seed": -1}, "seed"),
        ({"k": -1.0}, "k"),
        ({"planner_step": 0.0}, "planner_step"),
        ({"feedback_noise_std": np.nan}, "feedback_noise_std"),
        ({"learner_step": -0.1}, "learner_step"),
        ({"stop_at_gap": 0.0}, "stop_at_gap"),
    ],
)
def test_config_validation_names_the_field(kwargs, name):
    with pytest.raises(ValueError, match=name):
        ExperimentConfig(**kwargs)


def test_run_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="config"):
        run_experiment({"planner": "none"})
    with pytest.raises(ValueError, match="checkpoint_every"):
        run_experiment(ExperimentConfig(n=3, iterations=2), checkpoint_every=0)
    with pytest.raises(ValueError, match="checkpoint_path"):
        run_experiment(ExperimentConfig(n=3, iterations=2), stop_after=1)
