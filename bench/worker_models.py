"""Which gunicorn worker model serves the bridge best: sync, gthread and gevent side by side.

    python bench/worker_models.py [--quick] [--workers 2] [--seconds 5] [--repeats 3]

Each model runs the container's command (``gunicorn --config gunicorn.conf.py
'bridge:create_app()'``) with the same worker count, against one private redis-server,
under the same wrk load: CONNECTIONS keep-alive connections inserting into a fresh
queue, then leasing from it (one task per call), then deleting what was inserted. The
models take turns within every repetition, so that noise from other users of the
machine falls on all of them alike, and the table shows medians with each model's
ratio to gthread.
Needs ``wrk`` and ``redis-server`` on PATH, and gevent (requirements-dev.txt).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(__file__).with_name("worker_models.lua")
MODELS = ("sync", "gthread", "gevent")
PHASES = ("insert", "lease", "delete")
WRK_THREADS = 2
CONNECTIONS = 16


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(port: int, process: subprocess.Popen[bytes], path: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{path} server exited with {process.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", path)
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"nothing answered {path} on port {port}")


def start_redis(folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=folder,
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return process, port
        time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def start_bridge(model: str, workers: int, redis_port: int, metrics: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {
        **os.environ,
        "BRIDGE_BACKEND": f"redis://127.0.0.1:{redis_port}/0",
        "BRIDGE_HOST": "127.0.0.1",
        "BRIDGE_PORT": str(port),
        "BRIDGE_WORKERS": str(workers),
        # gevent is no setting of the bridge (see bench/README.md); gunicorn's own
        # --worker-class, which wins over the config file, runs it here.
        "BRIDGE_WORKER_CLASS": "gthread" if model == "gevent" else model,
        # Request lines would make this a benchmark of the terminal.
        "BRIDGE_LOG_LEVEL": "warning",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
    }
    gunicorn = Path(sys.executable).with_name("gunicorn")
    gevent = ["--worker-class", "gevent"] if model == "gevent" else []
    process = subprocess.Popen(
        [str(gunicorn), "--config", "gunicorn.conf.py", *gevent, "bridge:create_app()"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_ready(port, process, "/readyz")
    return process, port


def wrk(port: int, phase: str, base: str, seconds: int) -> dict[str, float]:
    command = [
        "wrk",
        f"-t{WRK_THREADS}",
        f"-c{CONNECTIONS}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(SCRIPT),
        f"http://127.0.0.1:{port}",
        "--",
        phase,
        base,
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    result: dict[str, float] = json.loads(line.removeprefix("RESULT "))
    return result


def measure(model: str, rep: int, workers: int, redis_port: int, seconds: int, folder: Path) -> dict[str, float]:
    metrics = folder / f"metrics-{model}-{rep}"
    metrics.mkdir()
    process, port = start_bridge(model, workers, redis_port, metrics)
    rates: dict[str, float] = {}
    try:
        base = f"/taskqueue/v1beta2/projects/bench/taskqueues/{model}-{rep}"
        for phase in PHASES:
            # Leasing and deleting run half as long as inserting, so that they find the
            # tasks they work on (every delete names a task inserted before).
            result = wrk(port, phase, base, seconds if phase == "insert" else max(1, seconds // 2))
            if result["non_2xx"] or result["socket_errors"]:
                print(f"  ! {model} {phase}: {result}", file=sys.stderr)
            rates[phase] = result["requests"] / result["seconds"]
            rates[phase + "_p99"] = result["p99_ms"]
            if phase == "lease" and result["leased"] < result["requests"] * 0.99:
                print(f"  ! {model} lease: only {result['leased']} of {result['requests']} leases got a task")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4-second phases")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args()
    seconds = 4 if options.quick else options.seconds
    for tool in ("wrk", "redis-server"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not on PATH")
    runs: dict[str, list[dict[str, float]]] = {model: [] for model in MODELS}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        redis, redis_port = start_redis(folder)
        try:
            for rep in range(options.repeats):
                for model in MODELS:
                    runs[model].append(measure(model, rep, options.workers, redis_port, seconds, folder))
                    print(f"rep {rep + 1} {model}: {runs[model][-1]}", file=sys.stderr)
        finally:
            redis.terminate()
            redis.wait(10)
    print(
        f"{options.workers} workers (gthread: {os.environ.get('BRIDGE_THREADS', 8)} threads each), "
        f"wrk {WRK_THREADS} threads x {CONNECTIONS} connections, {seconds} s inserting, "
        f"half that leasing and deleting, median of {options.repeats}; requests/s (ratio to gthread), p99 ms"
    )
    median = {m: {k: statistics.median(r[k] for r in runs[m]) for k in runs[m][0]} for m in MODELS}
    print(f"{'model':<8}" + "".join(f"{phase:>26}" for phase in PHASES))
    for model in MODELS:
        cells = []
        for phase in PHASES:
            rate = median[model][phase]
            ratio = rate / median["gthread"][phase]
            cells.append(f"{rate:>9.0f} ({ratio:4.2f}x) p99 {median[model][phase + '_p99']:5.1f}")
        print(f"{model:<8}" + "".join(f"{cell:>26}" for cell in cells))


if __name__ == "__main__":
    main()
