"""Benchmark: how soon a finished response becomes a stored draft, with webhooks, without
them (the response's own stream, followed by the worker that created it, and the checks),
and by polling alone; and how many retrieves a response costs.

    .venv/bin/python bench/lag.py [--jobs 48] [--within 60]

Real time: jobs are submitted and run end to end (prepare, create, polls, store) by the
product's code — the dispatcher's claim in this process, `batch_advance` (the `advance_batch`
task) in worker processes — against the fake Responses API, whose responses finish at times
spread evenly over their first `--within` seconds. The jobs are in three groups:
- webhooks: this process delivers the signed `response.completed` webhook the moment the
  response finishes (through `jobs.webhooks.webhook_receive`, what the webhook view calls),
  then hands the woken job to the worker at once, as a cluster's worker takes the
  `advance_job` task the webhook enqueues (here: a dispatch of what is due, from the
  webhook's thread);
- streams: no webhooks; the worker process follows each response's event stream through its
  first minute (PROVIDER_STREAM, as a cluster's worker does), and the stream's end makes the
  job due, which the dispatcher's next cycle hands on;
- polling: no webhooks, no streams (a second worker process with PROVIDER_STREAM off): the
  checks on the grid alone — the baseline, in the same run.
Lag = the draft_ready event's time − the moment the fake's response finished. Retrieves
count every GET of the response, streams included.

The cadence alone decides the retrieves and the polling lag, so they are also computed from
`poll_delay` over 20,000 responses for the product's cadence, with and without a stream, and
the one before it (2 s, ×1.6 up to 60 s, ±20 %).
"""

from __future__ import annotations

import argparse
import datetime as dt
import queue as queue_module
import random
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402

WEBHOOK_SECRET = "whsec_" + "YmVuY2gtd2ViaG9vay1zZWNyZXQtMzItYnl0ZXMh"


def _worker(base_url: str, tasks, results, stop, stream: bool) -> None:
    harness.setup_django(REPORT_PROVIDER="openai", OPENAI_API_KEY="sk-bench", OPENAI_BASE_URL=base_url, PROVIDER_STREAM="true" if stream else "false")
    from jobs.worker import batch
    from jobs.worker.stream_watch import stream_watch_enable

    if stream:
        stream_watch_enable()  # as a cluster's worker process does when it starts

    results.put("ready")
    while not stop.is_set():
        try:
            ids, token = tasks.get(timeout=0.1)
        except queue_module.Empty:
            continue
        batch.batch_advance(job_ids=ids, lease_token=token)
    results.put("done")


def old_delay(polls: int) -> float:
    """The cadence before this one: 2 s after start, ×1.6 each time up to 60 s, ±20 %."""
    return min(60.0, 2.0 * 1.6**polls) * (1 + random.uniform(-0.2, 0.2))


def simulate(*, count: int = 20_000, within: float = 60.0) -> dict:
    """Polling lag for responses finishing evenly in their first `within` s, and retrieves
    for a 2-minute response, under the current cadence and the one before."""
    from django.conf import settings

    from jobs.worker import step

    def checks_current(finish: float, watched: bool = False) -> tuple[float, int]:
        age, n = step.poll_delay(age=0, watched=watched), 1
        while age < finish:
            age, n = age + step.poll_delay(age=age, watched=watched), n + 1
        return age - finish, n

    def checks_streamed(finish: float) -> tuple[float, int]:
        """The checks of a response followed by its stream, and the stream; its lag is the
        stream's (measured), not the checks'."""
        lag, n = checks_current(finish, watched=True)
        return (0.0 if finish < settings.POLL_FAST_SECONDS else lag), n + 1

    def checks_old(finish: float) -> tuple[float, int]:
        age, n = 2.0 * (1 + random.uniform(-0.2, 0.2)), 1
        while age < finish:
            age, n = age + old_delay(n), n + 1
        return age - finish, n

    out = {}
    for name, checks in (("streamed", checks_streamed), ("current", checks_current), ("before", checks_old)):
        lags = [checks(random.uniform(0, within))[0] for _ in range(count)]
        two_minutes = [checks(120.0)[1] for _ in range(2000)]
        out[name] = {
            "p50": harness.percentile(lags, 0.5), "p95": harness.percentile(lags, 0.95), "max": max(lags),
            "retrieves_2min": sorted(two_minutes)[len(two_minutes) // 2], "retrieves_2min_max": max(two_minutes),
        }
    return out


def run(*, jobs: int, within: float, latency: float) -> dict:
    from django.conf import settings

    from jobs import services
    from jobs.models import JobEvent, ProviderCall
    from jobs.webhooks import webhook_receive
    from jobs.worker import dispatcher
    from sources.services import SourceSpec
    from tests.fakes.responses_api import webhook_delivery

    settings.OPENAI_WEBHOOK_SECRET = WEBHOOK_SECRET  # what webhook_receive checks signatures with
    harness.clear_jobs()
    workspace, user, template = harness.bench_people()
    rng = random.Random(11)
    durations = [rng.uniform(2.0, within - 2.0) for _ in range(jobs)]
    with harness.FakeProcess(latency) as fake:
        fake.ask("scripts", durations)
        results, stop = harness.SPAWN.Queue(), harness.SPAWN.Event()
        tasks = {stream: harness.SPAWN.Queue() for stream in (True, False)}
        workers = [
            harness.SPAWN.Process(target=_worker, args=(fake.base_url, tasks[stream], results, stop, stream), daemon=True)
            for stream in (True, False)
        ]
        for worker in workers:
            worker.start()
        assert [results.get(timeout=120) for _ in workers] == ["ready", "ready"]
        job_ids = {"webhooks": [], "streams": [], "polling": []}
        groups = list(job_ids)
        for n in range(jobs):
            group = groups[n % 3]
            job = services.job_submit(
                workspace=workspace, requested_by=user, template=template, topic=f"Battery recycling ({group} {n})",
                sources=[SourceSpec(title="Note", text="European battery recycling capacity grew 40% in 2025.")],
            )
            job_ids[group].append(job.pk)
        webhook_jobs = set(job_ids["webhooks"])
        polling_jobs = set(job_ids["polling"])
        notified: set[str] = set()
        timers: list[threading.Timer] = []

        def enqueue(ids: list[int], token: str) -> None:
            """A batch to the worker of its jobs' group: the polling group's has no streams."""
            for stream in (True, False):
                mine = [job_id for job_id in ids if (job_id in polling_jobs) != stream]
                if mine:
                    tasks[stream].put((mine, token))

        def notify(response_id: str) -> None:
            from django.db import connection

            payload, headers = webhook_delivery(response_id, "response.completed", secret=WEBHOOK_SECRET)
            webhook_receive(payload=payload, headers=headers)
            # The webhook's advance_job task, taken at once by a worker: the job is due now.
            dispatcher.dispatch_due(enqueue=enqueue)
            connection.close()  # this timer thread's own connection

        deadline = time.monotonic() + within + 30
        finished = lambda: JobEvent.objects.filter(job_id__in=sum(job_ids.values(), []), action="draft_ready").count()  # noqa: E731
        while time.monotonic() < deadline and finished() < jobs:
            n = dispatcher.dispatch_due(enqueue=enqueue)
            started = fake.ask("started")
            calls = dict(ProviderCall.objects.filter(provider_response_id__in=list(started)).values_list("provider_response_id", "job_id"))
            for response_id, (start_wall, seconds) in started.items():
                if response_id in notified or calls.get(response_id) not in webhook_jobs:
                    continue
                notified.add(response_id)
                timer = threading.Timer(max(0.0, start_wall + seconds - time.time()), notify, args=(response_id,))
                timer.start()
                timers.append(timer)
            if n < settings.TICK_BATCH:
                time.sleep(settings.TICK_INTERVAL)
        for timer in timers:
            timer.join()
        stop.set()
        for worker in workers:
            results.get(timeout=60)
            worker.join(timeout=30)
        started = fake.ask("started")
        retrieves = fake.ask("retrieves")
        streams = fake.ask("streams")

    done_at = dict(JobEvent.objects.filter(action="draft_ready").values_list("job_id", "at"))
    out = {}
    for group, ids in job_ids.items():
        lags, polls, streamed = [], [], []
        for call in ProviderCall.objects.filter(job_id__in=ids):
            start_wall, seconds = started[call.provider_response_id]
            finished_at = dt.datetime.fromtimestamp(start_wall + seconds, tz=dt.timezone.utc)
            if call.job_id in done_at:
                lags.append((done_at[call.job_id] - finished_at).total_seconds())
            polls.append(retrieves.get(call.provider_response_id, 0))
            streamed.append(streams.get(call.provider_response_id, 0))
        count = len(polls) or float("nan")
        out[group] = {
            "jobs": len(ids), "stored": len(lags), "p50": harness.percentile(lags, 0.5), "p95": harness.percentile(lags, 0.95),
            "max": max(lags) if lags else float("nan"), "retrieves": (sum(polls) + sum(streamed)) / count,
            "streams": sum(streamed) / count,
        }
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=48, help="jobs, half of them with webhooks")
    parser.add_argument("--within", type=float, default=60.0, help="responses finish within this many seconds")
    parser.add_argument("--latency", type=float, default=0.1)
    args = parser.parse_args(argv)

    harness.ensure_database(harness.database_url())
    harness.setup_django(OPENAI_WEBHOOK_SECRET=WEBHOOK_SECRET)
    harness.migrate()
    from django.conf import settings

    simulated = simulate(within=args.within)
    measured = run(jobs=args.jobs, within=args.within, latency=args.latency)
    print(
        f"== lag from the provider's terminal state to the stored draft: responses finishing within {args.within:g} s, "
        f"checks every {settings.POLL_FIRST_SECONDS:g} s (every {settings.POLL_STREAMED_SECONDS:g} s beside a stream) "
        f"for {settings.POLL_FAST_SECONDS:g} s then every {settings.POLL_MAX_SECONDS:g} s"
    )
    labels = {"webhooks": "with webhooks", "streams": "no webhooks, stream + checks", "polling": "polling only (baseline)"}
    for group, label in labels.items():
        m = measured[group]
        print(
            f"  measured, {label + ':':<30} {m['stored']}/{m['jobs']} stored, lag p50 {m['p50']:.2f} s  p95 {m['p95']:.2f} s  "
            f"max {m['max']:.2f} s, {m['retrieves']:.1f} retrieves per response ({m['streams']:.1f} of them streams)"
        )
    c = simulated["streamed"]
    print(f"  cadence now, with a stream:  retrieves for a 2-minute response {c['retrieves_2min']} (max {c['retrieves_2min_max']}), the stream included")
    for name, label in (("current", "now, polling only"), ("before", "before (2 s ×1.6)")):
        c = simulated[name]
        print(
            f"  cadence {label + ',':<20} 20,000 simulated: lag p50 {c['p50']:.2f} s  p95 {c['p95']:.2f} s  "
            f"max {c['max']:.2f} s; retrieves for a 2-minute response {c['retrieves_2min']} (max {c['retrieves_2min_max']})"
        )
    return {"simulated": simulated, "measured": measured}


if __name__ == "__main__":
    main()
