"""Benchmark: jobs in flight against the fake Responses API, polled by the real dispatcher.

    .venv/bin/python bench/poll_throughput.py [--jobs 500] [--baseline-jobs 50] [--seconds 40]
                                              [--latency 0.1] [--workers 8]

Three runs in one process:
- baseline, steady state: a few jobs in flight whose ages are spread evenly over a 15-minute
  run (each part-way through its current poll wait), as in a running system;
- full load, steady state: the same with 500 jobs;
- full load, burst: 500 jobs that all started at the same moment (the worst case: every
  one wants a poll every 2-3 s at once).
For each: polls per second, the share of polls that ran on schedule (started within 1 s of
the job's next_check_at), lateness percentiles, database queries per dispatcher cycle and
per job poll; then the ratios of the full steady run to the baseline. Queries per cycle and
per poll must not grow with the number of jobs.

What runs is the product's own code: jobs.dispatcher.dispatch_due claims due jobs exactly as the
dispatcher task does, and a pool of threads stands in for django-q2 worker processes, each
running jobs.step.job_advance — through the real `openai` SDK, over HTTP, against the
loopback fake (in its own process) with a fixed latency. The database is a fresh SQLite
file, or the scratch database in BENCH_DATABASE_URL (its jobs are deleted; DATABASE_URL is
never used).
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import random
import queue
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup_django(db_dir: str) -> None:
    # The bench deletes every job it finds: it never touches DATABASE_URL, only a throwaway
    # SQLite file or a database named for it in BENCH_DATABASE_URL.
    os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{db_dir}/bench.sqlite3"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reportdesk.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


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


def serve_fake(latency: float, conn) -> None:
    """The fake Responses API in its own process, so it does not share our GIL."""
    sys.path.insert(0, str(ROOT))
    from tests.fakes.responses_api import ResponsesAPIFake, Script

    with ResponsesAPIFake(latency=latency) as fake:
        # Every response stays in progress for longer than the run: all jobs remain in flight.
        fake.default_script = Script(statuses=("queued", "in_progress", "completed"), advance="time", step_seconds=3600)
        conn.send(fake.base_url)
        conn.recv()  # "stop"
        conn.send(dict(fake.counts))


class FakeProcess:
    def __init__(self, latency: float):
        self.conn, child = multiprocessing.get_context("spawn").Pipe()
        self.process = multiprocessing.get_context("spawn").Process(target=serve_fake, args=(latency, child), daemon=True)

    def __enter__(self):
        self.process.start()
        self.base_url = self.conn.recv()
        return self

    def counts(self) -> dict:
        self.conn.send("stop")
        return self.conn.recv()

    def __exit__(self, *exc):
        self.process.join(timeout=10)


def run(*, jobs: int, seconds: float, latency: float, workers: int, steady: bool) -> dict:
    from django.conf import settings
    from django.db import connections
    from django.utils import timezone

    from jobs import services
from jobs.worker import dispatcher, step
    from jobs.models import ReportJob, ReportTemplate
    from jobs.providers.openai_provider import OpenAIProvider
    from reportdesk.models import Role, Workspace
    from reportdesk.services import membership_set
    from sources.services import SourceSpec
    from django.contrib.auth import get_user_model

    ReportJob.objects.all().delete()
    workspace, _ = Workspace.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    user, _ = get_user_model().objects.get_or_create(username="bench")
    membership_set(workspace=workspace, user=user, role=Role.REQUESTER)
    template = ReportTemplate.objects.get(slug="market-scan")

    stats = {"polls": 0, "lateness": [], "on_schedule": 0, "poll_queries": []}
    lock = threading.Lock()
    work: queue.Queue = queue.Queue()
    stop = threading.Event()
    measuring = threading.Event()

    with FakeProcess(latency) as fake:
        provider = OpenAIProvider(api_key="sk-bench", base_url=fake.base_url, timeout=30)

        def worker_thread():
            while not stop.is_set():
                try:
                    job_id, token = work.get(timeout=0.2)
                except queue.Empty:
                    continue
                due = ReportJob.objects.filter(pk=job_id).values_list("status", "next_check_at").first()
                started = timezone.now()
                with QueryCounter() as captured:
                    step.job_advance(job_id=job_id, lease_token=token, provider=provider)
                if measuring.is_set() and due and due[0] == "running":
                    late = (started - due[1]).total_seconds()
                    with lock:
                        stats["polls"] += 1
                        stats["lateness"].append(late)
                        stats["poll_queries"].append(captured.count)
                work.task_done()
            connections.close_all()

        threads = [threading.Thread(target=worker_thread, daemon=True) for _ in range(workers)]
        for t in threads:
            t.start()

        for i in range(jobs):
            services.job_submit(
                workspace=workspace, requested_by=user, template=template, topic=f"Battery recycling, case {i}",
                sources=[SourceSpec(title="Note", text="European battery recycling capacity grew 40% in 2025.")],
            )
        # Ramp up: the dispatcher prepares and starts every job (one create each).
        cycle_queries: list[int] = []

        def dispatch():
            """One dispatcher cycle, as jobs.dispatcher.tick_loop runs it."""
            with QueryCounter() as captured:
                n = dispatcher.dispatch_due(enqueue=lambda job_id, token: work.put((job_id, token)))
            if n < settings.TICK_BATCH:
                time.sleep(settings.TICK_INTERVAL)
            return n, captured.count

        ramp_start = time.monotonic()
        while ReportJob.objects.exclude(status="running").exists() and time.monotonic() - ramp_start < 300:
            dispatch()
        ramp = time.monotonic() - ramp_start
        work.join()
        if steady:
            # Spread the jobs' ages evenly over a 15-minute run: each has been polled as often
            # as the backoff allows at its age and is part-way through its current wait.
            rng = random.Random(7)
            from jobs.models import ProviderCall

            now = timezone.now()
            for call in ProviderCall.objects.all():
                age, polls, elapsed = rng.uniform(0, 900), 0, 0.0
                delay = step.poll_delay(polls)  # jittered: draw each wait once
                while elapsed + delay < age:
                    elapsed += delay
                    polls += 1
                    delay = step.poll_delay(polls)
                ProviderCall.objects.filter(pk=call.pk).update(polls=polls)
                wait = delay - (age - elapsed)
                ReportJob.objects.filter(pk=call.job_id).update(next_check_at=now + dt.timedelta(seconds=wait))

        measuring.set()
        window_start = time.monotonic()
        while time.monotonic() - window_start < seconds:
            n, q = dispatch()
            if n:
                cycle_queries.append(q)
        measuring.clear()
        elapsed = time.monotonic() - window_start
        stop.set()
        for t in threads:
            t.join()
        counts = fake.counts()
        creates, retrieves = counts.get("create", 0), counts.get("retrieve", 0)

    lateness = sorted(stats["lateness"])
    on_schedule = sum(1 for late in lateness if late <= 1.0)
    pct = lambda p: lateness[min(len(lateness) - 1, int(p * len(lateness)))] if lateness else float("nan")
    return {
        "jobs": jobs,
        "ramp_seconds": ramp,
        "creates": creates,
        "polls": stats["polls"],
        "retrieves": retrieves,
        "polls_per_second": stats["polls"] / elapsed,
        "on_schedule_share": on_schedule / len(lateness) if lateness else float("nan"),
        "lateness_p50": pct(0.50),
        "lateness_p95": pct(0.95),
        "lateness_max": lateness[-1] if lateness else float("nan"),
        "queries_per_cycle": statistics.mean(cycle_queries) if cycle_queries else float("nan"),
        "queries_per_cycle_max": max(cycle_queries) if cycle_queries else 0,
        "queries_per_poll": statistics.mean(stats["poll_queries"]) if stats["poll_queries"] else float("nan"),
        "queries_per_poll_max": max(stats["poll_queries"]) if stats["poll_queries"] else 0,
    }


def report(result: dict, label: str) -> None:
    print(f"\n== {label}: {result['jobs']} jobs in flight ==")
    print(f"  ramp-up (prepare + create each job)   {result['ramp_seconds']:.1f} s, {result['creates']} creates")
    print(f"  polls                                 {result['polls']} ({result['polls_per_second']:.1f} per second)")
    print(f"  polls on schedule (late <= 1 s)       {result['on_schedule_share']:.1%}")
    print(f"  lateness p50 / p95 / max              {result['lateness_p50']:.2f} / {result['lateness_p95']:.2f} / {result['lateness_max']:.2f} s")
    print(f"  queries per dispatcher cycle          {result['queries_per_cycle']:.2f} (max {result['queries_per_cycle_max']})")
    print(f"  queries per job poll                  {result['queries_per_poll']:.2f} (max {result['queries_per_poll_max']})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--baseline-jobs", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=40.0, help="measurement window per run")
    parser.add_argument("--latency", type=float, default=0.1, help="fake provider latency per request, seconds")
    parser.add_argument("--workers", type=int, default=8, help="worker threads standing in for qcluster workers")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        setup_django(tmp)
        from django.conf import settings

        print(
            f"database {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}, latency {args.latency * 1000:.0f} ms, "
            f"{args.workers} workers, poll cadence {settings.POLL_FIRST_SECONDS:g} s × {settings.POLL_BACKOFF:g} up to "
            f"{settings.POLL_MAX_SECONDS:g} s, window {args.seconds:g} s"
        )
        common = dict(seconds=args.seconds, latency=args.latency, workers=args.workers)
        baseline = run(jobs=args.baseline_jobs, steady=True, **common)
        report(baseline, "baseline, steady state")
        full = run(jobs=args.jobs, steady=True, **common)
        report(full, "full load, steady state")
        burst = run(jobs=args.jobs, steady=False, **common)
        report(burst, "full load, burst (all started at once)")

    print(f"\n== ratios, full load / baseline, steady state ({args.jobs} / {args.baseline_jobs} jobs) ==")
    for key, label in (
        ("queries_per_cycle", "queries per dispatcher cycle"),
        ("queries_per_poll", "queries per job poll"),
        ("polls_per_second", "polls per second"),
        ("on_schedule_share", "share on schedule"),
    ):
        print(f"  {label:<30} {full[key] / baseline[key]:.2f}×")


if __name__ == "__main__":
    main()
