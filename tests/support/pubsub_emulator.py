"""Google's Pub/Sub emulator on a free port, owned by the tests.

The emulator is the jar of gcloud's ``pubsub-emulator`` component (Debian's
``google-cloud-cli-pubsub-emulator``), run with ``java`` directly, so that the process
the tests stop by its pid is the emulator itself, not a launcher in front of it. Where
only ``gcloud`` is found, ``gcloud beta emulators pubsub start`` runs in a process
group of its own, stopped as one.

What the emulator does differently from the service, measured on emulator 0.8.20 (and
relied on by no test): a pull returns at most 100 messages; it accepts ack deadlines
above 600 s; an ack or deadline change of an ack id whose deadline passed works until
the message is handed out again; it keeps nothing across restarts; it does not apply
subscription filters.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.support.redis_server import free_port

#: The component's folder inside a gcloud installation, and its jar's name.
_JAR = "platform/pubsub-emulator/lib/cloud-pubsub-emulator-*-all.jar"
START_TIMEOUT = 60


def command(port: int) -> list[str] | None:
    """How to start the emulator on ``port``; None when it is not installed."""
    gcloud = shutil.which("gcloud")
    java = shutil.which("java")
    if gcloud is None:
        return None
    root = Path(os.path.realpath(gcloud)).parent.parent
    jars = sorted(glob.glob(str(root / _JAR)))
    if jars and java is not None:
        return [java, "-jar", jars[-1], "--host=127.0.0.1", f"--port={port}"]
    if java is None:
        return None
    return [gcloud, "beta", "emulators", "pubsub", "start", f"--host-port=127.0.0.1:{port}", "--quiet"]


class PubSubEmulator:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.folder / "emulator.log"

    def start(self) -> PubSubEmulator:
        found = command(self.port)
        if found is None:
            raise FileNotFoundError("the Pub/Sub emulator (gcloud's pubsub-emulator component and java)")
        with self.log.open("wb") as output:
            # A session of its own: a gcloud launcher and its java child stop together.
            self.process = subprocess.Popen(
                found, cwd=self.folder, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not self._listening():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the Pub/Sub emulator did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.1)
        return self

    def _listening(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            return False
        return True

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None
