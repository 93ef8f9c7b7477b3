"""Request bodies, read within the body budget by every HTTP way in, and query strings.

A Content-Length over the limit is refused before anything is read (413); a chunked
body, which has no length, is read here with at most one byte past the limit; a body
the server cannot decode (a chunk size that is not hex, a body cut short, one that
stopped arriving) is a 400. Both read the WSGI environ as werkzeug's Request would, so
the API's methods answered past Flask read them alike without building one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from gunicorn.http.errors import ParseException
from werkzeug.wsgi import get_content_length, get_input_stream

from backends.errors import InvalidArgument
from bridge.errors import BodyTooLarge

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment


def body_bytes(environ: WSGIEnvironment, limit: int) -> bytes:
    """The body of the request ``environ`` holds; past ``limit`` bytes a 413, with at
    most one byte more read.

    A Content-Length over the limit is refused before anything is read, and a body is
    read up to its Content-Length, as werkzeug's ``Request.get_data`` reads it. A
    chunked body has no length, and werkzeug's stream would stop at the limit and hand
    back its start as if it were all, so it is read here instead.
    """
    if get_content_length(environ) is not None or not environ.get("wsgi.input_terminated"):
        with body_errors():
            return get_input_stream(environ, max_content_length=limit).read()
    return read_limited(environ["wsgi.input"], limit)


def query_args(environ: WSGIEnvironment) -> dict[str, str]:
    """The query string's parameters, the first value of each, as werkzeug's
    ``Request.args.to_dict()`` gives them (invalid percent escapes stay as they are); a
    query string that is not UTF-8 is a 400 (werkzeug's would fail with a 500)."""
    query = environ.get("QUERY_STRING")
    if not query:
        return {}
    try:
        text = query.encode("latin-1").decode()
    except UnicodeError:
        raise InvalidArgument("The query string is not UTF-8 text", location="query") from None
    args: dict[str, str] = {}
    for name, value in parse_qsl(text, keep_blank_values=True, errors="werkzeug.url_quote"):
        args.setdefault(name, value)
    return args


#: What a WSGI server's input stream raises for a body it cannot decode (a chunk size
#: that is not hex, a missing chunk terminator, a body cut short): gunicorn's parse
#: errors, and OSError or ValueError from werkzeug's server and gunicorn alike.
BODY_ERRORS = (OSError, ValueError, ParseException)


@contextlib.contextmanager
def body_errors() -> Iterator[None]:
    try:
        yield
    except TimeoutError:
        raise InvalidArgument("The request body stopped arriving", location="body") from None
    except BODY_ERRORS:
        raise InvalidArgument(
            "The request body is malformed (bad chunked encoding or cut short)", location="body"
        ) from None


def read_limited(stream: Any, limit: int) -> bytes:
    """All of ``stream``; past ``limit`` bytes a 413, with at most one byte more read."""
    chunks, size = [], 0
    with body_errors():
        while size <= limit and (chunk := stream.read(min(65536, limit + 1 - size))):
            chunks.append(chunk)
            size += len(chunk)
    if size > limit:
        raise BodyTooLarge("Request body too large")
    return b"".join(chunks)
