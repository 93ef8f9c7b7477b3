"""Request bodies, read within the body budget by every HTTP way in.

A Content-Length over the limit is refused before anything is read (Flask's
MAX_CONTENT_LENGTH); a chunked body, which has no length, is read here with at most one
byte past the limit; a body the server cannot decode (a chunk size that is not hex, a
body cut short, one that stopped arriving) is a 400.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from flask import Request
from gunicorn.http.errors import ParseException

from backends.errors import InvalidArgument
from bridge.errors import BodyTooLarge


def body_bytes(req: Request, limit: int) -> bytes:
    """The request body; past ``limit`` bytes a 413, with at most one byte more read.

    A Content-Length over the limit is refused by Flask (MAX_CONTENT_LENGTH) before
    anything is read. A chunked body has no length, and werkzeug's stream would stop at
    the limit and hand back its start as if it were all, so it is read here instead.
    """
    if req.content_length is not None or not req.environ.get("wsgi.input_terminated"):
        with body_errors():
            return req.get_data(cache=False)
    return read_limited(req.environ["wsgi.input"], limit)


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
