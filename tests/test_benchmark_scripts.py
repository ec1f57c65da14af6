"""Benchmark scripts run as modules of the `benchmarks` package (no sys.path edits)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("how", [["-m", "benchmarks.session_baselines"], ["benchmarks/session_baselines.py"]])
def test_a_benchmark_runs_as_a_module_and_as_a_file(how):
    out = subprocess.run([sys.executable, *how, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "--datasets" in out.stdout and "Session baselines" in out.stdout


def test_no_benchmark_edits_sys_path():
    for script in (ROOT / "benchmarks").glob("*.py"):
        assert "sys.path.insert" not in script.read_text(), script.name
