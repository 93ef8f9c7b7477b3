"""Random names and request ids: read from the system in chunks, never handed out twice."""

from __future__ import annotations

import os
import re
import threading

from bridge import entropy


def test_tokens_have_the_standard_library_shapes_and_never_repeat() -> None:
    names = [entropy.token_urlsafe(16) for _ in range(3 * entropy.CHUNK_BYTES // 16)]
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{22}", name) for name in names)
    assert len(set(names)) == len(names)
    assert re.fullmatch(r"[0-9a-f]{32}", entropy.token_hex(16))
    assert len(entropy.random_bytes(entropy.CHUNK_BYTES + 1)) == entropy.CHUNK_BYTES + 1


def test_a_forked_process_does_not_reuse_its_parents_bytes() -> None:
    entropy.random_bytes(1)  # the parent holds a chunk with unused bytes
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child
        os.write(write, entropy.random_bytes(64))
        os._exit(0)
    os.close(write)
    assert os.waitpid(child, 0)[1] == 0
    from_child = os.read(read, 64)
    os.close(read)
    assert len(from_child) == 64 and from_child != entropy.random_bytes(64)


def test_threads_draw_from_pools_of_their_own_and_never_get_the_same_bytes() -> None:
    drawn: list[list[bytes]] = [[] for _ in range(4)]

    def draw(into: list[bytes]) -> None:
        into.extend(entropy.random_bytes(16) for _ in range(1000))

    threads = [threading.Thread(target=draw, args=(into,)) for into in drawn]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [value for into in drawn for value in into]
    assert len(set(everything)) == len(everything) == 4000
