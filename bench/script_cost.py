"""Redis's side of the hot calls: redis-server's instructions per script call, or its µs.

    python bench/script_cost.py                    # instructions per call, under callgrind (2-3 minutes)
    python bench/script_cost.py --payload 128      # with the bench's payload size
    python bench/script_cost.py --usec -n 5000     # INFO commandstats usec_per_call instead (noisy)
    python bench/script_cost.py --lua-only         # only what runs inside the scripts

Each operation has its own queue of 2,000 tasks, filled through the backend's insert
script: insert (new names), a lease of one task and one of 100 (leaseSecs=0, as the
bench's, so that the queue keeps its size; with the front's response budget), and delete
(alternately a group's first task and one far behind it, so that half the deletes change
the group's head). Under callgrind (valgrind's, on PATH) the counters are zeroed, N calls
are made and the counters dumped, then again with 2N calls: the difference over N is
one call, whatever redis-server did meanwhile on its own. The figures repeat within
about 1 % on a quiet machine (Lua's garbage collector runs when it runs), wall-clock
ones do not. On a loaded one they wander by some 5 % from run to run, for part of a
call's work depends on how long the calls take (the lease counts of each second,
redis-server's own timers at --hz 1): compare medians of runs taken in turns.
``--lua-only`` counts only what runs inside the scripts (callgrind's --toggle-collect
on luaCallFunction: the Lua code and the commands it calls, without the event loop,
the parsing of the call or the writing of its reply), which wanders less.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis  # noqa: E402

from backends.base import LeaseRequest, NewTask  # noqa: E402
from backends.redis.backend import RedisBackend  # noqa: E402
from bench.fill import fill, numbered, queue  # noqa: E402
from bench.services import Service, redis_url, require, start_redis  # noqa: E402
from bridge.settings import DEFAULT_MAX_RESPONSE_BYTES  # noqa: E402
from bridge.taskqueue.wire import TASKS_FRAME_BYTES, task_bytes  # noqa: E402

OPERATIONS = ("insert", "lease", "delete", "lease100")
QUEUE_TASKS = 2000
BULK = 100
#: Seconds for callgrind to write a dump after callgrind_control asked for it.
DUMP_WAIT = 0.5
Operation = Callable[[int], None]


def operations(backend: RedisBackend, payload_bytes: int, calls: int) -> dict[str, Operation]:
    """Fill one queue per operation and return the operations, each making n calls."""
    for name in ("insert", "lease", "lease100"):
        fill(backend, queue(name), numbered("t", QUEUE_TASKS, payload_bytes))
    # Enough for every delete of both rounds: `d` tasks first, `e` tasks behind them.
    for prefix in ("d", "e"):
        fill(backend, queue("delete"), numbered(prefix, calls * 2 + QUEUE_TASKS // 2, payload_bytes))
    inserted = 0
    deleted = 0

    def insert(n: int) -> None:
        nonlocal inserted
        for _ in range(n):
            inserted += 1
            backend.insert(queue("insert"), NewTask(f"n{inserted:08d}", os.urandom(payload_bytes)))

    def leases(name: str, num_tasks: int) -> Operation:
        request = LeaseRequest(
            num_tasks,
            0,
            max_bytes=DEFAULT_MAX_RESPONSE_BYTES - TASKS_FRAME_BYTES,
            task_bytes=task_bytes(name),
        )

        def lease(n: int) -> None:
            for _ in range(n):
                if len(backend.lease(queue(name), request)) != num_tasks:
                    raise RuntimeError(f"{name}: a lease of {num_tasks} came back short")

        return lease

    def delete(n: int) -> None:
        nonlocal deleted
        for _ in range(n):
            deleted += 1
            prefix = "d" if deleted % 2 else "e"
            backend.delete(queue("delete"), f"{prefix}{(deleted + 1) // 2:08d}")

    return {"insert": insert, "lease": leases("lease", 1), "delete": delete, "lease100": leases("lease100", BULK)}


def _total_instructions(dump: Path) -> int:
    for line in dump.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"{dump} has no total")


def instructions(server: Service, dumps: Path, operation: Operation, n: int) -> float:
    """redis-server's instructions per call: (2n calls - n calls) / n."""
    pid = str(server.process.pid)
    totals = []
    for calls in (n, 2 * n):
        subprocess.run(["callgrind_control", "-z", pid], check=True, capture_output=True)
        operation(calls)
        before = set(dumps.iterdir())
        subprocess.run(["callgrind_control", "-d", pid], check=True, capture_output=True)
        deadline = time.monotonic() + 30
        while not (new := set(dumps.iterdir()) - before) and time.monotonic() < deadline:
            time.sleep(DUMP_WAIT)
        time.sleep(DUMP_WAIT)  # the file is complete once callgrind_control has returned and a moment passed
        if not new:
            raise RuntimeError("callgrind wrote no dump")
        (dump,) = new
        totals.append(_total_instructions(dump))
        dump.unlink()
    return (totals[1] - totals[0]) / n


def usec_per_call(client: redis.Redis, operation: Operation, n: int) -> float:
    client.config_resetstat()
    operation(n)
    return float(client.info("commandstats")["cmdstat_evalsha"]["usec_per_call"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=2000, help="calls per operation (lease100: a twentieth)")
    parser.add_argument("--payload", type=int, default=1024, help="payload bytes of every task")
    parser.add_argument("--usec", action="store_true", help="µs per call from INFO commandstats, not callgrind")
    parser.add_argument("--only", choices=OPERATIONS, action="append", help="this operation (repeatable); default all")
    parser.add_argument("--lua-only", action="store_true", help="count only what runs inside the scripts")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="script-cost-") as scratch:
        folder = Path(scratch)
        dumps = folder / "dumps"
        dumps.mkdir()
        wrapper: list[str] = []
        if not args.usec:
            require("callgrind_control", "install valgrind (apt-get install valgrind)")
            wrapper = [require("valgrind", "install it (apt-get install valgrind)"), "--tool=callgrind"]
            wrapper += [f"--callgrind-out-file={dumps}/callgrind.out.%p"]
            if args.lua_only:
                wrapper += ["--toggle-collect=luaCallFunction"]
        server = start_redis(folder, "--hz", "1", wrapper=wrapper)
        try:
            backend = RedisBackend.from_url(redis_url(server))
            client = redis.Redis.from_url(redis_url(server))
            for name, operation in operations(backend, args.payload, args.n).items():
                if args.only and name not in args.only:
                    continue
                n = max(args.n // 20, 10) if name == "lease100" else args.n
                operation(10)  # the script loaded, the connection made
                if args.usec:
                    print(f"{name:9} {usec_per_call(client, operation, n):9.2f} µs per call (usec_per_call, {n} calls)")
                else:
                    per_call = instructions(server, dumps, operation, n)
                    print(f"{name:9} {per_call / 1000:9.1f}k instructions per call ({n} and {2 * n} calls)")
                sys.stdout.flush()
            backend.close()
            client.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
