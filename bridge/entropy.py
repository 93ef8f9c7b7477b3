"""Random bytes for task names and request ids, read from the system 4 KiB at a time.

``os.urandom`` is a system call (getrandom) that lets go of the GIL; with gunicorn's
threads all busy, another thread takes it, and the request waits to get it back. Each
thread now keeps a pool of its own, read 4 KiB at a time, so one read serves 256 names
and no lock is shared (a shared pool behind a lock made threads wait on the lock
instead: more context switches than a read per name). The bytes are the system's own
(cryptographically strong), each handed out once; a forked process (a gunicorn
worker) refills before its first name, so no two processes hand out the same bytes.
"""

from __future__ import annotations

import base64
import os
import threading

#: Bytes read from the system at once, per thread.
CHUNK_BYTES = 4096


class _Pool(threading.local):
    bytes_ = b""
    taken = 0
    generation = -1


_pool = _Pool()
#: Moves on in a forked child: a pool filled before the fork is not used after it.
_generation = 0


def random_bytes(count: int) -> bytes:
    """``count`` bytes from the system's random source, never handed out before."""
    pool = _pool
    start = pool.taken
    if start + count > len(pool.bytes_) or pool.generation != _generation:
        pool.bytes_, pool.generation, start = os.urandom(max(CHUNK_BYTES, count)), _generation, 0
    pool.taken = start + count
    return pool.bytes_[start : start + count]


def token_urlsafe(count: int) -> str:
    """As `secrets.token_urlsafe`: ``count`` random bytes in unpadded URL-safe base64."""
    return base64.urlsafe_b64encode(random_bytes(count)).rstrip(b"=").decode("ascii")


def token_hex(count: int) -> str:
    """As `secrets.token_hex`: ``count`` random bytes in hexadecimal."""
    return random_bytes(count).hex()


def task_id() -> str:
    """A random, unguessable task name (128 bits) in the task-name alphabet, for a task
    inserted without one (any front)."""
    return token_urlsafe(16)


def _forget() -> None:
    global _generation
    _generation += 1


os.register_at_fork(after_in_child=_forget)
