"""The processes a run starts and stops: redis-server, the bridge, the reference app.

Each runs on a free port of 127.0.0.1 and logs into the run's scratch folder; a process
that dies or never answers stops the run with the tail of its log. Only processes
started here are ever stopped, by their own pid.
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import redis

from bench.plan import GUNICORN_THREADS, GUNICORN_WORKERS

ROOT = Path(__file__).resolve().parent.parent
#: Seconds a server may take to answer its first request (gunicorn imports Flask twice).
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
_POLL_SECONDS = 0.05
_LOG_TAIL_BYTES = 2000


class ServiceError(RuntimeError):
    """A process would not start; the message carries the end of its log."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require(binary: str, install_hint: str) -> str:
    found = shutil.which(binary)
    if found is None:
        raise ServiceError(f"{binary} is not on PATH; {install_hint}")
    return found


class Service:
    """One child process, its port and its log."""

    def __init__(self, name: str, command: list[str], port: int, log: Path) -> None:
        self.name = name
        self.port = port
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=_child_env())

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise ServiceError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")

    def log_tail(self) -> str:
        return self.log.read_bytes()[-_LOG_TAIL_BYTES:].decode(errors="replace")

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the process and its live children: the
        gunicorn master and its workers, or redis-server. Linux only (reads /proc)."""
        return sum(_cpu_seconds(pid) for pid in (self.process.pid, *_children(self.process.pid)))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat after the command name (which may hold spaces): state, ppid, …"""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def _cpu_seconds(pid: int) -> float:
    try:
        fields = _stat_fields(pid)
    except (OSError, ValueError):
        return 0.0  # exited between listing and reading
    # utime and stime are fields 14 and 15 of stat(5); the list starts at field 3.
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def _children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(_stat_fields(int(entry.name))[1]) == parent:
                    found.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
    return found


def _child_env() -> dict[str, str]:
    """The parent's environment, with the repository importable and no BRIDGE_* leaking in
    (a BRIDGE_QUEUES from the caller's shell would change what is measured)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("BRIDGE_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _wait(service: Service, ready: Callable[[], bool]) -> Service:
    deadline = time.monotonic() + START_TIMEOUT
    while not ready():
        service.check_alive()
        if time.monotonic() > deadline:
            service.stop()
            raise ServiceError(f"{service.name} did not answer within {START_TIMEOUT:g} s:\n{service.log_tail()}")
        time.sleep(_POLL_SECONDS)
    return service


def start_redis(folder: Path, *options: str, port: int | None = None, wrapper: Sequence[str] = ()) -> Service:
    """An empty redis-server that saves nothing, so that memory figures start from zero.

    ``options`` come last and so win (``--appendonly yes`` keeps an AOF in ``folder``);
    ``wrapper`` goes before the binary (``valgrind --tool=callgrind …``).
    """
    binary = require("redis-server", "install it (apt-get install redis-server)")
    port = port or free_port()
    command = [*wrapper, binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    command += ["--dir", str(folder), *options]
    service = Service(f"redis-server :{port}", command, port, folder / f"redis-{port}.log")

    def ready() -> bool:
        client = redis.Redis(port=port, socket_connect_timeout=0.2)
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False
        finally:
            client.close()

    return _wait(service, ready)


def redis_url(service: Service) -> str:
    return f"redis://127.0.0.1:{service.port}/0"


def _answers_http(port: int) -> bool:
    """Any HTTP answer means a gunicorn worker is serving."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        connection.request("GET", "/")
        connection.getresponse().read()
        return True
    except OSError:
        return False
    finally:
        connection.close()


def start_bridge(backend_url: str, folder: Path) -> Service:
    """The bridge exactly as a user starts it: ``python -m bridge serve`` (gunicorn gthread)."""
    port = free_port()
    command = [sys.executable, "-m", "bridge", "serve", "--backend", backend_url, "--port", str(port)]
    command += ["--workers", str(GUNICORN_WORKERS), "--threads", str(GUNICORN_THREADS)]
    service = Service(f"bridge :{port}", command, port, folder / f"bridge-{port}.log")
    return _wait(service, lambda: _answers_http(port))


def start_reference(backend_url: str, folder: Path) -> Service:
    """bench/reference_app.py under the bridge's gunicorn settings."""
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "-w", str(GUNICORN_WORKERS), "-k", "gthread"]
    command += ["--threads", str(GUNICORN_THREADS), "--no-control-socket", "-b", f"127.0.0.1:{port}"]
    command += [f"bench.reference_app:create_app({backend_url!r})"]
    service = Service(f"reference app :{port}", command, port, folder / f"reference-{port}.log")
    return _wait(service, lambda: _answers_http(port))
