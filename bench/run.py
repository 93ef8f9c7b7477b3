"""The benchmark of issues 2 and 14 in one command: ``python bench/run.py [--quick] [--json PATH] [--plots DIR]``.

Starts its own redis-server (on a free port, saving nothing), the bridge on it as users
start it (``python -m bridge serve``, gunicorn gthread, 2 workers × 8 threads) and the
reference app under the same gunicorn settings; fills the queues; runs every
measurement ``repetitions`` times; prints the figures, their targets and pass/fail.
Needs ``redis-server`` and ``wrk`` on PATH (``apt-get install redis-server wrk``).

Exit status: 0 when every measurement was valid (no error answers, every lease found
tasks), whether or not the targets were met; 1 otherwise; 2 when a service or tool is
missing or would not start.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

if __package__ in (None, ""):
    # Run as a file: make the repository importable, as `python -m` would.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backends.redis.backend import RedisBackend  # noqa: E402
from bench import report  # noqa: E402
from bench.memory import MemoryResult, measure_once  # noqa: E402
from bench.plan import (  # noqa: E402
    FULL,
    GUNICORN_THREADS,
    GUNICORN_WORKERS,
    LOAD_CONNECTIONS,
    LOAD_THREADS,
    QUICK,
    SLICE_SECONDS,
    Plan,
)
from bench.plots import FULL_PLOTS, QUICK_PLOTS, plot  # noqa: E402
from bench.scenarios import Repetition, Servers, prepare_queues, run_repetition, warm_up  # noqa: E402
from bench.services import ServiceError, redis_url, start_bridge, start_redis, start_reference  # noqa: E402


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and 1 s runs: a smoke run, not a measurement")
    parser.add_argument("--json", type=Path, help="also write every figure and raw result to this file")
    parser.add_argument(
        "--plots", type=Path, metavar="DIR", help="also draw how cost grows (PNG, see bench/plots.py) into DIR"
    )
    return parser.parse_args(argv)


def _say(message: str) -> None:
    """Progress goes to stderr, so stdout holds only the report."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _version(command: list[str], keep: int) -> str:
    """The first ``keep`` words of a tool's version line ("wrk 4.1.0 [epoll]")."""
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    words = (done.stdout or done.stderr).split()
    return " ".join(words[:keep]) or "unknown"


def _redis_version() -> str:
    """ "v=7.0.15 malloc=jemalloc-5.3.0": the version, and the allocator (d) depends on."""
    words = _version(["redis-server", "--version"], 8).split()
    return " ".join(word for word in words if word.startswith(("v=", "malloc="))) or "unknown"


def _environment() -> dict[str, str]:
    return {
        "redis_server": _redis_version(),
        "wrk": _version(["wrk", "--version"], 3),
        "python": sys.version.split()[0],
        "cpus": str(os.cpu_count()),
        "load_average_at_start": _load_average(),
    }


def _load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def measure_http(plan: Plan, folder: Path, plots: Path | None = None) -> list[Repetition]:
    """(a), (b), (c): one redis-server, the bridge and the reference app on it."""
    with ExitStack() as stack:
        server = start_redis(folder)
        stack.callback(server.stop)
        url = redis_url(server)
        backend = RedisBackend.from_url(url)
        stack.callback(backend.close)
        _say(f"filling queues ({plan.big_queue_tasks:,} + {plan.small_queue_tasks:,} + 2 × {plan.lease_queue_tasks:,})")
        prepare_queues(backend, plan)
        _say("starting the bridge and the reference app")
        bridge = start_bridge(url, folder)
        stack.callback(bridge.stop)
        reference = start_reference(url, folder)
        stack.callback(reference.stop)
        servers = Servers(server, bridge, reference, backend)
        _say("warming up")
        warm_up(servers, plan)
        reps = []
        for n in range(1, plan.repetitions + 1):
            _say(f"repetition {n} of {plan.repetitions}: (b), (c), (a)")
            reps.append(run_repetition(servers, plan, f"r{n}"))
        if plots is not None:
            plot_plan = QUICK_PLOTS if plan is QUICK else FULL_PLOTS
            _say(
                f"pictures: lease latency on {', '.join(f'{n:,}' for n in plot_plan.backlogs)} tasks,"
                f" throughput on {', '.join(map(str, plot_plan.connections))} connections"
            )
            for path in plot(servers, plot_plan, plots, f"{GUNICORN_WORKERS} workers × {GUNICORN_THREADS} threads"):
                _say(f"wrote {path}")
        return reps


def measure_memory(plan: Plan, folder: Path) -> list[MemoryResult]:
    results = []
    for n in range(1, plan.repetitions + 1):
        _say(f"repetition {n} of {plan.repetitions}: (d), {plan.memory_tasks:,} tasks into an empty server")
        results.append(measure_once(plan, folder))
    return results


def _header(plan: Plan, environment: dict[str, str]) -> list[str]:
    return [
        f"Task Queue Bridge benchmark, issues 2 and 14 ({plan.name} plan: medians of {plan.repetitions} repetition(s))",
        f"bridge:    python -m bridge serve --backend redis://… --workers {GUNICORN_WORKERS}"
        f" --threads {GUNICORN_THREADS} (gunicorn gthread)",
        f"reference: bench/reference_app.py, POST /incr (one Redis INCR), gunicorn -w {GUNICORN_WORKERS}"
        f" -k gthread --threads {GUNICORN_THREADS}",
        f'redis:     redis-server {environment["redis_server"]}; own instance, --save "" --appendonly no',
        f"load:      {environment['wrk']}: {LOAD_THREADS} thread × {LOAD_CONNECTIONS} connections;"
        f" (b) {plan.slices} × {SLICE_SECONDS} s per side, alternating; (c) {plan.load_seconds} s;"
        " (a) one keep-alive connection, sequential",
        f"machine:   {environment['cpus']} CPUs, load average {environment['load_average_at_start']} at start,"
        f" {environment['load_average_at_end']} at end (other users of the machine move absolute figures)",
        "",
    ]


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    plan = QUICK if args.quick else FULL
    environment = _environment()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
            reps = measure_http(plan, Path(scratch), args.plots)
            memory = measure_memory(plan, Path(scratch))
    except ServiceError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    environment["load_average_at_end"] = _load_average()
    rows = report.figures(plan, reps, memory)
    valid = report.checks(reps)
    lines = _header(plan, environment) + report.table(rows) + [""]
    met = [row.met for row in rows if row.met is not None]
    lines.append(f"targets met: {sum(met)} of {len(met)}")
    lines.append(
        f"checks: {valid.load_runs} wrk runs, {valid.non_2xx} non-2xx answers, {valid.socket_errors} socket errors,"
        f" {valid.short_leases} lease runs short of tasks, {valid.bad_latency_answers} bad latency answers"
        + ("" if valid.valid else "  -> INVALID: the figures above do not measure what they claim")
    )
    lines += [""] + report.memory_breakdown(memory[len(memory) // 2])
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps(report.to_json(plan, rows, valid, reps, memory, environment), indent=1))
    return 0 if valid.valid else 1


if __name__ == "__main__":
    sys.exit(main())
