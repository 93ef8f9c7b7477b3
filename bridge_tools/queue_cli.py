"""The queue CLI: look into and act on the queues of any running bridge.

    python -m bridge queues [--project P]
    python -m bridge tasks QUEUE [--tag T] [--state available|leased|delayed]
    python -m bridge peek QUEUE TASK
    python -m bridge purge QUEUE [--yes]
    python -m bridge pause QUEUE / resume QUEUE
    python -m bridge clear-tombstones QUEUE
    python -m bridge dead-letters QUEUE
    python -m bridge delete QUEUE TASK / release QUEUE TASK
    python -m bridge insert QUEUE --payload TEXT|@FILE|- [--tag T] [--eta TIME] [--id NAME]

Every command takes ``--url`` (``BRIDGE_URL``, default the local bridge), ``--project``
(``BRIDGE_PROJECT``; the queue listing finds it when one project has the queue),
``--token`` (``BRIDGE_CLIENT_TOKEN``, for a bridge run with auth; the console is for
``--admins``) and ``--json``. Tables are for people, ``--json`` for scripts.

insert and peek are the v1 API's own methods; the others call the console's JSON admin
API (`bridge.console.api`), so the CLI can do what the console can. Plain HTTP from the
standard library: no Google client. purge asks before it deletes; without a terminal to
ask on (a pipe, a script) it refuses unless given ``--yes``.
"""

from __future__ import annotations

import base64
import datetime
import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import click

from bridge_tools.options import TOKEN_ENV

DEFAULT_URL = "http://127.0.0.1:8080"
TIMEOUT_SECONDS = 30
STATES = ("available", "leased", "delayed")
US = 1_000_000

F = TypeVar("F", bound=Callable[..., Any])


class Bridge:
    """A running bridge, reached over HTTP."""

    def __init__(self, url: str, token: str | None) -> None:
        self.url = url.rstrip("/")
        self.token = token

    def call(self, method: str, path: str, body: Any = None, **query: Any) -> Any:
        params = {key: value for key, value in query.items() if value is not None}
        url = self.url + path + (f"?{urlencode(params)}" if params else "")
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
                text = response.read()
        except urllib.error.HTTPError as exc:
            raise click.ClickException(_error_message(exc)) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise click.ClickException(
                f"no bridge answers at {self.url} ({reason}): start one with `python -m bridge serve`, "
                "or point --url (BRIDGE_URL) at yours"
            ) from None
        return json.loads(text) if text.strip() else None

    def listing(self, project: str | None = None) -> dict[str, Any]:
        """The console API's queue listing: ``queues``, and the ``declared`` queue.yaml
        queues no project shows yet."""
        return dict(self.call("GET", "/console/api/queues", project=project))

    def queues(self, project: str | None = None) -> list[dict[str, Any]]:
        return list(self.listing(project)["queues"])

    def project_of(self, queue: str, project: str | None) -> str:
        """--project, or the one project the bridge knows with this queue."""
        if project:
            return project
        found = sorted({row["project"] for row in self.queues() if row["name"] == queue})
        if len(found) == 1:
            return str(found[0])
        if not found:
            raise click.UsageError(f"no project has a queue {queue!r} yet: give --project (or BRIDGE_PROJECT)")
        raise click.UsageError(f"several projects have a queue {queue!r} ({', '.join(found)}): give --project")


def _error_message(exc: urllib.error.HTTPError) -> str:
    try:
        error = json.loads(exc.read())["error"]
        return f"{exc.code} {error['errors'][0]['reason']}: {error['message']}"
    except (ValueError, KeyError, IndexError, TypeError):
        return f"{exc.code} {exc.reason}"


def _client_options(command: F) -> F:
    for option in reversed(
        (
            click.option("--url", envvar="BRIDGE_URL", default=DEFAULT_URL, show_default=True, help="The bridge."),
            click.option("--project", envvar="BRIDGE_PROJECT", help="Project (app id) of the queue."),
            click.option("--token", envvar=TOKEN_ENV, help=f"Bearer token of an admin (or {TOKEN_ENV})."),
            click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts instead of a table."),
        )
    ):
        command = option(command)
    return command


def _print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], numeric: Sequence[int] = ()) -> str:
    """Columns padded to their widest cell; numeric columns right-aligned."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        parts = [cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def _count(value: Any) -> str:
    return "n/a" if value is None else str(value)


def _when(us: str | int | None) -> str:
    if not us or int(us) == 0:
        return "-"
    moment = datetime.datetime.fromtimestamp(int(us) / US, datetime.UTC)
    seconds = int(us) / US - time.time()
    span = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if span >= size:
            ago = f"in {int(span // size)} {unit}" if seconds > 0 else f"{int(span // size)} {unit} ago"
            break
    else:
        ago = "now"
    return f"{moment:%Y-%m-%d %H:%M:%S} ({ago})"


def _admin_path(project: str, queue: str) -> str:
    return f"/console/api/projects/{quote(project, safe='')}/queues/{quote(queue, safe='')}"


def _v1_path(project: str, queue: str) -> str:
    return f"/taskqueue/v1beta2/projects/{quote(project, safe='')}/taskqueues/{quote(queue, safe='')}"


@click.command()
@_client_options
def queues(url: str, project: str | None, token: str | None, as_json: bool) -> None:
    """List the queues of a running bridge, with their counts."""
    listing = Bridge(url, token).listing(project)
    rows = listing["queues"]
    if as_json:
        _print_json(rows)
        return
    if not rows and listing.get("declared"):
        names = ", ".join(listing["declared"])
        click.echo(f"queue.yaml declares {names}; give --project (or BRIDGE_PROJECT) to see them in a project")
        return
    if not rows:
        click.echo("no queues yet: insert a task (python -m bridge insert QUEUE --payload …)")
        return
    headers = ("PROJECT", "QUEUE", "TOTAL", "AVAILABLE", "LEASED", "DELAYED", "LEASED/H", "DROPPED", "PAUSED")
    lines = []
    for row in rows:
        stats = row.get("stats") or {}
        lines.append(
            (
                row["project"],
                row["name"],
                _count(stats.get("totalTasks")),
                _count(stats.get("available")),
                _count(stats.get("leased")),
                _count(stats.get("delayed")),
                _count(stats.get("leasedLastHour")),
                _count(stats.get("deadLetters")),
                "yes" if row.get("paused") else "",
            )
        )
    click.echo(table(headers, lines, numeric=range(2, 8)))


@click.command()
@click.argument("queue")
@click.option("--tag", help="Only tasks with this tag.")
@click.option("--state", type=click.Choice(STATES), help="Only tasks in this state.")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True, help="Most tasks to list.")
@_client_options
def tasks(
    queue: str,
    tag: str | None,
    state: str | None,
    limit: int,
    url: str,
    project: str | None,
    token: str | None,
    as_json: bool,
) -> None:
    """List a queue's tasks in ETA order (without payloads)."""
    bridge = Bridge(url, token)
    path = _admin_path(bridge.project_of(queue, project), queue) + "/tasks"
    found = bridge.call("GET", path, tag=tag, state=state, pageSize=limit)["tasks"]
    if as_json:
        _print_json(found)
        return
    if not found:
        click.echo("no tasks")
        return
    rows = [(t["id"], t["tag"] or "", t["state"], _when(t["etaUs"]), t["leases"]) for t in found]
    click.echo(table(("TASK", "TAG", "STATE", "ETA", "LEASES"), rows, numeric=(4,)))


@click.command()
@click.argument("queue")
@click.argument("task")
@_client_options
def peek(queue: str, task: str, url: str, project: str | None, token: str | None, as_json: bool) -> None:
    """Show one task with its payload, without leasing it."""
    bridge = Bridge(url, token)
    found = bridge.call("GET", _v1_path(bridge.project_of(queue, project), queue) + f"/tasks/{quote(task, safe='')}")
    if as_json:
        _print_json(found)
        return
    payload = base64.urlsafe_b64decode(found.get("payloadBase64", ""))
    for label, value in (
        ("task", found["id"]),
        ("queue", found["queueName"]),
        ("tag", found.get("tag", "")),
        ("eta", _when(found.get("leaseTimestamp"))),
        ("enqueued", _when(found.get("enqueueTimestamp"))),
        ("leases", found.get("retry_count", 0)),
        ("payload", f"{len(payload)} bytes"),
    ):
        click.echo(f"{label + ':':<10}{value}")
    try:
        click.echo(payload.decode("utf-8"))
    except UnicodeDecodeError:
        click.echo(payload.hex(" ", 2))


@click.command()
@click.argument("queue")
@click.option("--yes", is_flag=True, help="Do not ask (needed where there is no terminal to ask on).")
@_client_options
def purge(queue: str, yes: bool, url: str, project: str | None, token: str | None, as_json: bool) -> None:
    """Delete every task of a queue."""
    bridge = Bridge(url, token)
    project = bridge.project_of(queue, project)
    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError(f"purge deletes every task of {project}/{queue}: no terminal to ask, give --yes")
        click.confirm(f"Delete every task of {project}/{queue}?", abort=True)
    _queue_action(bridge, project, queue, "purge", as_json)


def _queue_action(bridge: Bridge, project: str, queue: str, action: str, as_json: bool) -> None:
    result = bridge.call("POST", _admin_path(project, queue) + f"/actions/{action}", {})
    _print_json(result) if as_json else click.echo(result["message"])


def _queue_command(action: str, doc: str) -> click.Command:
    @click.command(action, help=doc)
    @click.argument("queue")
    @_client_options
    def command(queue: str, url: str, project: str | None, token: str | None, as_json: bool) -> None:
        bridge = Bridge(url, token)
        _queue_action(bridge, bridge.project_of(queue, project), queue, action, as_json)

    return command


def _task_command(action: str, doc: str) -> click.Command:
    @click.command(action, help=doc)
    @click.argument("queue")
    @click.argument("task")
    @_client_options
    def command(queue: str, task: str, url: str, project: str | None, token: str | None, as_json: bool) -> None:
        bridge = Bridge(url, token)
        path = _admin_path(bridge.project_of(queue, project), queue) + f"/tasks/{quote(task, safe='')}/actions/{action}"
        result = bridge.call("POST", path, {})
        _print_json(result) if as_json else click.echo(result["message"])

    return command


pause = _queue_command("pause", "Pause a queue: it takes tasks and leases none until resumed.")
resume = _queue_command("resume", "Resume a paused queue.")
clear_tombstones = _queue_command(
    "clear-tombstones", "Free the names of a queue's deleted tasks at once (they are reserved for a week)."
)
delete = _task_command("delete", "Delete one task, leased or not.")
release = _task_command("release", "Release a task's lease: it can be leased again at once.")


@click.command("dead-letters")
@click.argument("queue")
@_client_options
def dead_letters(queue: str, url: str, project: str | None, token: str | None, as_json: bool) -> None:
    """List the tasks dropped after maxLeases leases, the latest first."""
    bridge = Bridge(url, token)
    found = bridge.call("GET", _admin_path(bridge.project_of(queue, project), queue) + "/dead-letters")["deadLetters"]
    if as_json:
        _print_json(found)
        return
    if not found:
        click.echo("no dead letters")
        return
    rows = [(d["id"], d["tag"] or "", d["leases"], d["payloadSize"], _when(d["droppedUs"])) for d in found]
    click.echo(table(("TASK", "TAG", "LEASES", "BYTES", "DROPPED"), rows, numeric=(2, 3)))


@click.command()
@click.argument("queue")
@click.option("--payload", required=True, help="The payload: text, @FILE for a file's bytes, or - for standard input.")
@click.option("--tag", help="The task's tag.")
@click.option("--eta", help="First availability: seconds from now (90), or an ISO time (2030-01-02T03:04:05Z).")
@click.option("--id", "task_id", help="The task's name (default: the bridge makes one).")
@_client_options
def insert(
    queue: str,
    payload: str,
    tag: str | None,
    eta: str | None,
    task_id: str | None,
    url: str,
    project: str | None,
    token: str | None,
    as_json: bool,
) -> None:
    """Insert a task (the v1 API's tasks.insert)."""
    if payload == "-":
        data = sys.stdin.buffer.read()
    elif payload.startswith("@"):
        data = Path(payload[1:]).read_bytes()
    else:
        data = payload.encode()
    bridge = Bridge(url, token)
    project = project or _known_project(bridge, queue)
    body: dict[str, Any] = {"payloadBase64": base64.urlsafe_b64encode(data).decode()}
    if tag is not None:
        body["tag"] = tag
    if task_id is not None:
        body["id"] = task_id
    if eta is not None:
        body["leaseTimestamp"] = str(_eta_us(eta))
    task = bridge.call("POST", _v1_path(project, queue) + "/tasks", body)
    if as_json:
        _print_json(task)
    else:
        click.echo(f"inserted {task['id']} into {project}/{queue}, ETA {_when(task.get('leaseTimestamp'))}")


def _known_project(bridge: Bridge, queue: str) -> str:
    try:
        return bridge.project_of(queue, None)
    except click.UsageError:
        raise click.UsageError("give --project (or BRIDGE_PROJECT): the project (app id) to insert into") from None


def _eta_us(text: str) -> int:
    try:
        return int((time.time() + float(text)) * US)
    except ValueError:
        pass
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            "seconds from now (90) or an ISO time (2030-01-02T03:04:05Z)", param_hint="--eta"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return int(moment.timestamp() * US)
