"""Redis's slowest command while big tasks are leased and listed (issue 19, finding 3).

    python bench/big_lease.py                   # 300 tasks of 1 MiB (about a minute)
    python bench/big_lease.py --tasks 60 --payload 262144

One redis-server of its own, one queue of ``--tasks`` tasks of ``--payload`` random
bytes, filled through the backend's insert script. Each case runs a few times on that
queue (leases for 0 s, so that the queue keeps its tasks) with SLOWLOG recording every
command; the report gives each case's tasks returned and the slowest command it made,
in ms (SLOWLOG's own duration: the time Redis spent, nothing of the network or Python).
The cases: a v1 lease (numTasks as many as the queue holds, the front's budget of
``--max-response-bytes`` less the frame, its per-task bytes); the same budget with the
per-task bytes of a protobuf task (what the v2beta2 front passes); no budget (what the
v2beta2 front passed before issue 19); a v1 list; a console page without payloads, and
one of 100 with payloads and the budget.

Wall-clock figures, but of Redis alone and far from the 0.25 s target: a loaded
machine moves them by some tens of percent, not by the factors this is about.
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from statistics import median

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis  # noqa: E402

from backends.base import Backend, LeaseRequest  # noqa: E402
from backends.errors import Unavailable  # noqa: E402
from backends.redis.backend import RedisBackend  # noqa: E402
from bench.fill import fill, numbered, queue  # noqa: E402
from bench.services import redis_url, start_redis  # noqa: E402
from bridge.settings import DEFAULT_MAX_RESPONSE_BYTES  # noqa: E402
from bridge.taskqueue.wire import TASKS_FRAME_BYTES, task_bytes  # noqa: E402

#: What a task costs in a LeaseTasks response besides its id, tag and payload, at most: the
#: name's prefix (projects/…/locations/…/queues/…/tasks/), four timestamps, the status.
PROTOBUF_TASK_BYTES = 300
QUEUE = queue("big")


def cases(tasks: int) -> dict[str, Callable[[Backend], int]]:
    budget = DEFAULT_MAX_RESPONSE_BYTES - TASKS_FRAME_BYTES

    def leasing(request: LeaseRequest) -> Callable[[Backend], int]:
        return lambda backend: len(backend.lease(QUEUE, request))

    return {
        "v1 lease": leasing(LeaseRequest(tasks, 0, max_bytes=budget, task_bytes=task_bytes(QUEUE.name))),
        "v2 lease": leasing(LeaseRequest(tasks, 0, max_bytes=budget, task_bytes=PROTOBUF_TASK_BYTES)),
        "no budget": leasing(LeaseRequest(tasks, 0)),
        "v1 list": lambda backend: len(backend.list_tasks(QUEUE)),
        "page": lambda backend: len(backend.list_tasks_page(QUEUE, page_size=100).tasks),
        "page+payload": lambda backend: len(_page_with_payloads(backend, budget)),
    }


def _page_with_payloads(backend: Backend, budget: int) -> list[object]:
    page = backend.list_tasks_page(
        QUEUE, page_size=100, with_payload=True, max_bytes=budget, task_bytes=PROTOBUF_TASK_BYTES
    )
    return list(page.tasks)


def slowest_ms(client: redis.Redis, run: Callable[[], int]) -> tuple[int, float]:
    """What ``run`` returns (-1: the backend gave up waiting, a 503), and the longest
    command Redis recorded meanwhile, in ms. ``client`` waits as long as Redis takes."""
    client.slowlog_reset()
    try:
        returned = run()
    except Unavailable:
        returned = -1
    entries = client.slowlog_get(1000)
    return returned, max((entry["duration"] for entry in entries), default=0) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=300)
    parser.add_argument("--payload", type=int, default=1024 * 1024, help="payload bytes of every task")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each case (the median is shown)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="big-lease-") as scratch:
        server = start_redis(Path(scratch), "--slowlog-log-slower-than", "0", "--slowlog-max-len", "1000")
        try:
            backend = RedisBackend.from_url(redis_url(server))
            client = redis.Redis.from_url(redis_url(server), socket_timeout=120)
            fill(backend, QUEUE, numbered("t", args.tasks, args.payload))
            print(f"{args.tasks} tasks of {args.payload:,} bytes; slowest Redis command per case (SLOWLOG, ms)")
            for name, case in cases(args.tasks).items():
                runs = [slowest_ms(client, functools.partial(case, backend)) for _ in range(args.repeat)]
                counts = sorted({count for count, _ in runs})  # -1: 503
                times = [ms for _, ms in runs]
                shown = " ".join(f"{ms:.1f}" for ms in times)
                print(f"{name:13} {counts} tasks  slowest {median(times):8.1f} ms  ({shown})")
                sys.stdout.flush()
            backend.close()
            client.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
