"""A live `octo serve --demo` (mock model) on an ephemeral loopback port, per test session.

The binary is $OCTO_BIN, else target/debug/octo of this repository (`cargo build`).
"""

import os
import re
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

TOKEN = "python-test-token"
LISTENING = re.compile(r"octo listening address=(\S+)")


class Server:
    def __init__(self) -> None:
        binary = os.environ.get("OCTO_BIN") or str(ROOT / "target" / "debug" / "octo")
        if not os.path.exists(binary):
            pytest.exit(f"octo binary not found at {binary}: run `cargo build` or set OCTO_BIN")
        self.dir = tempfile.TemporaryDirectory(prefix="octo-py-")
        home = Path(self.dir.name)
        env = dict(
            os.environ,
            HOME=str(home),
            XDG_CONFIG_HOME=str(home / "config"),
            XDG_DATA_HOME=str(home / "data"),
            OCTO_TOKEN=TOKEN,
            RUST_LOG="info",
        )
        # Octo reads every OCTO_* variable as config and refuses unknown keys.
        env.pop("OCTO_BIN", None)
        self.proc = subprocess.Popen(
            [binary, "serve", "--demo", "--listen", "127.0.0.1:0"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.log: list = []
        self.address = None
        ready = threading.Event()

        def drain() -> None:
            for line in self.proc.stderr:  # type: ignore[union-attr]
                self.log.append(line)
                match = LISTENING.search(line)
                if match and not ready.is_set():
                    self.address = match.group(1)
                    ready.set()
            ready.set()

        threading.Thread(target=drain, daemon=True).start()
        # A safety net only: the event fires as soon as the server logs its address.
        ready.wait(timeout=120)
        if not self.address:
            self.stop()
            raise RuntimeError("octo did not start:\n" + "".join(self.log))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.dir.cleanup()


@pytest.fixture(scope="session")
def server():
    srv = Server()
    yield srv
    srv.stop()


@pytest.fixture
def octo(server):
    from octo_client import Client

    with Client(server.address, token=TOKEN) as client:
        yield client
