"""What Linux's table of TCP sockets (/proc/net/tcp) shows of a server, seen from a test.

A test that must know where a server stands in a request (has it read what was sent?)
reads the kernel's view instead of sleeping and hoping. IPv4 only, as the servers the
tests start listen on 127.0.0.1 or 0.0.0.0.
"""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

TABLE = Path("/proc/net/tcp")


@dataclass(frozen=True, slots=True)
class Entry:
    local: str
    remote: str
    #: Bytes sent and not yet acknowledged by the peer's kernel.
    tx_queue: int
    #: Bytes received and not yet read by the socket's process.
    rx_queue: int


def _address(host: str, port: int) -> str:
    # The table prints the address as the 32-bit word it is in memory, then the port.
    return f"{int.from_bytes(socket.inet_aton(host), sys.byteorder):08X}:{port:04X}"


def entries() -> list[Entry]:
    if not TABLE.exists():
        pytest.fail(f"{TABLE} is missing: this test reads Linux's socket table")
    found = []
    for line in TABLE.read_text().splitlines()[1:]:
        fields = line.split()
        tx_queue, rx_queue = (int(part, 16) for part in fields[4].split(":"))
        found.append(Entry(fields[1], fields[2], tx_queue, rx_queue))
    return found


def wait_for(condition: Callable[[list[Entry]], bool], what: str, seconds: float = 30) -> None:
    """Poll the table until ``condition`` holds; fail the test naming ``what`` if it never does."""
    deadline = time.monotonic() + seconds
    while not condition(entries()):
        if time.monotonic() > deadline:
            pytest.fail(f"after {seconds} s, still not: {what}")
        time.sleep(0.01)


def peer_has_read_everything(sock: socket.socket) -> Callable[[list[Entry]], bool]:
    """Every byte sent on ``sock`` so far was acknowledged by the peer's kernel (nothing
    unacknowledged on our side) and taken from the socket by the peer's process (nothing
    unread on its side)."""
    ours = _address(*sock.getsockname())
    theirs = _address(*sock.getpeername())

    def check(table: list[Entry]) -> bool:
        sent = [e for e in table if (e.local, e.remote) == (ours, theirs)]
        received = [e for e in table if (e.local, e.remote) == (theirs, ours)]
        return len(sent) == len(received) == 1 and sent[0].tx_queue == 0 and received[0].rx_queue == 0

    return check
