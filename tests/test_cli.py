"""The incentive-bench command line: list, run, compare, plot, sweep (local and Ray), errors."""

import json
import subprocess
import sys

import pytest

from planners.cli import main
from planners.registry import combinations


def _cli(*args, expect: int = 0, capsys=None):
    status = main(list(args))
    assert status == expect
    return capsys.readouterr() if capsys is not None else None


def test_list_json_has_every_registry_and_the_valid_combinations(capsys):
    out = _cli("list", "--json", capsys=capsys).out
    listing = json.loads(out)
    assert set(listing) == {"games", "learners", "planners", "combinations"}
    assert {"cournot", "aggregative", "oscillators", "congestion", "escape_room"} <= set(listing["games"])
    assert {"gradient", "entropic", "best_response", "logit", "hedge"} <= set(listing["learners"])
    assert {
        "single_loop",
        "double_loop_id",
        "double_loop_ad",
        "social_gradient",
        "zeroth_order",
        "none",
        "oracle",
    } <= set(listing["planners"])
    assert listing["combinations"] == [list(combination) for combination in combinations()]
    cournot = listing["games"]["cournot"]
    assert cournot["env_id"] == "cournot_v0" and "model" in cournot["capabilities"]
    assert cournot["parameters"]["n_firms"]["default"] == 100 and cournot["parameters"]["k"]["description"]
    assert ["congestion", "gradient", "social_gradient"] not in listing[
        "combinations"
    ]  # tolls are not linear prices


def test_run_writes_result_and_plot_and_never_overwrites(tmp_path, capsys):
    out = tmp_path / "run"
    args = (
        "run",
        "--game",
        "aggregative",
        "--n",
        "8",
        "--planner",
        "social_gradient",
        "--param",
        "planner.step_size=0.05",
        "--iterations",
        "30",
        "--out",
        str(out),
        "--no-progress",
    )
    _cli(*args, capsys=capsys)
    result = json.loads((out / "result.json").read_text())
    assert result["config"]["planner"] == "social_gradient" and result["config"]["planner_params"] == {
        "step_size": 0.05
    }
    assert result["iterations"] == 30 and len(result["metrics"]) == 30 and "objective_gap" in result["final"]
    assert result["final"] == result["metrics"][-1]
    assert (out / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    error = _cli(*args, expect=2, capsys=capsys).err
    assert "already holds a finished run" in error and len(error.strip().splitlines()) == 1


def test_options_are_accepted_anywhere_and_the_main_job_is_compare(tmp_path, capsys):
    out = tmp_path / "anywhere"
    _cli("--no-progress", "--iterations", "5", "run", "--out", str(out), "--n", "4", capsys=capsys)
    assert json.loads((out / "result.json").read_text())["iterations"] == 5
    _cli(
        "--json",
        str(tmp_path / "c.json"),
        "--plot",
        str(tmp_path / "c.png"),
        "--planners",
        "single_loop,none",
        "--n",
        "6",
        "--iterations",
        "20",
        "--no-progress",
        capsys=capsys,
    )
    assert set(json.loads((tmp_path / "c.json").read_text())["runs"]) == {"single_loop", "none"}


@pytest.mark.parametrize(
    "args, fragment",
    [
        (("run", "--game", "chess", "--out", "x"), "invalid choice: 'chess'"),
        (("run", "--learner", "oracle", "--out", "x"), "invalid choice: 'oracle'"),
        (("run", "--n", "0", "--out", "x"), "expected a positive integer"),
        (("run", "--param", "nope=1", "--out", "x"), "parameter 'nope' is unknown"),
        (("run", "--param", "k=abc", "--out", "x"), "is not a valid float"),
        (("run", "--game", "congestion", "--planner", "social_gradient", "--out", "x"), "does not apply"),
        (("run", "--game", "congestion", "--n", "3", "--out", "x"), "--n does not apply"),
        (
            ("sweep", "--games", "cournot", "--learners", "gradient", "--planners", "nope", "--out", "x"),
            "unknown planner",
        ),
    ],
)
def test_bad_choices_and_values_print_one_line_and_exit_2(args, fragment, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    completed = subprocess.run(
        [sys.executable, "-m", "planners.cli", *args], capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 2
    assert fragment in completed.stderr and len(completed.stderr.strip().splitlines()) == 1
    assert "Traceback" not in completed.stderr


def test_help_lists_choices_and_defaults():
    completed = subprocess.run(
        [sys.executable, "-m", "planners.cli", "run", "--help"], capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 0
    from incentive_envs import registry

    games = "{" + ",".join(sorted(spec.game for spec in registry().values())) + "}"
    for text in (
        games,
        "(default: cournot)",
        "--param KEY=VALUE",
    ):
        assert text in completed.stdout


def test_plot_redraws_a_run_from_its_results(tmp_path, capsys):
    out = tmp_path / "run"
    _cli("run", "--n", "4", "--iterations", "6", "--out", str(out), "--no-progress", capsys=capsys)
    (out / "plot.png").unlink()
    _cli("plot", str(out), capsys=capsys)
    assert (out / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


SWEEP = (
    "sweep",
    "--games",
    "cournot,aggregative,congestion",
    "--learners",
    "gradient",
    "--planners",
    "single_loop,social_gradient,none",
    "--seeds",
    "2",
    "--n",
    "5",
    "--iterations",
    "25",
    "--no-progress",
    "--param",
    "planner.step_size=0.05",
    "--param",
    "game.network=braess",
)


def test_sweep_on_the_local_backend_skips_finished_trials_and_lists_invalid_ones(tmp_path, capsys):
    out = tmp_path / "sweep"
    _cli(*SWEEP, "--out", str(out), "--workers", "2", capsys=capsys)
    summary = json.loads((out / "summary.json").read_text())
    assert ["congestion", "gradient", "social_gradient"] in summary["skipped"]
    assert (
        len(summary["trials"]) == (3 + 3 + 2) * 2  # 3 planners on the price games, 2 on congestion; 2 seeds
    )  # 2 price games × 2 planners × 2 seeds + congestion × 2
    assert all(
        row["status"] == "finished" and row["final_objective_gap"] is not None for row in summary["trials"]
    )
    assert (out / "summary.png").exists() and "final objective gap" in (out / "summary.txt").read_text()
    stamps = {path.name: path.stat().st_mtime_ns for path in (out / "trials").iterdir()}
    _cli(*SWEEP, "--out", str(out), capsys=capsys)
    assert stamps == {path.name: path.stat().st_mtime_ns for path in (out / "trials").iterdir()}


def test_a_failed_trial_is_recorded_with_its_error_not_lost(tmp_path, monkeypatch):
    from planners import sweep as sweep_module
    from planners.sweep import plan_trials, run_sweep

    trials, skipped = plan_trials(["cournot"], ["gradient"], ["none"], 2, n=4, iterations=3)

    run_trial = sweep_module.run_trial

    def fail_seed_one(config_json):
        if config_json["seed"] == 1:
            config_json = {**config_json, "iterations": -1}
        return run_trial(config_json)

    monkeypatch.setattr(
        sweep_module,
        "_local_backend",
        lambda configs, on_result, workers: [on_result(i, fail_seed_one(c)) for i, c in enumerate(configs)],
    )
    summary = run_sweep(trials, skipped, tmp_path / "sweep", progress=False)
    statuses = {row["seed"]: row["status"] for row in summary["trials"]}
    assert statuses == {0: "finished", 1: "failed"}
    assert "iterations" in summary["trials"][1]["error"]


def test_the_ray_backend_gives_the_same_numbers_as_the_local_one(tmp_path, capsys):
    pytest.importorskip("ray", reason="the ray backend needs the [distributed] extra")
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        _cli(*SWEEP, "--out", str(tmp_path / "ray"), "--backend", "ray", capsys=capsys)
    finally:
        ray.shutdown()
    _cli(*SWEEP, "--out", str(tmp_path / "local"), capsys=capsys)
    ray_rows = json.loads((tmp_path / "ray" / "summary.json").read_text())["trials"]
    local_rows = json.loads((tmp_path / "local" / "summary.json").read_text())["trials"]
    for ray_row, local_row in zip(ray_rows, local_rows):
        assert {key: value for key, value in ray_row.items() if key != "wall_s"} == {
            key: value for key, value in local_row.items() if key != "wall_s"
        }
