"""Benchmark: the REST API under load, each endpoint against a bare DRF endpoint on the same rows.

    .venv/bin/python bench/api_bench.py [--seconds 8] [--rate 50] [--clients 6] [--workers 3]

gunicorn (sync workers, 127.0.0.1 only) serves the product with the bare endpoints of
bare_api.py beside it (a ModelSerializer and generic views on the same ReportJob table, the
same token authentication and pagination). Load comes from threads of this process over
kept-alive connections. Figures:
- **submit**: throughput at saturation (`--clients` requests in flight, `--seconds` for each
  endpoint in four slices that alternate with the bare create's), then latency p50 / p95 at
  a fixed `--rate` per second (open loop: each request is timed from the moment it was due,
  so a queue counts) — `POST /api/v1/jobs/` against the bare create;
- **list** (a page of 25) and **detail**: the median time of requests one at a time, taking
  turns with the bare list and detail (so a slow moment of the machine falls on both);
- **SQL statements** per request of each, counted in this process on the same database.
"""

from __future__ import annotations

import argparse
import json
import queue as queue_module
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402

BENCH_DIR = Path(__file__).resolve().parent
FIXED_RATE_THREADS = 32
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6390/15")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _redis_reachable() -> bool:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
        return True
    except Exception:
        return False


def _server_env(redis_url: str) -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": "bench_settings", "DEBUG": "false", "SECRET_KEY": "bench-" + "x" * 50,
        "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver", "LOG_LEVEL": "WARNING", "REDIS_URL": redis_url,
        "DATABASE_URL": harness.database_url(), "SECURE_SSL_REDIRECT": "false", "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false", "SECURE_HSTS_SECONDS": "0",
    }


class Server:
    def __init__(self, workers: int, env: dict[str, str]):
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        python = Path(sys.executable)
        self.command = [
            str(python.with_name("gunicorn")), "reportdesk.wsgi:application", "--bind", f"127.0.0.1:{self.port}",
            "--workers", str(workers), "--pythonpath", f"{BENCH_DIR},{harness.ROOT}", "--log-level", "warning",
        ]
        self.env = {**os.environ, **env}

    def __enter__(self) -> Server:
        self.process = subprocess.Popen(self.command, cwd=harness.ROOT, env=self.env)
        import httpx

        def up():
            try:
                return httpx.get(f"{self.base}/healthz", timeout=2).status_code < 500
            except httpx.HTTPError:
                return False

        if not harness.wait_until(up, timeout=60, interval=0.3):
            raise RuntimeError("gunicorn did not come up")
        return self

    def __exit__(self, *exc):
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _client(token: str):
    import httpx

    return httpx.Client(headers={"Authorization": f"Token {token}", "Content-Type": "application/json"}, timeout=30)


def saturate(base: str, token: str, paths: tuple[str, str], bodies, *, clients: int, seconds: float, turns: int = 4) -> tuple[float, float]:
    """Requests per second of each of two endpoints with `clients` requests in flight,
    `seconds` each in all, in `turns` alternating slices (so a slow moment of the machine
    falls on both)."""
    rates: tuple[list[float], list[float]] = ([], [])
    for _ in range(turns):
        for path, body_for, rate in zip(paths, bodies, rates):
            rate.append(_saturate_once(base, token, path, body_for, clients=clients, seconds=seconds / turns))
    return statistics.mean(rates[0]), statistics.mean(rates[1])


def _saturate_once(base: str, token: str, path: str, body_for, *, clients: int, seconds: float) -> float:
    done = [0] * clients
    built = [_client(token) for _ in range(clients)]
    deadline = time.monotonic() + seconds

    def loop(n: int):
        while time.monotonic() < deadline:
            response = built[n].post(base + path, content=json.dumps(body_for()))
            assert response.status_code == 201, response.text[:300]
            done[n] += 1

    started = time.monotonic()
    threads = [threading.Thread(target=loop, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    for client in built:
        client.close()
    return sum(done) / elapsed


def _settle() -> None:
    """Before a fixed-rate run: vacuum and analyse the tables the saturation runs just filled,
    so that neither endpoint's run meets the database's own catching up (autovacuum, the
    statistics) started by the other's rows."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for table in ("jobs_reportjob", "jobs_jobattempt", "jobs_jobevent", "sources_sourceitem", "sources_sourcemanifest", "sources_manifestentry"):
            cursor.execute(f"VACUUM ANALYZE {table}")
    time.sleep(1.0)


def fixed_rate(base: str, token: str, path: str, body_for, *, rate: float, seconds: float) -> list[float]:
    """Latencies (s) of POSTs sent at `rate` per second, each timed from when it was due."""
    count = int(rate * seconds)
    local = threading.local()
    # The clients exist before the clock starts: building one (an SSL context, even for
    # http://) is tens of milliseconds of this process's CPU, which would delay the first
    # requests of either endpoint.
    clients: queue_module.SimpleQueue = queue_module.SimpleQueue()
    built = [_client(token) for _ in range(FIXED_RATE_THREADS)]
    for client in built:
        clients.put(client)
    start = time.monotonic() + 0.2

    def send(n: int) -> float:
        due = start + n / rate
        time.sleep(max(0.0, due - time.monotonic()))
        if not hasattr(local, "client"):
            local.client = clients.get_nowait()
        response = local.client.post(base + path, content=json.dumps(body_for()))
        assert response.status_code == 201, response.text[:300]
        return time.monotonic() - due

    try:
        with ThreadPoolExecutor(FIXED_RATE_THREADS) as pool:
            return list(pool.map(send, range(count)))
    finally:
        for client in built:
            client.close()


def alternating(base: str, token: str, paths: tuple[str, str], *, count: int) -> tuple[float, float]:
    """Median seconds per GET of each of two paths, one request at a time, the two taking
    turns: both meet the same moments of a machine whose speed moves (a pause, another
    process), which two runs one after the other would not."""
    times: tuple[list[float], list[float]] = ([], [])
    with _client(token) as client:
        for path in paths:
            client.get(base + path)
        for _ in range(count):
            for path, spent in zip(paths, times):
                started = time.perf_counter()
                response = client.get(base + path)
                spent.append(time.perf_counter() - started)
                assert response.status_code == 200, response.text[:300]
    return statistics.median(times[0]), statistics.median(times[1])


def statement_counts(token: str, bodies: dict) -> dict[str, int]:
    """SQL statements per request, counted in this process against the same database."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_AUTHORIZATION=f"Token {token}")
    counts = {}
    for name, (method, path) in {
        "submit": ("post", "/api/v1/jobs/"), "bare create": ("post", "/bare/jobs/"),
        "list": ("get", "/api/v1/jobs/"), "bare list": ("get", "/bare/jobs/"),
        "detail": ("get", bodies["detail"]), "bare detail": ("get", bodies["bare detail"]),
    }.items():
        with CaptureQueriesContext(connection) as captured:
            if method == "post":
                response = client.post(path, data=json.dumps(bodies[name]()), content_type="application/json")
            else:
                response = client.get(path)
        assert response.status_code in (200, 201), (name, response.status_code, response.content[:300])
        counts[name] = len(captured.captured_queries)
    return counts


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="per load run")
    parser.add_argument("--rate", type=float, default=50.0, help="requests per second for the fixed-rate runs")
    parser.add_argument("--clients", type=int, default=6, help="requests in flight at saturation")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers")
    parser.add_argument("--reads", type=int, default=150, help="sequential GETs per read endpoint")
    args = parser.parse_args(argv)

    harness.ensure_database(harness.database_url())
    redis_url = REDIS_URL if _redis_reachable() else ""
    sys.path.insert(0, str(BENCH_DIR))
    harness.setup_django(**_server_env(redis_url))
    harness.migrate()
    from rest_framework.authtoken.models import Token

    from jobs.models import ReportJob
    from sources.models import SourceItem
    from sources.services import manifest_create

    harness.clear_jobs()
    workspace, user, template = harness.bench_people()
    token, _ = Token.objects.get_or_create(user=user)
    item = SourceItem.objects.create(workspace=workspace, created_by=user, kind="text", title="Note", text="Recycling grew 40% in 2025.", status="ready")
    manifest = manifest_create(workspace=workspace, items=[item])
    source = {"title": "Market note", "text": "European battery recycling capacity grew 40% in 2025."}
    submit_body = lambda: {"workspace": "bench", "template": template.slug, "topic": "Battery recycling", "sources": [source]}  # noqa: E731
    bare_body = lambda: {"workspace": workspace.pk, "template": template.pk, "source_manifest": manifest.pk, "topic": "Battery recycling"}  # noqa: E731



    results: dict = {"database": harness.database_url().split(":", 1)[0], "broker": "redis" if redis_url else "orm"}
    with Server(args.workers, _server_env(redis_url)) as server:
        results["submit_saturation"], results["bare_saturation"] = saturate(
            server.base, token.key, ("/api/v1/jobs/", "/bare/jobs/"), (submit_body, bare_body), clients=args.clients, seconds=args.seconds
        )
        _settle()
        submit_lat = fixed_rate(server.base, token.key, "/api/v1/jobs/", submit_body, rate=args.rate, seconds=args.seconds)
        _settle()
        bare_lat = fixed_rate(server.base, token.key, "/bare/jobs/", bare_body, rate=args.rate, seconds=args.seconds)
        results["submit_p50"], results["submit_p95"] = harness.percentile(submit_lat, 0.5), harness.percentile(submit_lat, 0.95)
        results["bare_p50"], results["bare_p95"] = harness.percentile(bare_lat, 0.5), harness.percentile(bare_lat, 0.95)
        job = ReportJob.objects.order_by("-id").first()
        results["list"], results["bare_list"] = alternating(server.base, token.key, ("/api/v1/jobs/", "/bare/jobs/"), count=args.reads)
        results["detail"], results["bare_detail"] = alternating(
            server.base, token.key, (f"/api/v1/jobs/{job.public_id}/", f"/bare/jobs/{job.public_id}/"), count=args.reads
        )
    results["statements"] = statement_counts(token.key, {
        "submit": submit_body, "bare create": bare_body,
        "detail": f"/api/v1/jobs/{job.public_id}/", "bare detail": f"/bare/jobs/{job.public_id}/",
    })
    if redis_url:
        import redis

        connection = redis.Redis.from_url(redis_url)
        for key in connection.scan_iter("django_q:reportdesk-bench*"):
            connection.delete(key)
    report(results, args)
    return results


def report(r: dict, args) -> None:
    s = r["statements"]
    print(
        f"== API: database {r['database']}, broker {r['broker']}, gunicorn {args.workers} sync workers, "
        f"{os.cpu_count()} CPUs shared with the load generator, {args.seconds:g} s per load run"
    )
    print(f"  submit at saturation       {r['submit_saturation']:6.1f} req/s   bare create {r['bare_saturation']:6.1f} req/s   ×{r['submit_saturation'] / r['bare_saturation']:.2f}")
    print(f"  submit at {args.rate:g} req/s        p50 {r['submit_p50'] * 1000:6.1f} ms  p95 {r['submit_p95'] * 1000:6.1f} ms   bare create p50 {r['bare_p50'] * 1000:6.1f} ms  p95 {r['bare_p95'] * 1000:6.1f} ms")
    print(f"  list (page of 25)          {r['list'] * 1000:6.1f} ms   bare {r['bare_list'] * 1000:6.1f} ms   ×{r['list'] / r['bare_list']:.2f}")
    print(f"  detail                     {r['detail'] * 1000:6.1f} ms   bare {r['bare_detail'] * 1000:6.1f} ms   ×{r['detail'] / r['bare_detail']:.2f}")
    print(
        f"  SQL statements per request: submit {s['submit']} (bare create {s['bare create']}), list {s['list']} "
        f"(bare {s['bare list']}), detail {s['detail']} (bare {s['bare detail']})"
    )


if __name__ == "__main__":
    main()
