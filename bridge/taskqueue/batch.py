"""Batch requests: many API calls in one ``multipart/mixed`` POST, as Google's front end took them.

The Discovery document names the path (``batchPath``); Google's Python client
(``new_batch_http_request()``) posts there a ``multipart/mixed`` body whose parts are
``application/http``, each a whole HTTP request with a ``Content-ID``::

    --BOUNDARY
    Content-Type: application/http
    Content-ID: <b29c5de2-0db4-490b-b421-6a51b598bd22 + 1>

    DELETE /taskqueue/v1beta2/projects/s~app/taskqueues/render/tasks/t1 HTTP/1.1

    --BOUNDARY--

Each part runs through the gate's whole HTTP pipeline, in order, as if it had arrived
alone: same checks (the cross-site policy included), routing, validation, credentials,
ACL, log line, metrics and error envelope. One failing part never fails the others. A
part may call the taskqueue v1beta2 API only (a path under `API_PREFIX`; any other is
404 ``notFound`` in its part, a batch within a batch 400). The outer request's headers,
except its ``Content-*`` and hop-by-hop ones, apply to every part unless the part sets
its own (so one ``Authorization`` on the batch covers all its calls, as Google
documented). The answer is ``multipart/mixed`` with one ``application/http`` part per
request, in order, with ``Content-ID: <response-ID>`` for a request part's
``Content-ID: <ID>``.

The response budget (``--max-response-bytes``) holds for the batch as a whole, so a
small batch cannot ask for a huge answer (16 leases of 1,000 tasks, 200 GETs of a 1 MiB
task):

1. the whole answer (every part's status line, headers and body, and the multipart
   framing) stays under it;
2. room for a refusal of every part (`REFUSAL_BYTES` and its Content-ID) is set aside
   first; a batch whose budget cannot hold even that is refused whole (400);
3. before a part runs, what is left must hold the most its answer can weigh
   (`bridge.gate.budget.PART_BYTES` for its headers, plus one task with a 1 MiB payload
   for get, insert, update and patch, one listed task for list (with its payload in
   the legacy-local dialect), an empty answer for lease); otherwise it is answered 400
   ``responseTooLarge`` without running, and so are the parts after it that do not fit
   either;
4. a lease part leases only what fits what is left, possibly nothing (not even its
   first task, which a lease alone always gets), and a list part lists only that;
5. each part is then charged what its answer actually weighed.

Only the batch itself is refused as a whole: not ``multipart/mixed``, a part that is not
an HTTP request (or whose Content-ID is not printable ASCII), more than `MAX_PARTS`
parts, a budget too small for its refusals (400); a body over the limit (413).
"""

from __future__ import annotations

import email.errors
import email.message
import email.parser
import http.client
import io
import re
import secrets
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, current_app, request

from backends.errors import InvalidArgument, NotFound
from bridge.gate import budget
from bridge.gate.budget import Budget
from bridge.gate.http import CHECKS_KEY

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

#: Google's limit on the calls in one batch.
MAX_PARTS = 1000
#: Where batches are taken: ``batchPath`` of the revision the bridge serves, and of later ones.
PATHS = ("/batch", "/batch/taskqueue/v1beta2")
#: What a part may call: the API's methods.
API_PREFIX = "/taskqueue/v1beta2/"
#: The most a part's refusal weighs in the answer, besides its Content-ID.
REFUSAL_BYTES = 1536
#: A Content-ID the answer can repeat: printable ASCII.
_CONTENT_ID = re.compile(r"[ -~]{0,1000}")

#: Set in a part's environ; a batch inside a batch is refused.
_PART = "bridge.batch_part"
#: Outer environ keys a part inherits: the server and connection, not the request.
_INHERITED = ("SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL", "REMOTE_ADDR", "REMOTE_PORT", "SCRIPT_NAME")
_WSGI_OWN = ("wsgi.input", "wsgi.input_terminated")
#: Outer headers that describe the outer request alone (besides every Content-* one).
_NOT_INHERITED = {
    "HTTP_CONNECTION",
    "HTTP_KEEP_ALIVE",
    "HTTP_TRANSFER_ENCODING",
    "HTTP_TE",
    "HTTP_UPGRADE",
    "HTTP_EXPECT",
    "HTTP_X_HTTP_METHOD_OVERRIDE",
}
_BROKEN = (
    email.errors.NoBoundaryInMultipartDefect,
    email.errors.StartBoundaryNotFoundDefect,
    email.errors.CloseBoundaryNotFoundDefect,
    email.errors.MultipartInvariantViolationDefect,
)


class MalformedBatch(InvalidArgument):
    def __init__(self, message: str) -> None:
        super().__init__(f"Malformed batch request: {message}", location="body")


@dataclass(frozen=True)
class Part:
    """One request of a batch, parsed."""

    content_id: str | None
    method: str
    target: str
    headers: http.client.HTTPMessage
    body: bytes


def parse(content_type: str, body: bytes) -> list[Part]:
    """The requests of a batch body, in order, or `MalformedBatch`."""
    if content_type.split(";")[0].strip().lower() != "multipart/mixed":
        raise MalformedBatch(f"the Content-Type must be multipart/mixed, not {content_type[:100] or 'absent'!r}")
    envelope = b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n"
    message = email.parser.BytesParser().parsebytes(envelope + body)
    broken = [defect for defect in message.defects if isinstance(defect, _BROKEN)]
    if not message.is_multipart() or broken:
        detail = type(broken[0]).__name__ if broken else "no parts"
        raise MalformedBatch(f"the body is not a multipart/mixed message with its boundary ({detail})")
    payload = message.get_payload()
    assert isinstance(payload, list)
    if len(payload) > MAX_PARTS:
        raise InvalidArgument(
            f"A batch holds at most {MAX_PARTS} requests; this one has {len(payload)}", location="body"
        )
    if not payload:
        raise MalformedBatch("it holds no requests")
    return [_part(number, part) for number, part in enumerate(payload, 1)]


def _part(number: int, part: email.message.Message) -> Part:
    if part.get_content_type() != "application/http":
        raise MalformedBatch(f"part {number} is {part.get_content_type()}, not application/http")
    raw = part.get_payload(decode=True)
    assert isinstance(raw, bytes)
    stream = io.BytesIO(raw.lstrip(b"\r\n"))
    words = stream.readline(65537).decode("latin-1").split()
    if len(words) not in (2, 3) or not words[0].isalpha() or not words[1].startswith(("/", "http://", "https://")):
        raise MalformedBatch(f"part {number} does not start with a request line such as 'GET /path HTTP/1.1'")
    try:
        urllib.parse.urlsplit(words[1])
    except ValueError:
        raise MalformedBatch(f"the request line of part {number} names no URL ({words[1][:100]!r})") from None
    try:
        headers = http.client.parse_headers(stream)
    except http.client.HTTPException as exc:
        raise MalformedBatch(f"the headers of part {number} cannot be read ({type(exc).__name__})") from None
    body = stream.read()
    length = headers.get("Content-Length")
    if length is not None:
        if not length.isdigit() or int(length) > len(body):
            raise MalformedBatch(f"part {number} has Content-Length {length} but {len(body)} bytes of body")
        body = body[: int(length)]
    content_id = part.get("Content-ID")
    if content_id is not None and not _CONTENT_ID.fullmatch(str(content_id)):
        raise MalformedBatch(f"the Content-ID of part {number} is not printable ASCII")
    return Part(None if content_id is None else str(content_id), words[0].upper(), words[1], headers, body)


def environ_for(outer: WSGIEnvironment, part: Part) -> dict[str, Any]:
    """The WSGI environ of ``part`` as if it had come alone on the outer request's connection."""
    target = urllib.parse.urlsplit(part.target)
    environ: dict[str, Any] = {key: outer[key] for key in _INHERITED if key in outer}
    environ.update((key, value) for key, value in outer.items() if key.startswith("wsgi.") and key not in _WSGI_OWN)
    environ.update(
        (key, value)
        for key, value in outer.items()
        if key.startswith("HTTP_") and not key.startswith("HTTP_CONTENT_") and key not in _NOT_INHERITED
    )
    for name, value in part.headers.items():
        key = name.upper().replace("-", "_")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            continue
        environ["HTTP_" + key] = value
    environ.update(
        {
            "REQUEST_METHOD": part.method,
            # WSGI's PATH_INFO is the decoded path, its bytes as latin-1 (PEP 3333).
            "PATH_INFO": urllib.parse.unquote_to_bytes(target.path).decode("latin-1"),
            "QUERY_STRING": target.query,
            "CONTENT_TYPE": part.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(part.body)),
            "wsgi.input": io.BytesIO(part.body),
            _PART: True,
            # What a part may call, checked by the gate's pipeline with its other checks.
            CHECKS_KEY: (check_part,),
        }
    )
    return environ


def run(app: Callable[..., Iterable[bytes]], environ: dict[str, Any]) -> bytes:
    """Call the WSGI ``app`` and give its whole answer as an HTTP/1.1 message."""
    started: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], Any]:
        started[:] = [status, headers]
        return lambda data: None

    result = app(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    status, headers = started
    lines = [f"HTTP/1.1 {status}"]
    lines += [f"{name}: {value}" for name, value in headers if name.lower() != "content-length"]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def response_id(content_id: str | None) -> str | None:
    """``<response-ID>`` for a request's ``<ID>``, as Google answered."""
    if content_id is None:
        return None
    inner = content_id.strip()
    if inner.startswith("<") and inner.endswith(">"):
        inner = inner[1:-1]
    return f"<response-{inner}>"


def render(answers: list[tuple[str | None, bytes]]) -> Response:
    """The ``multipart/mixed`` answer: one ``application/http`` part per (Content-ID, message)."""
    boundary = "batch_" + secrets.token_hex(16)
    chunks: list[bytes] = []
    for content_id, message in answers:
        head = f"--{boundary}\r\nContent-Type: application/http\r\n"
        if content_id is not None:
            head += f"Content-ID: {content_id}\r\n"
        chunks += [head.encode("latin-1"), b"\r\n", message, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode("latin-1"))
    return Response(b"".join(chunks), content_type=f"multipart/mixed; boundary={boundary}")


def check_part(environ: WSGIEnvironment) -> None:
    """A check every part carries for the gate's HTTP pipeline: it calls the API's methods only."""
    path = environ.get("PATH_INFO", "")
    if path in PATHS:
        raise InvalidArgument("A batch cannot contain a batch request", location="body")
    if not path.startswith(API_PREFIX):
        raise NotFound(f"A batch part may call the taskqueue v1beta2 API only ({API_PREFIX}…), not {path[:100]}")


def _refusal_room(part: Part) -> int:
    return REFUSAL_BYTES + 2 * len(part.content_id or "")


def register(app: Flask, read_body: Callable[[], bytes], max_response_bytes: int) -> None:
    """Serve batches at `PATHS`; ``read_body`` reads the whole body within the body limit;
    the whole answer stays under ``max_response_bytes`` (see the module docstring)."""

    def batch() -> Response:
        parts = parse(request.headers.get("Content-Type", ""), read_body())
        shared = Budget(max_response_bytes)
        rooms = [_refusal_room(part) for part in parts]
        if sum(rooms) + 64 > max_response_bytes:
            raise InvalidArgument(
                f"A batch of {len(parts)} requests cannot be answered within --max-response-bytes "
                f"({max_response_bytes} bytes); send fewer at once",
                location="body",
            )
        shared.charge(sum(rooms) + 64)  # each part's refusal, and the closing boundary
        outer = request.environ
        # The app as the server calls it, the gate's pipeline included, so a part sees what a request sees.
        wsgi = current_app.wsgi_app
        answers = []
        for part, room in zip(parts, rooms, strict=True):
            shared.release(room)
            environ = environ_for(outer, part)
            environ[budget.KEY] = shared
            message = run(wsgi, environ)
            content_id = response_id(part.content_id)
            shared.charge(len(message) + len(content_id or "") + 128)
            answers.append((content_id, message))
        return render(answers)

    for path in PATHS:
        app.add_url_rule(path, "batch", batch, methods=["POST"])
