"""The README's commands and example are the ones CI runs and users copy."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _bash_blocks() -> list[str]:
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", README, re.DOTALL)]


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_test_one():
    setup = [block for block in _bash_blocks() if block.startswith("python3 -m venv")]
    assert len(setup) == 2
    main_job, test_command = setup
    assert "pytest" not in main_job and test_command.endswith("python -m pytest")
    ci_lines = [
        line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")
    ]
    assert test_command in ci_lines


def _run(example: str, directory) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", example], cwd=directory, capture_output=True, text=True, timeout=300
    )


def test_readme_python_example_runs(tmp_path):
    example = re.findall(r"```python\n(.*?)```", README, re.DOTALL)[0]
    completed = _run(example, tmp_path)
    assert completed.returncode == 0, completed.stderr
    distance = float(completed.stdout.split()[0])
    assert distance < 1e-8


def test_readme_tour_of_the_registries_runs(tmp_path):
    """The second example: make, the conformance suite, build and simulate by name."""
    example = re.findall(r"```python\n(.*?)```", README, re.DOTALL)[1]
    completed = _run(example, tmp_path)
    assert completed.returncode == 0, completed.stderr
    objective_gap, played_gap = (float(value) for value in completed.stdout.split()[-2:])
    assert 0.0 <= objective_gap < 0.01 and 0.0 <= played_gap < 0.01
