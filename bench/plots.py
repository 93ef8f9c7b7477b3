"""``python bench/run.py --plots DIR``: how cost grows, as pictures (PNG, matplotlib).

- ``lease-latency-vs-backlog.png``: median latency of ``lease numTasks=10`` on queues of
  1,000 to 1,000,000 tasks (log x axis), the queues asked in turn over one keep-alive
  connection, so that load from other users of the machine falls on every size alike.
  The bridge's index makes a lease O(log N), so the curve should be flat.
- ``throughput-vs-connections.png``: requests per second of insert, lease (numTasks=1)
  and the reference app against the number of client connections (1 to 64), each point
  the median of three 1 s wrk runs per side, the sides taking turns run by run.

Each picture is stamped with the date and the machine it ran on; the numbers behind it
are written next to it as JSON.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.fill import fill, lease_oldest, numbered, queue
from bench.load import Request, alternate_latency, run_wrk
from bench.plan import LATENCY_NUM_TASKS, PAYLOAD_BYTES
from bench.scenarios import INSERT_REQUEST, LEASE_ONE_REQUEST, REFERENCE, Servers, lease_request

LATENCY_PICTURE = "lease-latency-vs-backlog.png"
THROUGHPUT_PICTURE = "throughput-vs-connections.png"


@dataclass(frozen=True)
class PlotPlan:
    #: Queue sizes of the latency picture.
    backlogs: tuple[int, ...]
    #: Sequential requests per queue size.
    latency_requests: int
    #: Client connections of the throughput picture.
    connections: tuple[int, ...]
    #: Length of each wrk run of the throughput picture.
    seconds: int
    #: wrk runs per side and point, the sides taking turns; the point is their median.
    repetitions: int


FULL_PLOTS = PlotPlan((1_000, 10_000, 100_000, 1_000_000), 500, (1, 2, 4, 8, 16, 32, 64), 1, 3)
QUICK_PLOTS = PlotPlan((1_000, 5_000), 50, (1, 16), 1, 1)


def machine() -> str:
    """The machine a picture ran on, in one line."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{os.cpu_count()} × {cpu}, {platform.system()} {platform.release()}, load average {load}"


def _stamp() -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


def latency_by_backlog(servers: Servers, plan: PlotPlan) -> dict[int, float]:
    """Median lease latency (ms) per queue size; each queue has half its tasks leased for
    a day, as in (a), so that the leased part sits in the index too."""
    requests = []
    for size in plan.backlogs:
        name = f"backlog-{size}"
        fill(servers.backend, queue(name), numbered("b", size, PAYLOAD_BYTES))
        lease_oldest(servers.backend, queue(name), size // 2, 24 * 3600)
        requests.append(lease_request(name, LATENCY_NUM_TASKS))
    result = alternate_latency(servers.bridge.port, tuple(requests), plan.latency_requests)
    if result.bad:
        raise RuntimeError(f"{result.bad} latency answers failed or carried no task")
    return {size: us / 1000 for size, us in zip(plan.backlogs, result.medians_us, strict=True)}


def throughput_by_connections(servers: Servers, plan: PlotPlan) -> dict[str, dict[int, float]]:
    """Requests/s per connection count for insert, lease and the reference."""
    sides: dict[str, tuple[int, Request]] = {
        "reference (Flask + one INCR)": (servers.reference.port, REFERENCE),
        "insert": (servers.bridge.port, INSERT_REQUEST),
        "lease (numTasks=1)": (servers.bridge.port, LEASE_ONE_REQUEST),
    }
    rates: dict[str, dict[int, float]] = {name: {} for name in sides}
    for connections in plan.connections:
        runs: dict[str, list[float]] = {name: [] for name in sides}
        for _ in range(plan.repetitions):
            for name, (port, request) in sides.items():
                run = run_wrk(port, request, plan.seconds, connections=connections)
                if not run.clean:
                    raise RuntimeError(f"{name} with {connections} connections: {run}")
                runs[name].append(run.per_second)
        for name, values in runs.items():
            rates[name][connections] = statistics.median(values)
    return rates


def _save(fig: Any, path: Path, stamp: str) -> Path:
    """Stamp the picture with when and where it was measured, write it, free it."""
    import matplotlib.pyplot as plt

    fig.text(0.01, 0.01, stamp, fontsize=7, color="grey")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def draw(folder: Path, latency: dict[int, float], rates: dict[str, dict[int, float]], note: str) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    stamp = f"{_stamp()}; {machine()}"
    written = []

    fig, ax = plt.subplots(figsize=(7, 4.2))
    sizes = sorted(latency)
    ax.plot(sizes, [latency[s] for s in sizes], marker="o", label="bridge on Redis")
    ax.set_xscale("log")
    ax.set_ylim(bottom=0, top=max(latency.values()) * 1.6)
    ax.set_xlabel("tasks in the queue (half of them leased)")
    ax.set_ylabel(f"median latency of lease numTasks={LATENCY_NUM_TASKS} (ms)")
    ax.set_title("Lease latency against backlog", fontsize=11)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper left")
    written.append(_save(fig, folder / LATENCY_PICTURE, stamp))

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, by_count in rates.items():
        counts = sorted(by_count)
        ax.plot(counts, [by_count[c] for c in counts], marker="o", label=name)
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(next(iter(rates.values()))), [str(c) for c in sorted(next(iter(rates.values())))])
    ax.set_ylim(bottom=0)
    ax.set_xlabel("client connections (wrk, keep-alive)")
    ax.set_ylabel("requests per second")
    ax.set_title(f"Throughput against connections ({note})", fontsize=11)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right")
    written.append(_save(fig, folder / THROUGHPUT_PICTURE, stamp))

    numbers = {"when": _stamp(), "machine": machine(), "lease_latency_ms": latency, "requests_per_second": rates}
    (folder / "plots.json").write_text(json.dumps(numbers, indent=1))
    return written


def plot(servers: Servers, plan: PlotPlan, folder: Path, note: str) -> Sequence[Path]:
    latency = latency_by_backlog(servers, plan)
    rates = throughput_by_connections(servers, plan)
    return draw(folder, latency, rates, note)
