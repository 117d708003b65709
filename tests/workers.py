"""Real worker processes for end-to-end tests: `manage.py qcluster` in a subprocess, on the
test database (a file for SQLite, the test database for PostgreSQL). Tests that use it must
commit their data (`django_db(transaction=True)`) so the worker can see it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.db import connection

BASE_DIR = Path(__file__).resolve().parent.parent


def test_database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class WorkerProcess:
    def __init__(self, *, log_path: Path, env: dict[str, str]):
        self.log_path = log_path
        self.env = env
        self.proc: subprocess.Popen | None = None

    def start(self) -> WorkerProcess:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=BASE_DIR, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        return self

    def kill(self) -> None:
        """SIGKILL the whole cluster (guard and worker processes): a crash, not a shutdown."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def terminate(self) -> None:
        """SIGTERM the whole cluster, as honcho, systemd and `kill -TERM -<pgid>` do, and return
        at once: a graceful stop, which `running()` follows."""
        os.killpg(self.proc.pid, signal.SIGTERM)

    def running(self) -> int:
        """How many processes of the cluster still run (zombies aside)."""
        return len(group_processes(self.proc.pid))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def group_processes(pgid: int) -> list[int]:
    """The live processes of process group `pgid` (zombies aside), read from /proc."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            pid, rest = stat.read_text().split(" (", 1)
        except OSError:
            continue
        fields = rest.rsplit(") ", 1)[1].split()
        state, group = fields[0], int(fields[2])
        if group == pgid and state != "Z":
            pids.append(int(pid))
    return pids


def wait_for(predicate, *, timeout: float, interval: float = 0.2, message="condition"):
    """Poll `predicate` until it is truthy; `message` may be a callable, evaluated on failure."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message() if callable(message) else message}")
