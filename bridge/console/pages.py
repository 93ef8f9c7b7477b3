"""The console's pages: queues, one queue, one task, and the forms that act on them."""

from __future__ import annotations

import re
import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from flask import Blueprint, g, redirect, render_template, request, url_for
from markupsafe import Markup
from werkzeug.wrappers import Response

from backends.base import MinuteActivity, TaskState, state_of
from backends.errors import ApiError, InvalidArgument, PermissionDenied, Unauthenticated
from bridge.console import (
    PAGE_SIZE,
    QUEUE_ACTIONS,
    TASK_ACTIONS,
    now_us,
    present,
    queue_of,
    queue_rows,
    run_action,
    task_page,
    unplaced_queues,
)
from bridge.console.access import COOKIE, CSRF_FIELD, Access, clear_cookie
from bridge.ops import logs
from bridge.version import __version__

if TYPE_CHECKING:
    from bridge.app import Bridge

#: Endpoints a visitor reaches before signing in.
_PUBLIC = frozenset({"console.sign_in", "console.static"})
#: Where the sign-in may lead: a console path, printable, no backslash (no header
#: injection, no way off the site).
_NEXT = re.compile(r"/console/[!-\[\]-~]*")


def blueprint(bridge: Bridge) -> Blueprint:
    pages = Blueprint(
        "console",
        __name__,
        url_prefix="/console",
        template_folder="templates",
        static_folder="static",
    )
    access = Access(bridge.settings, bridge.authenticator)
    backend = bridge.backend

    @pages.before_request
    def admit() -> Response | None:
        if access.open and not request.cookies.get(COOKIE):
            g.console_cookie = secrets.token_urlsafe(32)
        if request.endpoint in _PUBLIC:
            return None
        try:
            g.identity = access.identify(request)
        except Unauthenticated:
            return redirect(url_for("console.sign_in", next=request.full_path))
        if request.method == "POST":
            access.check_action(request)
        return None

    @pages.after_request
    def remember(response: Response) -> Response:
        cookie = g.get("console_cookie")
        if cookie:
            access.set_cookie(request, response, cookie)
        # The pages show payloads: never cache them, never frame them, never sniff them.
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault(
            "Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"
        )
        return response

    @pages.context_processor
    def common() -> dict[str, Any]:
        cookie = request.cookies.get(COOKIE) or g.get("console_cookie") or ""
        return {
            "csrf_field": CSRF_FIELD,
            "csrf": access.csrf_token(cookie) if cookie else "",
            "identity": g.get("identity"),
            "signed_in": not access.open,
            "version": __version__,
            "backend_name": bridge.settings.backend.split("://")[0] + "://",
            "when": present.when,
            "size": present.size,
            "notice": request.args.get("notice", "")[:300],
        }

    @pages.errorhandler(ApiError)
    def failed(exc: ApiError) -> tuple[str, int]:
        request.environ[logs.REASON] = exc.reason
        return render_template("error.html", status=exc.status, message=exc.message), exc.status

    @pages.route("/")
    def queues() -> str:
        project = request.args.get("project") or None
        rows = queue_rows(bridge, project)
        return render_template(
            "queues.html",
            rows=rows,
            unplaced=unplaced_queues(bridge, rows),
            project=project,
            complete="list_queues" in backend.supports,
            now_us=now_us(),
            relative=present.relative,
        )

    @pages.route("/projects/<project>/queues/<taskqueue>")
    def queue(project: str, taskqueue: str) -> str:
        queue = queue_of(bridge, project, taskqueue)
        info = backend.queue_info(queue, with_stats=True)
        tag = request.args.get("tag")
        state_name = request.args.get("state") or None
        try:
            state = TaskState(state_name) if state_name else None
        except ValueError:
            raise InvalidArgument(f"state must be one of {', '.join(TaskState)}", location="state") from None
        token = request.args.get("page") or None
        page = task_page(bridge, queue, page_size=PAGE_SIZE, page_token=token, tag=tag or None, state=state)
        activity = backend.activity(queue) if "activity" in backend.supports else None
        charts = _charts(activity, info.stats.total_tasks if info.stats else None) if activity is not None else None
        dead = backend.dead_letters(queue) if "dead_letters" in backend.supports else None
        now = now_us()
        filters = {key: value for key, value in (("tag", tag), ("state", state_name)) if value}
        return render_template(
            "queue.html",
            project=project,
            queue=queue,
            info=info,
            stats=info.stats,
            tasks=[(task, state_of(task, now)) for task in page.tasks],
            next_url=_with(request.path, filters, page=page.next_page_token) if page.next_page_token else None,
            first_url=_with(request.path, filters) if token else None,
            tag=tag or "",
            state=state_name or "",
            states=list(TaskState),
            charts=charts,
            dead=dead,
            now_us=now,
            relative=present.relative,
            supports=backend.supports,
            page_size=PAGE_SIZE,
        )

    @pages.route("/projects/<project>/queues/<taskqueue>/tasks/<task>")
    def task(project: str, taskqueue: str, task: str) -> str:
        queue = queue_of(bridge, project, taskqueue)
        found = backend.get(queue, task)
        now = now_us()
        return render_template(
            "task.html",
            project=project,
            queue=queue,
            task=found,
            state=state_of(found, now),
            payload=present.payload_view(found.payload or b""),
            now_us=now,
            relative=present.relative,
        )

    @pages.route("/projects/<project>/queues/<taskqueue>/actions/<action>", methods=["POST"])
    def queue_action(project: str, taskqueue: str, action: str) -> Response:
        message = run_action(bridge, QUEUE_ACTIONS, action, queue_of(bridge, project, taskqueue), None)
        return redirect(_with(url_for("console.queue", project=project, taskqueue=taskqueue), {}, notice=message))

    @pages.route("/projects/<project>/queues/<taskqueue>/tasks/<task>/actions/<action>", methods=["POST"])
    def task_action(project: str, taskqueue: str, task: str, action: str) -> Response:
        message = run_action(bridge, TASK_ACTIONS, action, queue_of(bridge, project, taskqueue), task)
        if action == "delete":
            target = url_for("console.queue", project=project, taskqueue=taskqueue)
        else:
            target = url_for("console.task", project=project, taskqueue=taskqueue, task=task)
        return redirect(_with(target, {}, notice=message))

    @pages.route("/sign-in", methods=["GET", "POST"])
    def sign_in() -> Response | tuple[str, int] | str:
        target = request.values.get("next", "")
        target = target if _NEXT.fullmatch(target) else url_for(".queues")
        if access.open:
            return redirect(target)
        if request.method == "GET":
            return render_template("sign_in.html", next=target, error=None)
        token = request.form.get("token", "").strip()
        try:
            identity = access.admit(f"Bearer {token}")
        except (Unauthenticated, PermissionDenied) as exc:
            request.environ[logs.REASON] = exc.reason
            return render_template("sign_in.html", next=target, error=exc.message), exc.status
        response = redirect(target)
        access.set_cookie(request, response, access.session(identity))
        g.identity = identity
        return response

    @pages.route("/sign-out", methods=["POST"])
    def sign_out() -> Response:
        response = redirect(url_for(".sign_in"))
        clear_cookie(response)
        return response

    return pages


def _with(path: str, filters: dict[str, str], **more: str | None) -> str:
    query = {**filters, **{key: value for key, value in more.items() if value}}
    return f"{path}?{urlencode(query)}" if query else path


def _charts(activity: list[MinuteActivity], current_depth: int | None) -> list[tuple[str, str, Markup]]:
    """(title, summary, SVG) of each chart of the last hour."""
    charts = []
    for title, counts in (
        ("Inserted per minute", [minute.inserted for minute in activity]),
        ("Leased per minute", [minute.leased for minute in activity]),
        ("Deleted per minute", [minute.deleted for minute in activity]),
    ):
        charts.append((title, f"{sum(counts)} this hour", present.chart(title, counts)))
    depth = present.depths([minute.depth for minute in activity], current_depth)
    now = "n/a" if current_depth is None else str(current_depth)
    charts.append(("Depth (live tasks)", f"{now} now", present.chart("Depth (live tasks)", depth, line=True)))
    return charts
