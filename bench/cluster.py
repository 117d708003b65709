"""Benchmark: jobs on schedule in a real cluster, as an operator runs one, and how soon it
stores a finished report without webhooks.

    .venv/bin/python bench/cluster.py [--runs 4:50,2:1000,2:2000,4:2000,4:4000] [--seconds 30] [--latency 0.1]
                                      [--lag-jobs 24] [--within 60]

`manage.py qcluster` in a process group of its own, with the product's settings (the dispatcher
started by the cluster itself, Redis as the broker, django-q2's monitor and result saving, the
real `openai` SDK against the fake Responses API at --latency). Each run is `workers:jobs`:
Q_WORKERS (one of them is the dispatcher; 4 is the default on this machine) and the jobs in
flight, seeded in a running system's steady state as in poll_throughput.py.

A poll is **on schedule** when it reaches the provider within 1 s of the job's next_check_at.
Nothing of the cluster is instrumented: the fake stamps each retrieve with the time it arrives,
and this process reads every job's next_check_at every 0.2 s; a retrieve's due time is the
value the database held just before it (a check moves next_check_at at least 3.35 s on, half
a grid step). Jobs still overdue by more than 1 s at the window's end are counted too. The
baseline is the same cluster following 50 jobs, in the same run. Also printed: the cluster's
CPU per poll (every process of the group, the dispatcher included) and each worker process's
resident memory.

Lag: --lag-jobs reports submitted to the cluster at once (through `job_submit`, whose enqueue
reaches the cluster's Redis), their responses finishing at random times (seeded) within their
first --within seconds; no webhooks. Lag = the `draft_ready` event's time − the moment the response
finished; retrieves count every GET of a response, streams included. The baseline is the same
cluster started with PROVIDER_STREAM off (the checks alone), in the same run.
"""

from __future__ import annotations

import argparse
import bisect
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from tests.workers import WorkerProcess, group_processes  # noqa: E402

# A Redis database of its own: every run starts by emptying it.
REDIS_URL = os.environ.get("BENCH_CLUSTER_REDIS_URL", "redis://127.0.0.1:6390/7")


def _cluster_env(*, base_url: str, workers: int, stream: bool = True) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "reportdesk.settings", "DATABASE_URL": harness.database_url(), "REDIS_URL": REDIS_URL,
        "REPORT_PROVIDER": "openai", "OPENAI_API_KEY": "sk-bench", "OPENAI_BASE_URL": base_url,
        "Q_WORKERS": str(workers), "LOG_LEVEL": "WARNING", "PROVIDER_STREAM": "true" if stream else "false",
    }


@contextmanager
def _cluster(env: dict[str, str], log_name: str) -> Iterator[WorkerProcess]:
    """`manage.py qcluster` in a process group of its own (the tests' WorkerProcess), stopped
    as systemd stops one."""
    cluster = WorkerProcess(log_path=Path(harness.scratch_dir()) / log_name, env=env).start()
    try:
        yield cluster
    finally:
        cluster.stop()


def _cpu_seconds(pids: list[int]) -> dict[int, float]:
    """CPU seconds so far of each process that still runs."""
    times = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
        except OSError:
            continue
        times[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return times


def _rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class DueTimes:
    """Every job's next_check_at, read every `interval` seconds: for each response, the values
    the database held and when each was first seen."""

    def __init__(self, interval: float = 0.2):
        self.interval = interval
        self.seen: dict[str, list[tuple[float, float]]] = {}  # response id: [(first seen, due)]
        self.error: BaseException | None = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from django.db import connection

        from jobs.models import ReportJob

        try:
            while not self.stop.is_set():
                rows = list(
                    ReportJob.objects.filter(status="running", next_check_at__isnull=False)
                    .values_list("provider_response_id", "next_check_at")
                )
                # Stamped once the rows are in: a value is never dated before the moment it was
                # read (a check moves the due time seconds on, so nothing is missed).
                seen_at = time.time()
                for response_id, due in rows:
                    values = self.seen.setdefault(response_id, [])
                    if not values or values[-1][1] != due.timestamp():
                        values.append((seen_at, due.timestamp()))
                self.stop.wait(self.interval)
        except BaseException as exc:  # reported by __exit__: a run on stale due times is no run
            self.error = exc
        finally:
            connection.close()

    def due_before(self, response_id: str, at: float) -> float | None:
        """The due time the database held for the response's job just before `at`."""
        values = self.seen.get(response_id, [])
        index = bisect.bisect_left(values, (at, float("-inf"))) - 1
        return values[index][1] if index >= 0 else None

    def __enter__(self) -> DueTimes:
        self.thread.start()
        return self

    def overdue(self, at: float, by: float = 1.0) -> int:
        """Jobs whose latest due time seen was more than `by` seconds before `at`."""
        return sum(1 for values in self.seen.values() if values and values[-1][1] < at - by)

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=10)
        if self.error is not None and exc[0] is None:
            raise RuntimeError("the due times stopped being read") from self.error


def run(*, workers: int, jobs: int, seconds: float, warmup: float, latency: float) -> dict:
    import redis

    harness.clear_jobs()
    redis.Redis.from_url(REDIS_URL).flushdb()
    with harness.FakeProcess(latency) as fake:
        ids = harness.create_responses(fake.base_url, jobs)
        harness.seed_running_jobs(ids, ages=harness.steady_ages(jobs))
        with _cluster(_cluster_env(base_url=fake.base_url, workers=workers), f"cluster-{workers}-{jobs}.log") as cluster:
            with DueTimes() as due_times:
                time.sleep(warmup)
                cpu_before, window_start = _cpu_seconds(group_processes(cluster.proc.pid)), time.time()
                time.sleep(seconds)
                window_end = time.time()
                pids = group_processes(cluster.proc.pid)
                cpu_after = _cpu_seconds(pids)
                # Per process: one started in the window counts from zero (one that ended is lost).
                cpu = sum(spent - cpu_before.get(pid, 0.0) for pid, spent in cpu_after.items())
                rss = sorted((_rss_mib(pid) for pid in pids if pid != cluster.proc.pid), reverse=True)
                time.sleep(0.5)  # a read of the due times after the window's end
                overdue = due_times.overdue(window_end)
        times = fake.ask("retrieve_times")
    lateness = []
    for response_id, arrivals in times.items():
        for at in arrivals:
            if window_start <= at < window_end and (due := due_times.due_before(response_id, at)) is not None:
                lateness.append(at - due)
    polls = len(lateness)
    return {
        "workers": workers, "jobs": jobs, "polls_per_second": polls / (window_end - window_start),
        "on_schedule": sum(1 for late in lateness if late <= 1.0) / polls if polls else float("nan"),
        "late_p50": harness.percentile(lateness, 0.5), "late_p95": harness.percentile(lateness, 0.95),
        "late_max": max(lateness) if lateness else float("nan"),
        "cpu_ms_per_poll": 1000 * cpu / polls if polls else float("nan"),
        "rss": rss, "overdue": overdue,
    }


def lag_run(*, jobs: int, within: float, latency: float, stream: bool) -> dict:
    """Reports submitted to a real cluster at once, their responses finishing evenly over
    `within` seconds: from each response's end to its stored draft, and its retrieves."""
    import datetime as dt
    import random

    import redis

    from jobs import services
    from jobs.models import JobEvent, ProviderCall
    from sources.services import SourceSpec

    harness.clear_jobs()
    redis.Redis.from_url(REDIS_URL).flushdb()
    workspace, user, template = harness.bench_people()
    rng = random.Random(11)
    with harness.FakeProcess(latency) as fake:
        fake.ask("scripts", [rng.uniform(2.0, within - 2.0) for _ in range(jobs)])
        with _cluster(_cluster_env(base_url=fake.base_url, workers=4, stream=stream), f"cluster-lag-{stream}.log"):
            harness.wait_until(lambda: _cluster_started(), timeout=60)
            job_ids = [
                services.job_submit(
                    workspace=workspace, requested_by=user, template=template, topic=f"Battery recycling ({n})",
                    sources=[SourceSpec(title="Note", text="European battery recycling capacity grew 40% in 2025.")],
                ).pk
                for n in range(jobs)
            ]
            stored = lambda: JobEvent.objects.filter(job_id__in=job_ids, action="draft_ready").count() == jobs  # noqa: E731
            harness.wait_until(stored, timeout=within + 60, interval=0.5)
        started, retrieves, streams = fake.ask("started"), fake.ask("retrieves"), fake.ask("streams")
    done_at = dict(JobEvent.objects.filter(job_id__in=job_ids, action="draft_ready").values_list("job_id", "at"))
    lags, gets = [], []
    for call in ProviderCall.objects.filter(job_id__in=job_ids):
        start_wall, seconds = started[call.provider_response_id]
        if call.job_id in done_at:
            finished_at = dt.datetime.fromtimestamp(start_wall + seconds, tz=dt.timezone.utc)
            lags.append((done_at[call.job_id] - finished_at).total_seconds())
        gets.append(retrieves.get(call.provider_response_id, 0) + streams.get(call.provider_response_id, 0))
    return {
        "stream": stream, "jobs": jobs, "stored": len(lags), "p50": harness.percentile(lags, 0.5),
        "p95": harness.percentile(lags, 0.95), "max": max(lags) if lags else float("nan"),
        "retrieves": sum(gets) / len(gets) if gets else float("nan"),
    }


def _cluster_started() -> bool:
    from jobs.models import WorkerHeartbeat

    return WorkerHeartbeat.objects.exists()


def line(result: dict) -> str:
    rss = result["rss"]
    return (
        f"  Q_WORKERS={result['workers']} {result['jobs']:>5} jobs  {result['polls_per_second']:6.1f} polls/s  "
        f"on schedule {result['on_schedule']:6.1%} ({result['overdue']} overdue > 1 s at the end)  late p50/p95/max {result['late_p50']:5.2f}/{result['late_p95']:5.2f}/"
        f"{result['late_max']:6.2f} s  cluster CPU/poll {result['cpu_ms_per_poll']:.1f} ms  "
        f"RSS of its {len(rss)} processes {rss[-1]:.0f}–{rss[0]:.0f} MiB"
    )


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", default="4:50,2:1000,2:2000,4:2000,4:4000", help="workers:jobs, comma-separated; the first is the baseline")
    parser.add_argument("--seconds", type=float, default=30.0, help="measurement window per run")
    parser.add_argument("--warmup", type=float, default=12.0, help="from the cluster's start (it starts in a few seconds)")
    parser.add_argument("--latency", type=float, default=0.1, help="fake provider latency per request, seconds")
    parser.add_argument("--lag-jobs", type=int, default=24, help="reports for the lag runs (0: skip them)")
    parser.add_argument("--within", type=float, default=60.0, help="the lag runs' responses finish within this many seconds")
    args = parser.parse_args(argv)

    harness.ensure_database(harness.database_url())
    harness.setup_django(REDIS_URL=REDIS_URL)  # a submit here enqueues to the cluster's broker
    harness.migrate()
    print(
        f"== a real cluster (manage.py qcluster, Redis broker): latency {args.latency * 1000:.0f} ms, "
        f"{os.cpu_count()} CPUs, window {args.seconds:g} s; on schedule = at the provider ≤ 1 s after next_check_at",
        flush=True,
    )
    results = []
    for spec in args.runs.split(","):
        workers, jobs = (int(part) for part in spec.split(":"))
        result = run(workers=workers, jobs=jobs, seconds=args.seconds, warmup=args.warmup, latency=args.latency)
        print(line(result), flush=True)
        results.append(result)
    if args.lag_jobs:
        print(f"== lag in the same cluster (Q_WORKERS=4), no webhooks: {args.lag_jobs} reports finishing within {args.within:g} s", flush=True)
        for stream in (False, True):
            lag = lag_run(jobs=args.lag_jobs, within=args.within, latency=args.latency, stream=stream)
            label = "the stream and the checks (default)" if stream else "polling only (PROVIDER_STREAM off, baseline)"
            print(
                f"  {label:<46} {lag['stored']}/{lag['jobs']} stored, lag p50 {lag['p50']:.2f} s  p95 {lag['p95']:.2f} s  "
                f"max {lag['max']:.2f} s, {lag['retrieves']:.1f} retrieves per response", flush=True,
            )
            results.append(lag)
    return results


if __name__ == "__main__":
    main()
