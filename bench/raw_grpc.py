"""HTTP/2 as a hostile gRPC client writes it, byte by byte: what grpcio will not send.

Just enough of RFC 9113 and RFC 7541 to open calls that never send their request: the
connection preface, an empty SETTINGS frame, and HEADERS frames whose header fields are
literals without indexing or Huffman coding.
"""

from __future__ import annotations

import socket
import struct

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_SETTINGS, _HEADERS = 0x4, 0x1
_END_HEADERS = 0x4


def frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes((kind, flags)) + struct.pack(">I", stream) + payload


def _literal(name: bytes, value: bytes) -> bytes:
    assert len(name) < 127 and len(value) < 127  # one-byte lengths
    return b"\x00" + bytes((len(name),)) + name + bytes((len(value),)) + value


def call_headers(path: str) -> bytes:
    """The header block that opens a gRPC call of ``path`` (``/package.Service/Method``)."""
    fields = [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "bridge")]
    fields += [("content-type", "application/grpc"), ("te", "trailers")]
    return b"".join(_literal(name.encode(), value.encode()) for name, value in fields)


def open_calls_without_requests(port: int, path: str, count: int) -> socket.socket:
    """A connection with ``count`` calls of ``path`` that sent their headers and nothing more."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    data = PREFACE + frame(_SETTINGS, 0, 0)
    for number in range(count):
        data += frame(_HEADERS, _END_HEADERS, 1 + 2 * number, call_headers(path))
    sock.sendall(data)
    return sock


def open_preface_only(port: int) -> socket.socket:
    """A connection that sent HTTP/2's preface and settings, and then nothing."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(PREFACE + frame(_SETTINGS, 0, 0))
    return sock
