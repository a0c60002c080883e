"""Smoke tests of the routing scripts: they run, write their JSON and report sane numbers."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

pytest.importorskip("aequilibrae")
pytest.importorskip("pytraf")

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


def test_bench_ue_smoke_run_writes_the_documented_json(tmp_path):
    out = tmp_path / "ue.json"
    result = bench_ue.main(
        ["--gaps", "1e-3,3e-4", "--repeats", "1", "--networks", "sioux_falls", "--json", str(out)]
    )
    saved = json.loads(out.read_text())
    assert saved == json.loads(json.dumps(result))
    assert set(saved["sioux_falls"]) == {"0.001", "0.0003"}
    assert "threadpoolctl limits every pool to 1" in saved["threads"]
    for gap, entry in saved["sioux_falls"].items():
        for key in (
            "ours_cpu_s",
            "ours_wall_s",
            "ours_iterations",
            "pytraf_cpu_s",
            "aequilibrae_cpu_s",
            "tstt",
        ):
            assert key in entry, key
        assert entry["ours_cpu_s"] > 0 and entry["ours_cpu"]["min"] <= entry["ours_cpu"]["median"]
        for solver in ("ours", "ours_link", "pytraf", "aequilibrae"):
            assert entry[f"{solver}_relative_gap"] <= float(gap)
        assert abs(entry["tstt"] / bench_ue.SIOUX_FALLS_TSTT - 1) < 1e-2
        assert entry["pytraf_max_link_flow_difference"] < 0.05 * 25_000  # the same equilibrium, roughly
    assert "anaheim" not in saved and "chicago_sketch" not in saved


def test_bench_ue_rejects_bad_arguments():
    for argv in (["--gaps", "1e-3,x"], ["--gaps", "2"], ["--repeats", "0"], ["--networks", "berlin"]):
        with pytest.raises(SystemExit):
            bench_ue.main(argv)
