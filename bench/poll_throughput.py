"""Benchmark: how many jobs in flight one worker process follows on schedule.

    .venv/bin/python bench/poll_throughput.py [--sizes 1000,2000] [--naive-size 1000]
                                              [--seconds 20] [--latency 0.1] [--machine-size 4000]

Jobs running at the fake Responses API (its own process, answering after --latency, 100 ms),
seeded in a running system's steady state (ages spread over 15 minutes, each part-way to its
next check on the product's cadence). The dispatcher's own claim (`dispatch_due`) runs in this
process; worker processes (spawned, like django-q2's) take what it hands on through a queue
standing in for the broker and run the product's task code through the real `openai` SDK:

- **before** (the baseline): one job per task, as `advance_job` was run before batching — a
  new provider (a new OpenAI client) and a new database connection for every poll, one poll
  at a time per process;
- **batched**: `jobs.worker.batch.batch_advance`, the code of the `advance_batch` task, with
  the process's one provider and its persistent connection, a batch's polls in flight together.

For each run: polls per second, the share of polls on schedule (started within 1 s of the
job's next_check_at, read just before the task runs), lateness percentiles, database queries
per dispatcher cycle and per poll, and the resident memory of each worker process.
What it leaves out: the broker (a multiprocessing queue here) and django-q2's result saving,
which the settings now skip for these tasks (jobs.queue: save=False).
"""

from __future__ import annotations

import argparse
import os
import queue as queue_module
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402


def _worker(mode: str, base_url: str, tasks, results, measuring, stop) -> None:
    harness.setup_django(REPORT_PROVIDER="openai", OPENAI_API_KEY="sk-bench", OPENAI_BASE_URL=base_url)
    from django.db import connections
    from django.utils import timezone

    from jobs.models import ReportJob
    from jobs.providers.openai_provider import OpenAIProvider
    from jobs.worker import batch, step

    ReportJob.objects.exists()  # connected and warm before the clock starts
    counter = harness.AllThreadsQueryCounter()
    results.put("ready")
    lateness: list[float] = []
    queries = polls = 0
    cpu = 0.0
    while not stop.is_set():
        try:
            ids, token = tasks.get(timeout=0.2)
        except queue_module.Empty:
            continue
        measure = measuring.is_set()
        due = dict(ReportJob.objects.filter(pk__in=ids, status="running").values_list("pk", "next_check_at")) if measure else {}
        started, cpu_started, queries_before = timezone.now(), time.process_time(), counter.count
        if mode == "batched":
            batch.batch_advance(job_ids=ids, lease_token=token)
        else:
            for job_id in ids:
                provider = OpenAIProvider(api_key="sk-bench", base_url=base_url, timeout=30)
                step.job_advance(job_id=job_id, lease_token=token, provider=provider)
        if mode != "batched":
            connections.close_all()  # CONN_MAX_AGE=0: a new connection for the next task
        if measure:
            cpu += time.process_time() - cpu_started
        if measure and due:
            lateness.extend((started - at).total_seconds() for at in due.values())
            polls += len(due)
            queries += counter.count - queries_before
    current, peak = harness.rss_mib()
    results.put({"lateness": lateness, "polls": polls, "queries": queries, "cpu": cpu, "rss": current, "rss_peak": peak})


def run(*, mode: str, jobs: int, processes: int, seconds: float, warmup: float, latency: float) -> dict:
    from django.conf import settings

    from jobs.worker import dispatcher

    harness.clear_jobs()
    with harness.FakeProcess(latency) as fake:
        ids = harness.create_responses(fake.base_url, jobs)
        harness.seed_running_jobs(ids, ages=harness.steady_ages(jobs))
        tasks, results = harness.SPAWN.Queue(), harness.SPAWN.Queue()
        measuring, stop = harness.SPAWN.Event(), harness.SPAWN.Event()
        workers = [
            harness.SPAWN.Process(target=_worker, args=(mode, fake.base_url, tasks, results, measuring, stop), daemon=True)
            for _ in range(processes)
        ]
        for worker in workers:
            worker.start()
        for _ in workers:
            assert results.get(timeout=120) == "ready"

        if mode == "batched":
            enqueue = lambda job_ids, token: tasks.put((job_ids, token))  # noqa: E731
        else:
            enqueue = lambda job_ids, token: [tasks.put(([job_id], token)) for job_id in job_ids]  # noqa: E731
        cycles: list[int] = []
        started = time.monotonic()
        window_start = started + warmup
        while time.monotonic() - started < warmup + seconds:
            if time.monotonic() >= window_start and not measuring.is_set():
                measuring.set()
            with harness.QueryCounter() as counted:
                claimed = dispatcher.dispatch_due(enqueue=enqueue)
            if claimed and measuring.is_set():
                cycles.append(counted.count)
            if claimed < settings.TICK_BATCH:
                time.sleep(settings.TICK_INTERVAL)
        measuring.clear()
        elapsed = time.monotonic() - window_start
        stop.set()
        reports = [results.get(timeout=120) for _ in workers]
        for worker in workers:
            worker.join(timeout=30)
        counts = fake.counts()

    lateness = [late for report in reports for late in report["lateness"]]
    polls = sum(report["polls"] for report in reports)
    return {
        "mode": mode, "jobs": jobs, "processes": processes, "retrieves": counts.get("retrieve", 0),
        "polls_per_second": polls / elapsed if elapsed else 0.0,
        "on_schedule": sum(1 for late in lateness if late <= 1.0) / len(lateness) if lateness else float("nan"),
        "late_p50": harness.percentile(lateness, 0.5), "late_p95": harness.percentile(lateness, 0.95),
        "late_max": max(lateness) if lateness else float("nan"),
        "queries_per_cycle": statistics.mean(cycles) if cycles else float("nan"),
        "queries_per_cycle_max": max(cycles) if cycles else 0,
        "queries_per_poll": sum(r["queries"] for r in reports) / polls if polls else float("nan"),
        "cpu_ms_per_poll": 1000 * sum(r["cpu"] for r in reports) / polls if polls else float("nan"),
        "rss": max(r["rss"] for r in reports), "rss_peak": max(r["rss_peak"] for r in reports),
    }


def line(result: dict) -> str:
    label = "before: one job per task" if result["mode"] == "naive" else "batched"
    return (
        f"  {label:<26} {result['jobs']:>5} jobs {result['processes']} proc  "
        f"{result['polls_per_second']:6.1f} polls/s  on schedule {result['on_schedule']:6.1%}  "
        f"late p50/p95/max {result['late_p50']:5.2f}/{result['late_p95']:5.2f}/{result['late_max']:6.2f} s  "
        f"queries/cycle {result['queries_per_cycle']:.2f} (max {result['queries_per_cycle_max']})  "
        f"queries/poll {result['queries_per_poll']:.2f}  worker CPU/poll {result['cpu_ms_per_poll']:.1f} ms  RSS/worker {result['rss']:.0f} MiB (peak {result['rss_peak']:.0f})"
    )


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="50,1000,2000", help="jobs in flight for the batched runs, one process")
    parser.add_argument("--naive-size", type=int, default=1000, help="jobs in flight for the baseline run (0: skip)")
    parser.add_argument("--machine-size", type=int, default=2000, help="jobs for the whole-machine run (0: skip)")
    parser.add_argument("--seconds", type=float, default=20.0, help="measurement window per run")
    parser.add_argument("--warmup", type=float, default=4.0)
    parser.add_argument("--latency", type=float, default=0.1, help="fake provider latency per request, seconds")
    args = parser.parse_args(argv)

    harness.ensure_database(harness.database_url())
    harness.setup_django()
    harness.migrate()
    from django.conf import settings

    pool = settings.Q_CLUSTER["workers"] - 1  # one process of the cluster is the dispatcher
    print(
        f"== polling: database {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}, latency "
        f"{args.latency * 1000:.0f} ms, {os.cpu_count()} CPUs, cadence every {settings.POLL_FIRST_SECONDS:g} s for "
        f"{settings.POLL_FAST_SECONDS:g} s then every {settings.POLL_MAX_SECONDS:g} s, batches of {settings.ADVANCE_BATCH}, "
        f"{settings.POLL_CONCURRENCY} retrieves in flight per process, window {args.seconds:g} s"
    )
    common = dict(seconds=args.seconds, warmup=args.warmup, latency=args.latency)
    results = []
    plan = [("naive", args.naive_size, 1)] if args.naive_size else []
    plan += [("batched", int(n), 1) for n in args.sizes.split(",") if n]
    if args.machine_size:
        plan.append(("batched", args.machine_size, pool))
    for mode, jobs, processes in plan:
        result = run(mode=mode, jobs=jobs, processes=processes, **common)
        print(line(result), flush=True)
        results.append(result)
    batched = [r for r in results if r["mode"] == "batched" and r["processes"] == 1]
    if len(batched) >= 2:
        small, large = batched[0], batched[-1]
        print(
            f"  constant in the number of jobs ({large['jobs']} / {small['jobs']}): queries per cycle "
            f"{large['queries_per_cycle'] / small['queries_per_cycle']:.2f}×, per poll "
            f"{large['queries_per_poll'] / small['queries_per_poll']:.2f}×"
        )
    return results


if __name__ == "__main__":
    main()
