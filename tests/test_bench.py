"""The benchmark's smoke run produces every figure of issues 2 and 14 and its pictures (never
checks their values: timings belong in the benchmark's output, not in assertions)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.plots import LATENCY_PICTURE, THROUGHPUT_PICTURE

ROOT = Path(__file__).resolve().parent.parent
FIGURES = {
    "a_lease_latency_ratio",
    "b_insert_ratio",
    "b_lease_ratio",
    "b_delete_ratio",
    "c_tasks_leased_per_second",
    "d_bytes_per_task",
    "d_allocated_bytes_per_task",
}


@pytest.mark.slow
@pytest.mark.redis
def test_quick_bench_prints_and_writes_every_figure(redis_binary: str, tmp_path: Path) -> None:
    if shutil.which("wrk") is None:
        # A tool, not a backend: CI without it skips the smoke run rather than failing.
        pytest.skip("wrk is not on PATH (apt-get install wrk)")
    out = tmp_path / "bench.json"
    pictures = tmp_path / "plots"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--json", str(out), "--plots", str(pictures)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(out.read_text())
    assert set(result["figures"]) == FIGURES
    for figure in result["figures"].values():
        assert len(figure["repetitions"]) == 1
        assert figure["label"].split(" ", 1)[0] in done.stdout
    assert result["checks"]["valid"]
    for name in (LATENCY_PICTURE, THROUGHPUT_PICTURE):
        assert (pictures / name).read_bytes().startswith(b"\x89PNG\r\n\x1a\n"), name
