"""The console in a real headless Chromium (Debian's ``chromium``, driven by Playwright).

The browser is the system's, found on PATH (or at ``BRIDGE_TEST_CHROMIUM``); Playwright
never downloads one. Each page's screenshot is written under the test's temporary folder.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backends.redis.memory import MemoryBackend
from bridge import create_app
from bridge.access.auth import hash_token
from bridge.settings import Settings
from tests.conftest import unavailable
from tests.support.http import BridgeServer

PROJECT = "s~shop"
ADMIN_TOKEN = "admin-token-0123456789abcdef"
WORKER_TOKEN = "worker-token-0123456789abcdef"


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    executable = os.environ.get("BRIDGE_TEST_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        unavailable("chromium is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed (it is in requirements-dev.txt)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def server(memory_server: BridgeServer) -> BridgeServer:
    return memory_server


@pytest.fixture
def memory_backend() -> Iterator[MemoryBackend]:
    backend = MemoryBackend.from_url("memory://")
    yield backend
    backend.close()


def _insert(api: Any, queue: str, task: str, payload: bytes, **fields: Any) -> None:
    body = {"id": task, "payloadBase64": base64.urlsafe_b64encode(payload).decode(), **fields}
    api.tasks().insert(project=PROJECT, taskqueue=queue, body=body).execute()


class Watched:
    """A page whose console errors, failed requests and foreign requests are recorded."""

    def __init__(self, page: Any, origin: str, shots: Path) -> None:
        self.page, self.origin, self.shots = page, origin, shots
        self.problems: list[str] = []
        page.on("console", lambda m: self.note(m.type == "error", f"console: {m.text}"))
        page.on("pageerror", lambda e: self.note(True, f"page error: {e}"))
        page.on("requestfailed", lambda r: self.note(True, f"failed: {r.url} {r.failure}"))
        page.on("response", lambda r: self.note(r.status >= 400, f"{r.status}: {r.url}"))
        page.on("request", lambda r: self.note(not r.url.startswith(origin), f"foreign request: {r.url}"))

    def click(self, selector: str) -> None:
        """Click, and wait for the page it leads to to finish loading: a click made while
        the previous page still loads its (deferred) script aborts that request, which
        would be noted as a failure of the page rather than of the test's haste."""
        self.page.click(selector)
        self.page.wait_for_load_state("load")

    def note(self, wrong: bool, problem: str) -> None:
        if wrong:
            self.problems.append(problem)

    def shot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


def test_the_console_shows_queues_tasks_and_payloads_and_purges(
    chromium: Any, server: BridgeServer, tmp_path: Path
) -> None:
    api = server.api()
    _insert(api, "render", "frame-0001", json.dumps({"movie": 7, "frames": [1, 2, 3]}).encode(), tag="movie-7")
    _insert(api, "render", "frame-0002", b"plain text payload", tag="movie-7")
    in_two_hours = str((int(time.time()) + 7200) * 1_000_000)
    _insert(api, "render", "frame-0003", b"later", tag="movie-8", leaseTimestamp=in_two_hours)
    _insert(api, "reports", "daily", b"\x00\x01\x02binary\xff")
    api.tasks().lease(project=PROJECT, taskqueue="render", numTasks=1, leaseSecs=300).execute()

    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    watched = Watched(page, server.url, tmp_path)

    page.goto(server.url + "/")  # the bridge's root leads to the console
    assert page.url == server.url + "/console/"
    rows = page.locator("#queues tbody tr")
    assert rows.count() == 2
    assert rows.nth(0).locator("td").all_inner_texts()[:6] == ["shop", "render", "3", "1", "1", "1"]
    assert rows.nth(1).locator("td").all_inner_texts()[:3] == ["shop", "reports", "1"]
    watched.shot("1-queues")

    watched.click("text=render")
    assert page.locator("h1").inner_text().startswith("render")
    tasks = page.locator("#tasks tbody tr")
    assert [tasks.nth(i).locator("td").first.inner_text() for i in range(tasks.count())] == [
        "frame-0002",
        "frame-0001",
        "frame-0003",
    ]
    assert tasks.nth(1).locator(".badge").inner_text() == "leased"
    assert tasks.nth(2).locator(".badge").inner_text() == "delayed"
    assert page.locator("svg.chart").count() == 4
    watched.shot("2-queue")

    page.select_option("select[name=state]", "delayed")
    watched.click("text=Filter")
    assert page.locator("#tasks tbody tr").count() == 1

    page.goto(server.url + "/console/")
    watched.click("text=render")
    watched.click("text=frame-0001")
    assert page.locator("h1").inner_text() == "frame-0001"
    payload = page.locator("#payload").inner_text()
    assert json.loads(payload) == {"movie": 7, "frames": [1, 2, 3]} and '\n  "movie": 7' in payload
    watched.shot("3-task")

    page.goto(server.url + "/console/")
    watched.click("text=reports")
    watched.click("text=daily")
    assert page.locator("#payload").inner_text().startswith("00000000  00 01 02 62 69 6e 61 72 79 ff")
    watched.shot("4-binary-task")

    page.goto(server.url + "/console/")
    watched.click("text=render")
    watched.click("#action-purge")
    assert "Purged render: 3 tasks deleted" in page.locator(".notice").inner_text()
    watched.shot("5-purged")
    context.close()

    assert "items" not in api.tasks().list(project=PROJECT, taskqueue="render").execute()
    assert [t["id"] for t in api.tasks().list(project=PROJECT, taskqueue="reports").execute()["items"]] == ["daily"]
    assert watched.problems == []
    for name in ("1-queues", "2-queue", "3-task", "4-binary-task", "5-purged"):
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000


def test_an_admin_signs_in_with_a_token_and_a_worker_is_turned_away(
    chromium: Any, memory_backend: MemoryBackend, tmp_path: Path
) -> None:
    tokens = tmp_path / "tokens.txt"
    tokens.write_text(f"{hash_token(ADMIN_TOKEN)} ops@example.com\n{hash_token(WORKER_TOKEN)} worker@example.com\n")
    settings = Settings(auth="token", tokens_file=tokens, admins=("ops@example.com",))
    server = BridgeServer(create_app(settings, backend=memory_backend))
    try:
        _insert(server.api(ADMIN_TOKEN), "render", "one", b"x")
        context = chromium.new_context(viewport={"width": 1280, "height": 720})
        page = context.new_page()
        page.goto(server.url + "/console/projects/shop/queues/render")
        assert "/console/sign-in" in page.url
        watched = Watched(page, server.url, tmp_path)
        watched.shot("6-sign-in")
        page.fill("#token", WORKER_TOKEN)
        watched.click("button[type=submit]")
        assert "worker@example.com may not use the console" in page.locator(".error").inner_text()
        watched.problems.clear()  # the refusal is a 403, as it should be
        page.fill("#token", ADMIN_TOKEN)
        watched.click("button[type=submit]")
        assert page.url == server.url + "/console/projects/shop/queues/render"
        assert "ops@example.com" in page.locator("header").inner_text()
        watched.click("#action-pause")
        assert "Paused render" in page.locator(".notice").inner_text()
        watched.shot("7-signed-in")
        watched.click("text=Sign out")
        assert "/console/sign-in" in page.url
        context.close()
        assert watched.problems == []
    finally:
        server.close()


#: A page on another site: the attacks of issue 19's finding 5, each as a page can send
#: it with no CORS preflight. Every fetch is no-cors (the page cannot read the answers; it
#: only needs the side effects).
ATTACKS = """<!doctype html><meta charset="utf-8"><title>A page on another site</title>
<h1>Cat pictures</h1><ul id="log"></ul>
<form id="form" method="POST" target="sink" enctype="text/plain"></form><iframe name="sink"></iframe>
<script>
const bridge = BRIDGE;
const shop = "/taskqueue/v1beta2/projects/s~shop/taskqueues/render";
const v2 = "/v2beta2/projects/shop/locations/l/queues/render";
const api = "/console/api/projects/shop/queues/render";
const plain = {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"}, body: "{}"};
const log = (what) => {
  const li = document.createElement("li");
  li.textContent = what;
  document.getElementById("log").append(li);
};
const part = (text) => new Blob([text.replaceAll("\\n", "\\r\\n")], {type: "application/http"});
async function attack() {
  const batch = new FormData();
  const json = "Content-Type: application/json\\n\\n{}";
  batch.append("a", part(`POST ${api}/actions/purge HTTP/1.1\\n${json}`));
  batch.append("b", part(`DELETE ${shop}/tasks/keep HTTP/1.1\\n\\n`));
  batch.append("c", part(`POST ${v2}:pause HTTP/1.1\\n${json}`));
  const sent = [
    ["batch of FormData", fetch(bridge + "/batch", {method: "POST", mode: "no-cors", body: batch})],
    ["text/plain lease", fetch(bridge + shop + "/tasks/lease?numTasks=100&leaseSecs=604800", plain)],
    ["console API purge", fetch(bridge + api + "/actions/purge", plain)],
    ["v2beta2 pause", fetch(bridge + v2 + ":pause", plain)],
  ];
  for (const [name, request] of sent) {
    try { await request; log(name + ": sent"); } catch (e) { log(name + ": " + e); }
  }
  // An HTML form, as the oldest attack: a console action without its CSRF token.
  const form = document.getElementById("form");
  form.action = bridge + "/console/projects/shop/queues/render/actions/purge";
  await new Promise((done) => { document.querySelector("iframe").onload = done; form.submit(); });
  log("form: sent");
  window.done = true;
}
attack();
</script>
"""


def test_a_page_on_another_site_changes_nothing_through_the_browser(
    chromium: Any, server: BridgeServer, tmp_path: Path
) -> None:
    """Issue 19's finding 5 in a real browser, with auth off (the emulator's default): a
    page on another site sends what a page can send without asking (FormData to /batch,
    no-cors text/plain to the v1 lease, the console's and v2beta2's actions, an HTML form)
    and nothing changes; every one of them is refused by the gate (403)."""
    from flask import Flask

    api = server.api()
    _insert(api, "render", "keep", b"mine")
    _insert(api, "render", "also", b"mine too")
    evil = Flask("evil")
    # Another site: the bridge is 127.0.0.1, the page localhost (Sec-Fetch-Site: cross-site).
    evil.add_url_rule("/", "page", lambda: ATTACKS.replace("BRIDGE", json.dumps(server.url)))
    page_server = BridgeServer(evil)
    try:
        context = chromium.new_context(viewport={"width": 900, "height": 500})
        page = context.new_page()
        answers: list[tuple[int, str]] = []
        page.on("response", lambda r: answers.append((r.status, r.url)) if r.url.startswith(server.url) else None)
        page.goto(f"http://localhost:{page_server.port}/")
        page.wait_for_function("window.done === true", timeout=20_000)
        page.wait_for_timeout(300)  # the last answers' events
        shot = tmp_path / "8-another-site.png"
        page.screenshot(path=str(shot), full_page=True)
        logged = page.locator("#log li").all_inner_texts()
        context.close()
    finally:
        page_server.close()
    assert shot.stat().st_size > 5_000
    assert logged == [
        "batch of FormData: sent",
        "text/plain lease: sent",
        "console API purge: sent",
        "v2beta2 pause: sent",
        "form: sent",
    ]
    assert len(answers) == 5 and {status for status, _ in answers} == {403}, answers
    tasks = api.tasks().list(project=PROJECT, taskqueue="render").execute()["items"]
    assert sorted((task["id"], task["retry_count"]) for task in tasks) == [("also", 0), ("keep", 0)]
    info = server.request("GET", "/console/api/projects/shop/queues/render").json
    assert info["paused"] is False and info["stats"]["totalTasks"] == 2
