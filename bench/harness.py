"""What the benchmarks share: a scratch database, the fake Responses API in a process of its
own, worker processes, jobs in flight seeded in bulk, and a query counter.

The database is a throwaway SQLite file or the scratch database named by BENCH_DATABASE_URL
(created if missing; the benchmarks delete the jobs they find there). DATABASE_URL is never
used, so a benchmark cannot touch a real database. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import atexit
import datetime as dt
import multiprocessing
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SPAWN = multiprocessing.get_context("spawn")
_scratch: list[str] = []


def scratch_dir() -> str:
    """A directory of this run's own (a throwaway SQLite database, logs), made on first use and
    removed when the process that made it exits: spawned processes import this module too."""
    if not _scratch:
        _scratch.append(tempfile.mkdtemp(prefix="reportdesk-bench-"))
        atexit.register(shutil.rmtree, _scratch[0], True)
    return _scratch[0]


def database_url() -> str:
    # Set once, so the processes this one spawns use the same database.
    if "BENCH_DATABASE_URL" not in os.environ:
        os.environ["BENCH_DATABASE_URL"] = f"sqlite:///{scratch_dir()}/bench.sqlite3"
    return os.environ["BENCH_DATABASE_URL"]


def ensure_database(url: str) -> None:
    """Create the scratch PostgreSQL database if it does not exist yet."""
    if not url.startswith("postgres"):
        return
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def setup_django(**env: str) -> None:
    """Django on the scratch database, in this process. `env` sets settings (as strings)."""
    os.environ["DATABASE_URL"] = database_url()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reportdesk.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.update(env)
    import django

    django.setup()


def migrate() -> None:
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def rss_mib() -> tuple[float, float]:
    """(current, peak) resident memory of this process, MiB: VmRSS and VmHWM.

    Not `ru_maxrss`: in a process started by multiprocessing's spawn (a fork, then an exec),
    Linux carries the high-water mark of the forked copy of the parent across the exec, so it
    reports the benchmark's own size rather than the worker's. VmHWM starts afresh at exec."""
    fields = {}
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:")):
                name, value = line.split(":", 1)
                fields[name] = int(value.split()[0]) / 1024
    return fields.get("VmRSS", 0.0), fields.get("VmHWM", 0.0)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


class AllThreadsQueryCounter:
    """Counts the queries run on every thread of this process (a worker steps jobs on
    threads of its own) while installed: `count` goes on growing."""

    def __init__(self):
        from django.db.backends import utils

        self.count = 0
        self._lock = threading.Lock()
        counter = self
        original = utils.CursorWrapper._execute_with_wrappers

        def counted(cursor, *args, **kwargs):
            with counter._lock:
                counter.count += 1
            return original(cursor, *args, **kwargs)

        utils.CursorWrapper._execute_with_wrappers = counted


class QueryCounter:
    """Counts the queries run on this thread's connection inside the block."""

    def __init__(self):
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)

    def __enter__(self):
        from django.db import connection

        self._wrapper = connection.execute_wrapper(self)
        self._wrapper.__enter__()
        return self

    def __exit__(self, *exc):
        self._wrapper.__exit__(*exc)


# --- The fake Responses API, in its own process --------------------------------------------------


def _serve_fake(latency: float, conn) -> None:
    sys.path.insert(0, str(ROOT))
    from tests.fakes.responses_api import RETRIEVE, ResponsesAPIFake, Script

    with ResponsesAPIFake(latency=latency) as fake:
        # By default a response stays in progress for longer than any run.
        fake.default_script = Script(statuses=("queued", "in_progress", "completed"), advance="time", step_seconds=3600)
        conn.send(fake.base_url)
        while True:
            message = conn.recv()
            if message == "stop":
                conn.send(dict(fake.counts))
                return
            if message[0] == "scripts":  # finishing times, in order of the next creates; deltas each streams
                deltas = message[2] if len(message) > 2 else 0
                for seconds in message[1]:
                    fake.script_next(
                        Script(statuses=("queued", "in_progress", "completed"), advance="time", step_seconds=seconds / 2, text_deltas=deltas)
                    )
                conn.send("ok")
            elif message[0] == "started":  # {response id: (wall-clock start, seconds until it completes)}
                offset = time.time() - fake.clock()
                conn.send({rid: (r.started + offset, r.script.step_seconds * 2) for rid, r in fake.responses.items()})
            elif message[0] == "retrieves":  # {response id: polls (plain retrieves)}
                conn.send({rid: r.retrieves for rid, r in fake.responses.items()})
            elif message[0] == "retrieve_times":  # {response id: [wall-clock times of its plain retrieves]}
                times: dict[str, list[float]] = {}
                for request in fake.requests_to(RETRIEVE):
                    if "stream=true" not in request.path:
                        times.setdefault(request.response_id, []).append(request.at)
                conn.send(times)
            elif message[0] == "streams":  # {response id: retrieves as a stream}
                conn.send(Counter(r.response_id for r in fake.requests_to(RETRIEVE) if "stream=true" in r.path))


class FakeProcess:
    """The fake in its own process (it must not share our GIL), answering after `latency`."""

    def __init__(self, latency: float):
        self.conn, child = SPAWN.Pipe()
        self.process = SPAWN.Process(target=_serve_fake, args=(latency, child), daemon=True)

    def __enter__(self) -> FakeProcess:
        self.process.start()
        self.base_url = self.conn.recv()
        return self

    def ask(self, *message):
        self.conn.send(message)
        return self.conn.recv()

    def counts(self) -> dict:
        """Requests per endpoint; stops the fake."""
        self.conn.send("stop")
        return self.conn.recv()

    def __exit__(self, *exc):
        if self.process.is_alive():
            try:
                self.conn.send("stop")
            except OSError:
                pass
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()


def create_responses(base_url: str, count: int) -> list[str]:
    """`count` background responses at the fake, created 32 at a time."""
    import openai

    client = openai.OpenAI(api_key="sk-bench", base_url=base_url, max_retries=0)

    def create(_):
        return client.responses.create(model="gpt-5.2", input="bench", background=True, store=True).id

    with ThreadPoolExecutor(32) as pool:
        return list(pool.map(create, range(count)))


# --- Jobs in flight, seeded in bulk ---------------------------------------------------------------


def clear_jobs() -> None:
    from django_q.models import OrmQ, Task

    from jobs.models import ReportJob, WorkerHeartbeat

    ReportJob.objects.all().delete()
    WorkerHeartbeat.objects.all().delete()
    OrmQ.objects.all().delete()
    Task.objects.all().delete()


def bench_people():
    """The workspace, requester and template every benchmark job belongs to."""
    from django.contrib.auth import get_user_model

    from jobs.models import ReportTemplate
    from reportdesk.models import Role, Workspace
    from reportdesk.services import membership_set

    workspace, _ = Workspace.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    user, _ = get_user_model().objects.get_or_create(username="bench")
    membership_set(workspace=workspace, user=user, role=Role.REQUESTER)
    template = ReportTemplate.objects.get(slug="market-scan")
    return workspace, user, template


def seed_running_jobs(response_ids: list[str], *, ages: list[float]) -> list[int]:
    """Jobs running at the provider (one response each, `ages` seconds old), each due at its
    next check on the product's own cadence: part-way through its current wait."""
    from django.utils import timezone

    from jobs.models import JobAttempt, JobStatus, ProviderCall, ReportJob
    from jobs.worker import step
    from sources.models import SourceItem
    from sources.services import manifest_create

    workspace, user, template = bench_people()
    item = SourceItem.objects.create(workspace=workspace, created_by=user, kind="text", title="Note", text="Battery recycling grew 40% in 2025.", status="ready")
    manifest = manifest_create(workspace=workspace, items=[item])
    now = timezone.now()
    jobs = ReportJob.objects.bulk_create(
        ReportJob(
            workspace=workspace, requested_by=user, template=template, topic=f"Battery recycling, case {n}",
            source_manifest=manifest, status=JobStatus.RUNNING, provider_response_id=rid,
            deadline=now + dt.timedelta(days=1), next_check_at=now + dt.timedelta(seconds=step.poll_delay(age=age)),
        )
        for n, (rid, age) in enumerate(zip(response_ids, ages))
    )
    attempts = JobAttempt.objects.bulk_create(
        JobAttempt(job=job, number=1, reason="initial", manifest=manifest, status="running", started_at=now) for job in jobs
    )
    for job, attempt in zip(jobs, attempts):
        job.current_attempt = attempt
    ReportJob.objects.bulk_update(jobs, ["current_attempt"], batch_size=500)
    calls = ProviderCall.objects.bulk_create(
        ProviderCall(job=job, attempt=attempt, step="report", provider="openai", model="gpt-5.2", provider_response_id=rid, status="in_progress")
        for job, attempt, rid in zip(jobs, attempts, response_ids)
    )
    for call, age in zip(calls, ages):
        call.created_at = now - dt.timedelta(seconds=age)
    ProviderCall.objects.bulk_update(calls, ["created_at"], batch_size=500)
    return [job.pk for job in jobs]


def steady_ages(count: int, *, seed: int = 7) -> list[float]:
    """Ages spread evenly over a 15-minute run: a running system's mix of young and old."""
    rng = random.Random(seed)
    return [rng.uniform(0, 900) for _ in range(count)]


def wait_until(predicate, *, timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False
