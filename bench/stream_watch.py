"""Benchmark: what following young responses by their streams costs a worker process, and
how soon a stream's end wakes its job.

    .venv/bin/python bench/stream_watch.py [--streams 200] [--within 30] [--latency 0.1]

A worker process (spawned, like django-q2's; the watch enabled as a cluster's worker does it)
follows `--streams` responses at the fake Responses API (its own process), created as
streams by this process and seeded as running jobs; they finish at times spread evenly over
`--within` seconds from 25 s after their start (inside their first minute, the time a
stream is followed), each stream carrying 100 deltas of its output as a real one does. With the default 2,000 jobs in flight and ages spread over 15 minutes,
about 130 are in their first minute at any moment: 200 streams is a busy worker's share.

Printed: the worker's resident memory and CPU with no stream (the baseline, the same process
a moment before) and while it follows them all; and the wake lag, from the moment the fake's
response finished to the job's provider_notified event (what makes it due; the dispatcher's
next cycle, TICK_INTERVAL later at most, hands it on).
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402


def _cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _worker(base_url: str, streams: list[tuple[str, int]], window: float, results) -> None:
    harness.setup_django(
        REPORT_PROVIDER="openai", OPENAI_API_KEY="sk-bench", OPENAI_BASE_URL=base_url, PROVIDER_STREAM="true",
        STREAM_WATCH_LIMIT=str(max(500, len(streams))),
    )
    from django.db import connection

    from jobs.models import ProviderCall
    from jobs.providers import get_provider
    from jobs.providers.base import QUEUED, ResponseState
    from jobs.worker import stream_watch

    provider = get_provider()
    ProviderCall.objects.exists()  # the connection and the models loaded, as in a worker that has run a task
    connection.close()
    stream_watch.stream_watch_enable()

    def measure(seconds: float) -> tuple[float, float]:
        cpu, started = _cpu_seconds(), time.monotonic()
        time.sleep(seconds)
        return harness.rss_mib()[0], (_cpu_seconds() - cpu) / (time.monotonic() - started)

    idle_rss, idle_cpu = measure(3.0)
    for response_id, cursor in streams:
        stream_watch.stream_follow(provider=provider, state=ResponseState(id=response_id, status=QUEUED, stream_cursor=cursor))
    watch = stream_watch._watch_for(provider)
    harness.wait_until(lambda: watch.following == len(streams), timeout=30)
    time.sleep(2.0)  # every stream open at the fake
    following_rss, following_cpu = measure(window)
    results.put({
        "idle_rss": idle_rss, "idle_cpu": idle_cpu, "rss": following_rss, "cpu": following_cpu,
        "peak_rss": harness.rss_mib()[1], "following": watch.following,
    })
    harness.wait_until(lambda: watch.following == 0, timeout=120)
    stream_watch.stream_watch_stop()
    results.put("done")


def run(*, streams: int, within: float, latency: float) -> dict:
    import openai

    from jobs.models import JobEvent, ProviderCall

    harness.clear_jobs()
    rng = random.Random(5)
    # Finishing once the worker has started, measured itself idle, opened every stream and
    # measured itself following them (about 20 s), spread over `within` seconds.
    durations = [25.0 + rng.uniform(0, within) for _ in range(streams)]
    with harness.FakeProcess(latency) as fake:
        fake.ask("scripts", durations, 100)
        client = openai.OpenAI(api_key="sk-bench", base_url=fake.base_url, max_retries=0)

        def create(_) -> tuple[str, int]:
            events = client.responses.create(model="gpt-5.2", input="bench", background=True, store=True, stream=True)
            first = next(iter(events))
            events.close()
            return first.response.id, first.sequence_number

        with ThreadPoolExecutor(32) as pool:
            created = list(pool.map(create, range(streams)))
        ids = [response_id for response_id, _ in created]
        harness.seed_running_jobs(ids, ages=[0.0] * streams)
        ProviderCall.objects.filter(provider_response_id__in=ids).update(watched=True)
        results = harness.SPAWN.Queue()
        worker = harness.SPAWN.Process(target=_worker, args=(fake.base_url, created, 8.0, results), daemon=True)
        worker.start()
        measured = results.get(timeout=180)
        assert results.get(timeout=180) == "done"
        worker.join(timeout=30)
        started = fake.ask("started")
    calls = dict(ProviderCall.objects.filter(provider_response_id__in=ids).values_list("job_id", "provider_response_id"))
    lags = []
    for job_id, at in JobEvent.objects.filter(job_id__in=list(calls), action="provider_notified").values_list("job_id", "at"):
        start_wall, seconds = started[calls[job_id]]
        lags.append((at - dt.datetime.fromtimestamp(start_wall + seconds, tz=dt.timezone.utc)).total_seconds())
    return {**measured, "streams": streams, "woken": len(lags), "lags": lags}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--within", type=float, default=30.0, help="the responses finish over this many seconds (25 s on)")
    parser.add_argument("--latency", type=float, default=0.1)
    args = parser.parse_args(argv)

    harness.ensure_database(harness.database_url())
    harness.setup_django()
    harness.migrate()
    r = run(streams=args.streams, within=args.within, latency=args.latency)
    lags = r["lags"]
    print(f"== following young responses by their streams: {r['streams']} streams in one worker process")
    print(f"  worker, no stream (baseline):   RSS {r['idle_rss']:.0f} MiB, CPU {r['idle_cpu'] * 100:.1f} % of a core")
    print(
        f"  worker, {r['following']} streams open:      RSS {r['rss']:.0f} MiB (peak {r['peak_rss']:.0f}), "
        f"+{(r['rss'] - r['idle_rss']) * 1024 / max(1, r['following']):.0f} KiB per stream, CPU {r['cpu'] * 100:.1f} % of a core"
    )
    print(
        f"  wake lag, response finished → job due: {r['woken']}/{r['streams']} woken, p50 {harness.percentile(lags, 0.5):.2f} s  "
        f"p95 {harness.percentile(lags, 0.95):.2f} s  max {max(lags) if lags else float('nan'):.2f} s"
    )
    return r


if __name__ == "__main__":
    main()
