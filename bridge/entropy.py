"""Random bytes for task names and request ids, read from the system 4 KiB at a time.

``os.urandom`` is a system call (getrandom) that lets go of the GIL; with gunicorn's
threads all busy, another thread takes it, and the request waits to get it back. One
read now serves 256 names. The bytes are the system's own (cryptographically strong),
each handed out once; a forked process (a gunicorn worker) starts without its
parent's unused bytes, so no two processes hand out the same ones.
"""

from __future__ import annotations

import os
import threading

import pybase64

#: Bytes read from the system at once.
CHUNK_BYTES = 4096

_lock = threading.Lock()
_pool = b""
_taken = 0


def random_bytes(count: int) -> bytes:
    """``count`` bytes from the system's random source, never handed out before."""
    global _pool, _taken
    with _lock:
        if _taken + count > len(_pool):
            _pool, _taken = os.urandom(max(CHUNK_BYTES, count)), 0
        start = _taken
        _taken += count
        return _pool[start:_taken]


def token_urlsafe(count: int) -> str:
    """As `secrets.token_urlsafe`: ``count`` random bytes in unpadded URL-safe base64."""
    return pybase64.b64encode_as_string(random_bytes(count), altchars=b"-_").rstrip("=")


def token_hex(count: int) -> str:
    """As `secrets.token_hex`: ``count`` random bytes in hexadecimal."""
    return random_bytes(count).hex()


def _forget() -> None:
    global _pool, _taken
    _pool, _taken = b"", 0


os.register_at_fork(after_in_child=_forget)
