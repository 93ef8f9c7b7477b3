"""Instructions per request in a gunicorn worker: the bridge's against the reference's.

    python bench/worker_cost.py lease reference    # lease numTasks=1, then the reference's INCR
    python bench/worker_cost.py insert lease100    # the bridge only

bench/hotpath.py counts what the app does when called in one process; this counts what
a worker process does under gunicorn, the HTTP server included (the parser, the WSGI
environ, the worker's threads, the request log), which is where the bridge and the
reference app share most of their cost. Each server runs with one worker under
``valgrind --tool=callgrind`` on its own redis-server, takes a short and a long wrk run
(16 connections), and stops; the difference between the two runs' instruction counts
over the difference between their requests (counted by Redis) is the cost of one
request, start-up and shutdown cancelling out. Instruction counts repeat whatever else
loads the machine (time in the kernel is not counted, nor Redis's). Each operation
takes about two minutes. The per-function breakdown stays in the printed folder
(``callgrind_annotate FILE``).
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis  # noqa: E402

from backends.redis.backend import RedisBackend  # noqa: E402
from bench.fill import fill, numbered, queue  # noqa: E402
from bench.load import Request, run_wrk  # noqa: E402
from bench.plan import GUNICORN_THREADS, PAYLOAD_BYTES  # noqa: E402
from bench.scenarios import (  # noqa: E402
    INSERT_REQUEST,
    LEASE_BULK,
    LEASE_BULK_REQUEST,
    LEASE_ONE,
    LEASE_ONE_REQUEST,
    REFERENCE,
)
from bench.services import ROOT, Service, _answers_http, free_port, redis_url, start_redis  # noqa: E402

#: Each operation: the server that answers it and its request.
OPERATIONS: dict[str, tuple[str, Request]] = {
    "insert": ("bridge", INSERT_REQUEST),
    "lease": ("bridge", LEASE_ONE_REQUEST),
    "lease100": ("bridge", LEASE_BULK_REQUEST),
    "reference": ("reference", REFERENCE),
}
#: The commands that count one request each: the bridge's script, the reference's INCR
#: (which redis-py sends as INCRBY).
_COUNTED = ("evalsha", "incr", "incrby")
#: Seconds of the short and the long run (under valgrind a worker serves ~50 requests/s).
SHORT_SECONDS, LONG_SECONDS = 10, 30
WARM_SECONDS = 3


def _server(side: str, url: str, port: int) -> list[str]:
    if side == "bridge":
        command = [sys.executable, "-m", "bridge", "serve", "--backend", url, "--port", str(port), "--workers", "1"]
        return command + ["--threads", str(GUNICORN_THREADS)]
    command = [sys.executable, "-m", "gunicorn", "-w", "1", "-k", "gthread", "--threads", str(GUNICORN_THREADS)]
    return command + ["--no-control-socket", "-b", f"127.0.0.1:{port}", f"bench.reference_app:create_app({url!r})"]


def _script_calls(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k.removeprefix("cmdstat_") in _COUNTED)


def _one_run(side: str, request: Request, seconds: int, folder: Path) -> tuple[int, int]:
    """(worker instructions, requests) of one server life with a ``seconds`` wrk run."""
    folder.mkdir(parents=True, exist_ok=True)
    redis_server: Service = start_redis(folder)
    try:
        url = redis_url(redis_server)
        backend = RedisBackend.from_url(url)
        for name in (LEASE_ONE, LEASE_BULK):
            fill(backend, queue(name), numbered("t", 2000, PAYLOAD_BYTES))
        backend.close()
        port = free_port()
        out = folder / f"{side}-{seconds}"
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}.%p", *_server(side, url, port)]
        with (folder / f"{side}-{seconds}.log").open("wb") as log:
            server = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 300
            while not _answers_http(port):
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"the {side} did not start under valgrind (see {folder})")
                time.sleep(0.5)
            run_wrk(port, request, WARM_SECONDS)
            client = redis.Redis.from_url(url)
            before = _script_calls(client)
            run_wrk(port, request, seconds)
            served = _script_calls(client) - before
            client.close()
            workers = subprocess.run(["pgrep", "-P", str(server.pid)], capture_output=True, text=True).stdout.split()
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(120)
        totals = []
        for worker in workers:
            for line in Path(f"{out}.{worker}").read_text().splitlines():
                if line.startswith(("totals:", "summary:")):
                    totals.append(int(line.split()[1]))
        return max(totals), served
    finally:
        redis_server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("operations", nargs="+", choices=sorted(OPERATIONS))
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind is not on PATH (apt-get install valgrind)", file=sys.stderr)
        return 2
    folder = Path(tempfile.mkdtemp(prefix="worker-cost-"))
    print(f"{'server':<10} {'request':<10} {'instructions per request':>26}   (callgrind files in {folder})")
    for label in args.operations:
        side, request = OPERATIONS[label]
        short_instr, short_requests = _one_run(side, request, SHORT_SECONDS, folder / label)
        long_instr, long_requests = _one_run(side, request, LONG_SECONDS, folder / label)
        if long_requests <= short_requests:
            raise RuntimeError(f"{label}: the long run served {long_requests} requests, the short {short_requests}")
        per_request = (long_instr - short_instr) / (long_requests - short_requests)
        print(f"{side:<10} {label:<10} {per_request:>26,.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
