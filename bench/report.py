"""The figures of issue 2 from raw results: medians, ratios, targets, text and JSON.

A ratio is taken inside each repetition (both sides measured in alternating seconds)
and the figure is the median of those ratios, so that a slow patch of the shared
machine moves both sides of one ratio instead of one side of the median.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from bench.memory import DICT_ENTRY_ASKED, MemoryResult, jemalloc_size_class, sds_size
from bench.plan import BULK_NUM_TASKS, LATENCY_NUM_TASKS, MEMORY_PAYLOAD_BYTES, TARGETS, Plan, Target
from bench.scenarios import Paired, Repetition

#: What jemalloc hands out for a MEMORY_PAYLOAD_BYTES payload stored as a Redis string.
PAYLOAD_ALLOCATION = jemalloc_size_class(sds_size(MEMORY_PAYLOAD_BYTES))


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    repetitions: tuple[float, ...]
    #: How the value reads: "ratio", "rate" or "bytes".
    kind: str
    detail: str

    @property
    def value(self) -> float:
        return statistics.median(self.repetitions)

    @property
    def target(self) -> Target | None:
        return TARGETS.get(self.key)

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.target.met(self.value)

    def show(self, number: float) -> str:
        if self.kind == "ratio":
            # Three places, so that 0.697 is not shown as a failing "0.70" beside ">= 0.7".
            return f"{number:.3f}"
        if self.kind == "bytes":
            return f"{number:.1f}"
        return f"{number:,.0f}"


def _median(reps: Sequence[Repetition], of: Callable[[Repetition], float]) -> float:
    return statistics.median(of(rep) for rep in reps)


def _throughput(key: str, label: str, reps: Sequence[Repetition], operation: str, slices: int) -> Figure:
    """A (b) figure: the bridge's rate over the reference's, with the CPU cross-check."""

    def pair(rep: Repetition) -> Paired:
        result: Paired = getattr(rep, operation)
        return result

    bridge = _median(reps, lambda rep: pair(rep).bridge.per_second)
    reference = _median(reps, lambda rep: pair(rep).reference.per_second)
    bridge_cpu = _median(reps, lambda rep: pair(rep).bridge.cpu_us_per_request)
    bridge_redis = _median(reps, lambda rep: pair(rep).bridge.redis_us_per_request)
    reference_cpu = _median(reps, lambda rep: pair(rep).reference.cpu_us_per_request)
    reference_redis = _median(reps, lambda rep: pair(rep).reference.redis_us_per_request)
    cpu_ratio = _median(reps, lambda rep: pair(rep).cpu_ratio)
    detail = (
        f"bridge {bridge:,.0f} req/s, reference {reference:,.0f} req/s ({slices} alternating 1 s runs each)."
        f" CPU per request (gunicorn + Redis): bridge {bridge_cpu:,.0f} µs ({bridge_redis:,.0f} in Redis),"
        f" reference {reference_cpu:,.0f} µs ({reference_redis:,.0f} in Redis); reference ÷ bridge: {cpu_ratio:.2f}"
    )
    return Figure(key, label, tuple(pair(rep).ratio for rep in reps), "ratio", detail)


def _bulk_lease(reps: Sequence[Repetition]) -> Figure:
    calls = _median(reps, lambda rep: rep.bulk_lease.per_second)
    per_reference = _median(reps, lambda rep: rep.bulk_lease.items_per_second / rep.reference_per_second)
    cpu = _median(reps, lambda rep: rep.bulk_lease.cpu_us_per_request)
    redis_cpu = _median(reps, lambda rep: rep.bulk_lease.redis_us_per_request)
    return Figure(
        "c_tasks_leased_per_second",
        f"(c) tasks leased per second (numTasks={BULK_NUM_TASKS})",
        tuple(rep.bulk_lease.items_per_second for rep in reps),
        "rate",
        f"{calls:,.0f} lease calls/s, {per_reference:.1f} tasks per reference request;"
        f" CPU per call {cpu:,.0f} µs ({redis_cpu:,.0f} in Redis)",
    )


def figures(plan: Plan, reps: Sequence[Repetition], memory: Sequence[MemoryResult]) -> list[Figure]:
    """Every figure, medians over the repetitions; the values of each in the repetitions."""
    small = _median(reps, lambda rep: rep.latency.medians_us[0]) / 1000
    big = _median(reps, lambda rep: rep.latency.medians_us[1]) / 1000
    return [
        Figure(
            "a_lease_latency_ratio",
            f"(a) lease latency (numTasks={LATENCY_NUM_TASKS}), big queue ÷ small queue",
            tuple(rep.latency.medians_us[1] / rep.latency.medians_us[0] for rep in reps),
            "ratio",
            f"p50 {big:.2f} ms on {plan.big_queue_tasks:,} tasks ({plan.big_queue_leased:,} oldest leased),"
            f" {small:.2f} ms on {plan.small_queue_tasks:,} tasks (none leased);"
            f" {plan.latency_requests:,} sequential requests each, alternating",
        ),
        _throughput("b_insert_ratio", "(b) insert req/s ÷ reference req/s", reps, "insert", plan.slices),
        _throughput("b_lease_ratio", "(b) lease (numTasks=1) req/s ÷ reference req/s", reps, "lease", plan.slices),
        _throughput("b_delete_ratio", "(b) delete req/s ÷ reference req/s", reps, "delete", plan.slices),
        _bulk_lease(reps),
        Figure(
            "d_bytes_per_task",
            f"(d) Redis bytes per task beyond a {MEMORY_PAYLOAD_BYTES} B payload",
            tuple(m.bytes_per_task for m in memory),
            "bytes",
            f"INFO used_memory delta over {memory[0].tasks:,} tasks inserted into an empty server,"
            f" ÷ tasks − {MEMORY_PAYLOAD_BYTES}",
        ),
        Figure(
            "d_allocated_bytes_per_task",
            f"(d) the same, beyond the payload's own allocation ({PAYLOAD_ALLOCATION} B)",
            tuple(m.bytes_per_task + MEMORY_PAYLOAD_BYTES - PAYLOAD_ALLOCATION for m in memory),
            "bytes",
            f"used_memory delta ÷ tasks − {PAYLOAD_ALLOCATION}: a {MEMORY_PAYLOAD_BYTES} B payload kept as a"
            f" Redis string ({sds_size(MEMORY_PAYLOAD_BYTES)} B with its header and NUL) takes jemalloc's"
            f" {PAYLOAD_ALLOCATION} B size class whatever the layout, so this is what the layout adds",
        ),
    ]


@dataclass(frozen=True)
class Checks:
    """What makes a run's numbers valid: no errors, and every lease found tasks."""

    load_runs: int
    non_2xx: int
    socket_errors: int
    #: Lease runs whose answers carried fewer tasks than asked for.
    short_leases: int
    #: Latency requests that failed or returned no task.
    bad_latency_answers: int

    @property
    def valid(self) -> bool:
        return not (self.non_2xx or self.socket_errors or self.short_leases or self.bad_latency_answers)


def checks(reps: Sequence[Repetition]) -> Checks:
    runs = [run for rep in reps for run in rep.load_runs]
    short = sum(rep.lease.bridge.items < rep.lease.bridge.requests for rep in reps)
    short += sum(rep.bulk_lease.items < rep.bulk_lease.requests * BULK_NUM_TASKS for rep in reps)
    return Checks(
        load_runs=sum(run.runs for run in runs),
        non_2xx=sum(run.non_2xx for run in runs),
        socket_errors=sum(run.socket_errors for run in runs),
        short_leases=short,
        bad_latency_answers=sum(rep.latency.bad for rep in reps),
    )


def _result(figure: Figure) -> str:
    if figure.met is None:
        return "-"
    return "pass" if figure.met else "FAIL"


def table(rows: Sequence[Figure]) -> list[str]:
    width = max(len(row.label) for row in rows)
    lines = [f"{'figure':<{width}}  {'median':>9}  {'target':>8}  result  repetitions"]
    for row in rows:
        target = str(row.target) if row.target else "(none)"
        reps = "  ".join(row.show(value) for value in row.repetitions)
        lines.append(f"{row.label:<{width}}  {row.show(row.value):>9}  {target:>8}  {_result(row):<6}  {reps}")
        lines.append(f"    {row.detail}")
    return lines


def memory_breakdown(result: MemoryResult) -> list[str]:
    """Where (d)'s bytes go, from MEMORY USAGE of each key and the sizes of what is stored."""
    value_sds = sds_size(result.value_bytes)
    allocation = result.value_allocation
    header = result.value_bytes - MEMORY_PAYLOAD_BYTES
    by_name = {usage.name.rsplit(":", 1)[1]: usage for usage in result.keys}
    tasks, index = by_name["tasks"], by_name["index"]
    others = sum(usage.bytes_per_task for name, usage in by_name.items() if name not in ("tasks", "index"))
    rest = tasks.bytes_per_task - allocation
    member_alloc = jemalloc_size_class(sds_size(result.index_member_bytes))
    return [
        f"(d) where the {result.bytes_per_task:.1f} bytes per task go"
        " (MEMORY USAGE of each key ÷ tasks, one repetition):",
        f"  tasks  {tasks.type}/{tasks.encoding}: {tasks.bytes_per_task - MEMORY_PAYLOAD_BYTES:.1f} beyond the payload",
        f"    value: {MEMORY_PAYLOAD_BYTES} payload + {header} header + {value_sds - result.value_bytes} sds header/NUL"
        f" = {value_sds} B, served from jemalloc's {allocation} B size class:"
        f" {allocation - MEMORY_PAYLOAD_BYTES} B beyond the payload, {allocation - value_sds} of them rounding",
        f"    field ({result.id_bytes}-character task id), dict entry, bucket share: {rest:.1f}",
        f"  index  {index.type}/{index.encoding}: {index.bytes_per_task:.1f}"
        f" ({result.index_member_bytes}-byte member: group, 16-digit ETA, id; sds {member_alloc} B;"
        " skiplist node; dict entry; bucket share)",
        f"  heads, dead, leased: {others:.1f}",
        f"  counted by used_memory, not by MEMORY USAGE: {result.unattributed:.1f}"
        f" (dict entries: {DICT_ENTRY_ASKED} B asked, {jemalloc_size_class(DICT_ENTRY_ASKED)} B served)",
        f"  floor: a {MEMORY_PAYLOAD_BYTES} B payload kept as its own Redis string costs"
        f" {jemalloc_size_class(sds_size(MEMORY_PAYLOAD_BYTES)) - MEMORY_PAYLOAD_BYTES} B beyond itself"
        " under jemalloc, whatever the rest of the layout",
    ]


def to_json(
    plan: Plan,
    rows: Sequence[Figure],
    valid: Checks,
    reps: Sequence[Repetition],
    memory: Sequence[MemoryResult],
    environment: dict[str, str],
) -> dict[str, object]:
    return {
        "plan": asdict(plan),
        "environment": environment,
        "figures": {
            row.key: {
                "label": row.label,
                "value": row.value,
                "repetitions": list(row.repetitions),
                "target": str(row.target) if row.target else None,
                "met": row.met,
                "detail": row.detail,
            }
            for row in rows
        },
        "checks": {**asdict(valid), "valid": valid.valid},
        "repetitions": [asdict(rep) for rep in reps],
        "memory": [m.to_json() for m in memory],
    }
