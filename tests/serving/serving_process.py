"""`bertkit serve` in a subprocess for the serving tests: free ports, wait until it serves, always stopped."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path


def free_ports(count: int) -> list[int]:
    """Ports nothing listens on right now (bound to port 0, then released)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class ServerProcess:
    """A running `bertkit serve`; ``port``, ``port_out``, ``http_port`` and ``log`` (its stderr so far)."""

    def __init__(self, args: list[str], log_path: Path, http: bool = False):
        self.port, self.port_out, self.http_port = free_ports(3)
        command = [sys.executable, "-m", "bertkit", "serve", "-port", str(self.port), "-port_out", str(self.port_out),
                   *args]
        if http:
            command += ["--http-port", str(self.http_port)]
        else:
            self.http_port = None
        self.log_path = log_path
        self._log = open(log_path, "wb")  # a file, not a pipe: a full pipe would block the server
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1"})

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def wait_until_serving(self, timeout_s: float = 180.0) -> None:
        deadline = time.monotonic() + timeout_s
        while "INFO bertkit.serving: serving " not in self.log:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not up after {timeout_s} s:\n{self.log}")
            time.sleep(0.1)

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> int:
        """Send ``sig`` and wait; a server that does not stop is killed (and the test fails on its exit code)."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode


@contextmanager
def running_server(args: list[str], log_path: Path, http: bool = False):
    """A server for the duration of the block, stopped however the block ends."""
    server = ServerProcess(args, log_path, http)
    try:
        server.wait_until_serving()
        yield server
    finally:
        server.stop()


def child_pids(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (Linux /proc)."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                children.append(int(entry.name))
    return children
