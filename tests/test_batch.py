"""Batch requests through Google's client: many calls in one POST, each answered on its own."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest

from bridge.access.auth import hash_token
from bridge.taskqueue.batch import MAX_PARTS
from tests.support.api import PROJECT, QUEUE, b64, ids, insert, listed
from tests.support.http import BridgeServer, Reply

TASKS = f"/taskqueue/v1beta2/projects/{PROJECT}/taskqueues/{QUEUE}/tasks"


class Answers:
    """The callback of a batch: what each request id got back."""

    def __init__(self) -> None:
        self.results: dict[str, Any] = {}
        self.errors: dict[str, HttpError] = {}

    def __call__(self, request_id: str, response: Any, exception: HttpError | None) -> None:
        if exception is not None:
            self.errors[request_id] = exception
        else:
            self.results[request_id] = response

    def reason(self, request_id: str) -> tuple[int, str]:
        error = self.errors[request_id]
        envelope = json.loads(error.content)["error"]
        assert envelope["code"] == error.resp.status
        return error.resp.status, envelope["errors"][0]["reason"]


def new_insert(api: Any, task_id: str, queue: str = QUEUE) -> Any:
    return api.tasks().insert(project=PROJECT, taskqueue=queue, body={"id": task_id, "payloadBase64": b64(b"x")})


def new_delete(api: Any, task_id: str, queue: str = QUEUE) -> Any:
    return api.tasks().delete(project=PROJECT, taskqueue=queue, task=task_id)


def raw_batch(requests: list[str], boundary: str = "b0undary", newline: str = "\r\n") -> tuple[bytes, dict[str, str]]:
    """A batch body as hand-written clients send it (no Content-ID, CRLF lines)."""
    parts = [
        f"--{boundary}{newline}Content-Type: application/http{newline}{newline}{text}{newline}" for text in requests
    ]
    body = "".join(parts) + f"--{boundary}--{newline}"
    return body.encode(), {"Content-Type": f"multipart/mixed; boundary={boundary}"}


def test_a_batch_of_inserts_and_deletes_runs_in_order_and_answers_each_request(api: Any) -> None:
    answers = Answers()
    batch = api.new_batch_http_request(callback=answers)
    for name in ("a", "b", "c"):
        batch.add(new_insert(api, name), request_id=f"insert-{name}")
    batch.add(new_delete(api, "b"), request_id="delete-b")
    # In order: the task inserted and deleted above is gone by now.
    batch.add(api.tasks().get(project=PROJECT, taskqueue=QUEUE, task="b"), request_id="get-b")
    batch.add(api.tasks().list(project=PROJECT, taskqueue=QUEUE), request_id="list")
    batch.execute()

    assert {name: answers.results[f"insert-{name}"]["id"] for name in "abc"} == {"a": "a", "b": "b", "c": "c"}
    assert answers.results["insert-a"]["queueName"] == f"projects/{PROJECT}/taskqueues/{QUEUE}"
    assert answers.results["delete-b"] == ""
    assert answers.reason("get-b") == (404, "notFound")
    assert sorted(ids(answers.results["list"]["items"])) == ["a", "c"]
    assert sorted(ids(listed(api))) == ["a", "c"]


def test_a_failing_part_fails_alone(api: Any) -> None:
    insert(api, id="taken")
    answers = Answers()
    batch = api.new_batch_http_request(callback=answers)
    batch.add(new_insert(api, "first"), request_id="1")
    batch.add(new_insert(api, "taken"), request_id="duplicate")
    batch.add(api.tasks().lease(project=PROJECT, taskqueue=QUEUE, numTasks=0, leaseSecs=60), request_id="bad-lease")
    batch.add(new_delete(api, "missing"), request_id="missing")
    batch.add(new_insert(api, "last"), request_id="2")
    batch.execute()

    assert answers.reason("duplicate") == (409, "duplicate")
    assert answers.reason("bad-lease") == (400, "invalid")
    assert answers.reason("missing") == (404, "notFound")
    assert (answers.results["1"]["id"], answers.results["2"]["id"]) == ("first", "last")
    assert sorted(ids(listed(api))) == ["first", "last", "taken"]


def test_the_later_batch_path_is_served_too(bridge: BridgeServer, api: Any) -> None:
    answers = Answers()
    batch = BatchHttpRequest(callback=answers, batch_uri=bridge.url + "/batch/taskqueue/v1beta2")
    batch.add(new_insert(api, "x"), request_id="x")
    batch.execute(http=api._http)
    assert answers.results["x"]["id"] == "x"
    assert ids(listed(api)) == ["x"]


def test_a_forbidden_part_is_refused_alone_with_auth_on(
    make_bridge: Callable[..., BridgeServer], tmp_path: Path
) -> None:
    queues = tmp_path / "queue.yaml"
    queues.write_text(f"queue:\n- name: {QUEUE}\n  mode: pull\n  acl:\n  - writer_email: producer@example.com\n")
    queues.write_text(queues.read_text() + "- name: closed\n  mode: pull\n  acl:\n  - user_email: other@example.com\n")
    tokens = tmp_path / "tokens.txt"
    tokens.write_text(f"{hash_token('producer-token-0123456789')} producer@example.com\n")
    server = make_bridge(auth="token", tokens_file=tokens, queues=queues)
    api = server.api(token="producer-token-0123456789")

    answers = Answers()
    batch = api.new_batch_http_request(callback=answers)
    batch.add(new_insert(api, "mine"), request_id="allowed")
    batch.add(new_insert(api, "theirs", queue="closed"), request_id="forbidden")
    batch.add(api.tasks().list(project=PROJECT, taskqueue=QUEUE), request_id="not-a-consumer")
    batch.execute()

    assert answers.results["allowed"]["id"] == "mine"
    assert answers.reason("forbidden") == (403, "forbidden")
    assert answers.reason("not-a-consumer") == (403, "forbidden")

    # Without credentials on the batch, every part is refused on its own, and nothing changes.
    body, headers = raw_batch([f'POST {TASKS} HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{{"id": "anon"}}'])
    reply = server.request("POST", "/batch", body, headers)
    assert reply.status == 200
    (part,) = parts_of(reply)
    assert part.startswith(b"HTTP/1.1 401 ")
    owner = make_bridge(queues=queues, auth="none").api()
    assert ids(listed(owner)) == ["mine"]
    assert listed(owner, queue="closed") == []


def parts_of(reply: Reply) -> list[bytes]:
    """The HTTP messages of a batch answer, read with the standard library's MIME parser."""
    message = BytesParser().parsebytes(
        b"Content-Type: " + reply.headers["Content-Type"].encode() + b"\r\n\r\n" + reply.body
    )
    answers: list[bytes] = []
    for part in message.walk():
        if part.get_content_type() == "application/http":
            data = part.get_payload(decode=True)
            assert isinstance(data, bytes)
            answers.append(data)
    return answers


def test_a_hand_written_batch_without_content_ids_is_answered_in_order(bridge: BridgeServer, api: Any) -> None:
    body, headers = raw_batch(
        [
            f"POST {TASKS}?alt=json HTTP/1.1\r\nContent-Type: application/json\r\n\r\n" + '{"id": "n1"}',
            f"GET {TASKS}/n1 HTTP/1.1",
            f"DELETE {TASKS}/n1 HTTP/1.1",
            # Some clients write the whole URL; its host is not looked at.
            f"GET {bridge.url}{TASKS}/n1 HTTP/1.1",
        ]
    )
    reply = bridge.request("POST", "/batch", body, headers)
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("multipart/mixed; boundary=")
    statuses = [int(part.split(b" ", 2)[1]) for part in parts_of(reply)]
    assert statuses == [200, 200, 204, 404]
    assert "Content-ID" not in reply.body.decode()
    assert listed(api) == []


def test_more_than_a_thousand_parts_is_a_400_and_runs_none_of_them(bridge: BridgeServer, api: Any) -> None:
    message = MIMEMultipart("mixed")
    for number in range(MAX_PARTS + 1):
        part = MIMENonMultipart("application", "http")
        part["Content-ID"] = f"<n + {number}>"
        part.set_payload(f'POST {TASKS} HTTP/1.1\nContent-Type: application/json\n\n{{"id": "t{number}"}}')
        message.attach(part)
    body = message.as_bytes().split(b"\n\n", 1)[1]
    reply = bridge.request("POST", "/batch", body, {"Content-Type": message["Content-Type"]})
    assert reply.status == 400, reply.body[:500]
    assert reply.json["error"]["errors"][0]["reason"] == "invalid"
    assert "1000" in reply.json["error"]["message"]
    assert listed(api) == []


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b'{"not": "a batch"}'),
        ("multipart/mixed", b"--x\r\nContent-Type: application/http\r\n\r\nGET / HTTP/1.1\r\n--x--\r\n"),
        ("multipart/mixed; boundary=x", b""),
        ("multipart/mixed; boundary=x", b"--x\r\nContent-Type: application/http\r\n\r\nGET /a HTTP/1.1\r\n"),
        ("multipart/mixed; boundary=x", b"--x\r\nContent-Type: text/plain\r\n\r\nhello\r\n--x--\r\n"),
        ("multipart/mixed; boundary=x", b"--x\r\nContent-Type: application/http\r\n\r\nnot a request\r\n--x--\r\n"),
        (
            "multipart/mixed; boundary=x",
            b"--x\r\nContent-Type: application/http\r\n\r\n"
            b"POST /a HTTP/1.1\r\nContent-Length: 99\r\n\r\n{}\r\n--x--\r\n",
        ),
    ],
    ids=["not-multipart", "no-boundary", "empty", "unclosed", "not-http", "no-request-line", "short-body"],
)
def test_a_malformed_batch_is_a_400_in_the_envelope(bridge: BridgeServer, content_type: str, body: bytes) -> None:
    reply = bridge.request("POST", "/batch", body, {"Content-Type": content_type})
    assert reply.status == 400, reply.body[:300]
    assert reply.json["error"]["errors"][0]["reason"] == "invalid"
    assert reply.json["error"]["message"].startswith("Malformed batch request")


def test_a_batch_inside_a_batch_is_refused_in_its_part(bridge: BridgeServer) -> None:
    inner, inner_headers = raw_batch([f"GET {TASKS} HTTP/1.1"], boundary="inner")
    text = f"POST /batch HTTP/1.1\r\nContent-Type: {inner_headers['Content-Type']}\r\n\r\n{inner.decode()}"
    body, headers = raw_batch([text, f"GET {TASKS} HTTP/1.1"], boundary="outer")
    reply = bridge.request("POST", "/batch", body, headers)
    nested, listing = parts_of(reply)
    assert nested.startswith(b"HTTP/1.1 400 ") and b"A batch cannot contain a batch" in nested
    assert listing.startswith(b"HTTP/1.1 200 ")


def test_the_body_limit_applies_to_the_whole_batch(make_bridge: Callable[..., BridgeServer]) -> None:
    server = make_bridge(max_body_bytes=2000)
    small = f"POST {TASKS} HTTP/1.1\r\nContent-Type: application/json\r\n\r\n" + '{"id": "s"}'
    body, headers = raw_batch([small] * 30)
    assert len(body) > 2000
    reply = server.request("POST", "/batch", body, headers)
    assert reply.status == 413
    assert reply.json["error"]["errors"][0]["reason"] == "requestEntityTooLarge"


def test_batch_takes_only_post(bridge: BridgeServer) -> None:
    reply = bridge.request("GET", "/batch")
    assert reply.status == 405
    assert reply.json["error"]["errors"][0]["reason"] == "httpMethodNotAllowed"


@pytest.mark.slow
@pytest.mark.redis
def test_the_batch_benchmark_runs_and_prints_both_ratios(redis_binary: str, tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, str(root / "bench" / "batch.py"), "--tasks", "100"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    medians = [line for line in done.stdout.splitlines() if "/ single calls: median" in line]
    assert [line.split(":")[0] for line in medians] == ["Google's client", "bare HTTP"], done.stdout
