"""Smoke tests of the routing scripts: they run, write their JSON and report sane numbers."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

pytest.importorskip("aequilibrae")

import bench_ue  # noqa: E402
import reproduce_figure1  # noqa: E402


def test_figure1_tiny_run_writes_every_setting(tmp_path):
    out = tmp_path / "fig1.json"
    result = reproduce_figure1.main(
        ["--runs", "1", "--iterations", "12", "--eval-points", "3", "--settings", "A,D", "--json", str(out)]
    )
    saved = json.loads(out.read_text())
    assert set(saved["settings"]) == {"A", "D"}
    assert saved["settings"]["A"]["failed_runs"] == 0
    assert saved["settings"]["A"]["final_optimality_gap_mean"] < 1.0  # moved toward θ* from θ0 = 0
    assert saved["settings"]["D"]["failed_runs"] == 1  # no mixing: the adjoint system is singular
    assert result["dense_time_per_iter_ms"] > 0 and result["time_per_iter_ms"] > 0
    assert result["f_star_theta_star"] < result["f_star_untolled"]


def test_bench_ue_compares_both_solvers(tmp_path):
    out = tmp_path / "ue.json"
    bench_ue.main(["--relative-gap", "1e-3", "--repeats", "1", "--json", str(out)])
    saved = json.loads(out.read_text())
    for key in ("ours_s", "aequilibrae_s", "relative_gap", "tstt"):
        assert key in saved
    assert saved["ours_relative_gap_reached"] <= 1e-3 and saved["aequilibrae_relative_gap_reached"] <= 1e-3
    assert abs(saved["tstt"] / bench_ue.PUBLISHED_TSTT - 1) < 1e-2
