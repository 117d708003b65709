"""Benchmark: multi-step research run in parallel, against the same plan run as a linear chain.

    .venv/bin/python bench/multistep_parallel.py [--questions 3] [--step-seconds 1.0]

One multi-step job runs through the product's own worker step (jobs.worker.step.job_advance),
the real `openai` SDK and the loopback fake of the Responses API, whose responses each take
`2 × --step-seconds` (queued → in_progress → completed by the fake's clock). The plan names
`--questions` questions; each question makes one `search_sources` call, gets its answer and
writes notes; then the synthesis. Printed:

- overlap: how many research responses were at the provider at the same time (from the
  fake's own timestamps), and the research phase's wall time against the sum of its
  responses' durations;
- billed input tokens: what the fake billed for the job's calls — a chained request is billed
  for the context it carries, as the API bills `previous_response_id` — against the same
  requests replayed as the linear chain the product used before (plan → question 1 → its
  answer → question 2 → … → synthesis, each chained from the one before, the synthesis
  carrying the notes in its chain instead of as input).

- how long after its end a question is read when nothing announces it (polling only), and
  the retrieves it costs: simulated on the product's grid and its choice of the response a
  check reads, for 1, `--questions` and 5 questions, against the choice before (the response
  looked at longest ago, the job's next check on that response's grid).

The database is a throwaway SQLite file; DATABASE_URL is never used.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SOURCE = (
    "European battery recycling capacity reached 410,000 tonnes a year in 2025.\n\n"
    "Most plants make black mass; hydrometallurgical refining is scarce.\n\n"
    "The EU Battery Regulation sets a 50 percent lithium recovery target by 2027."
) * 8


def setup_django(db_dir: str) -> None:
    os.environ["DATABASE_URL"] = f"sqlite:///{db_dir}/bench.sqlite3"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reportdesk.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def scripts(questions: int, step_seconds: float, *, timed: bool):
    from tests.fakes.responses_api import Script

    kind = {"advance": "time", "step_seconds": step_seconds} if timed else {"statuses": ("completed",)}
    search = json.dumps({"query": "recycling capacity tonnes"})
    plan = Script(output_text=json.dumps({"questions": [f"Question {n}?" for n in range(1, questions + 1)]}), **kind)
    ask = Script(function_calls=(("search_sources", search),), **kind)
    notes = [Script(output_text=f"Notes on question {n}: capacity reached 410,000 tonnes [S1]." * 6, **kind)
             for n in range(1, questions + 1)]
    synthesis = Script(**kind)
    return plan, ask, notes, synthesis


def run_parallel(fake, provider, questions: int, step_seconds: float) -> dict:
    from django.utils import timezone

    from jobs import services
    from jobs.models import ProviderCall, ReportJob, ReportTemplate
    from jobs.worker import step
    from reportdesk.models import Role, Workspace
    from reportdesk.services import membership_set
    from sources.services import SourceSpec
    from django.contrib.auth import get_user_model

    plan, ask, notes, synthesis = scripts(questions, step_seconds, timed=True)
    # Creation order in the parallel run: the plan, every question's first round at once,
    # then each question's notes as its answer comes back, then the synthesis.
    fake.script_next(plan, *[ask] * questions, *notes, synthesis)
    workspace = Workspace.objects.create(slug="bench", name="Bench")
    user = get_user_model().objects.create(username="bench")
    membership_set(workspace=workspace, user=user, role=Role.REQUESTER)
    template = ReportTemplate.objects.create(
        slug="bench-multi", name="Bench multi-step", report_type="market_scan", mode="multi_step",
        instructions="Write a careful report.", required_sections=["Capacity"], model="gpt-5.2",
    )
    job = services.job_submit(workspace=workspace, requested_by=user, template=template, topic="Battery recycling",
                              sources=[SourceSpec(title="Market note", text=SOURCE)])
    started = time.monotonic()
    while job.status in ("queued", "preparing", "running") and time.monotonic() - started < 120:
        ReportJob.objects.filter(pk=job.pk).update(next_check_at=timezone.now())
        step.job_advance(job_id=job.pk, provider=provider)
        job.refresh_from_db()
        time.sleep(0.1)
    calls = list(ProviderCall.objects.filter(job=job).order_by("id"))
    return {"job": job, "calls": calls, "wall": time.monotonic() - started}


def research_overlap(fake, calls, step_seconds: float) -> tuple[int, float, float]:
    """(most research responses at the provider at once, research phase wall time, sum of durations)."""
    duration = 2 * step_seconds
    spans = [(fake.responses[c.provider_response_id].started, fake.responses[c.provider_response_id].started + duration)
             for c in calls if c.step.startswith("research-")]
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    most = live = 0
    for _, change in edges:
        live += change
        most = max(most, live)
    wall = max(end for _, end in spans) - min(start for start, _ in spans)
    return most, wall, duration * len(spans)


def replay_linear(fake, questions: int) -> int:
    """The parallel run's requests, chained one after the other as the linear chain did."""
    import openai

    from tests.fakes.responses_api import CREATE

    bodies = [dict(r.body) for r in fake.requests_to(CREATE)]
    plan_body, firsts = bodies[0], bodies[1 : 1 + questions]
    answers, synthesis = bodies[1 + questions : 1 + 2 * questions], dict(bodies[-1])
    synthesis["input"] = synthesis["input"].split("\n\n--- Research notes")[0]
    order = [plan_body]
    for first, answer in zip(firsts, answers):
        order += [first, answer]
    order.append(synthesis)
    plan, ask, notes, final = scripts(questions, 0, timed=False)
    fake.script_next(plan, *[s for note in notes for s in (ask, note)], final)
    client = openai.OpenAI(api_key="sk-bench", base_url=fake.base_url, max_retries=0)
    previous = None
    billed = 0
    for body in order:
        body = {k: v for k, v in body.items() if k != "previous_response_id"}
        if previous is not None:
            body["previous_response_id"] = previous.id
            calls = [item.call_id for item in previous.output if item.type == "function_call"]
            if isinstance(body["input"], list) and calls:
                body["input"] = [dict(item, call_id=calls[0]) for item in body["input"]]
        response = client.responses.create(**body)
        billed += fake.body_of(response.id)["usage"]["input_tokens"]
        previous = response
    return billed


def checks_simulated(questions: int, *, runs: int = 2000, seed: int = 7) -> dict[str, tuple[list[float], float]]:
    """How long after a question ends a check reads it, polling only (no webhook, no stream),
    for `questions` started together that end at random between their 1st and 10th minute.
    The product's grid (jobs.worker.cadence) and its choice of the response to read
    (research.response_due), without jitter; against the choice before: one check per job,
    reading the response looked at longest ago, the next check on that response's grid.
    Returns {policy: (lags, retrieves per question)}."""
    import random

    from jobs.worker.cadence import grid_point
    from jobs.worker.research import response_due

    base = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    out = {}
    for policy in ("now", "before"):
        rng = random.Random(seed)  # the same ends for both
        lags, retrieves = [], 0
        for _ in range(runs):
            ends = [rng.uniform(60, 600) for _ in range(questions)]
            checked: dict[int, float | None] = {n: None for n in range(questions)}
            running = set(range(questions))
            t = grid_point(age=0)[0]
            while running:
                if policy == "now":
                    due = {n: response_due(created_at=base, watched=False, notified_at=None,
                                           last_checked_at=None if checked[n] is None else base + dt.timedelta(seconds=checked[n]))[0]
                           for n in running}
                    n = min(running, key=lambda n: (due[n], n))
                else:
                    n = min(running, key=lambda n: (checked[n] or 0.0, n))
                retrieves += 1
                checked[n] = t
                if ends[n] <= t:
                    lags.append(t - ends[n])
                    running.discard(n)
                if not running:
                    break
                if policy == "now":
                    t = max(t, min((response_due(created_at=base, watched=False, notified_at=None,
                                                 last_checked_at=None if checked[m] is None else base + dt.timedelta(seconds=checked[m]))[0]
                                    - base).total_seconds() for m in running))
                else:
                    t = grid_point(age=t)[0]
        out[policy] = (lags, retrieves / (runs * questions))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=3)
    parser.add_argument("--step-seconds", type=float, default=1.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as db_dir:
        setup_django(db_dir)
        from jobs.providers.openai_provider import OpenAIProvider
        from tests.fakes.responses_api import ResponsesAPIFake

        with ResponsesAPIFake() as fake:
            provider = OpenAIProvider(api_key="sk-bench", base_url=fake.base_url, timeout=10)
            result = run_parallel(fake, provider, args.questions, args.step_seconds)
            job, calls = result["job"], result["calls"]
            most, phase_wall, phase_sum = research_overlap(fake, calls, args.step_seconds)
            parallel_billed = sum(fake.body_of(c.provider_response_id)["usage"]["input_tokens"] for c in calls)
            linear_billed = replay_linear(fake, args.questions)
            problems = fake.validation_errors + fake.internal_errors
    print(f"job {job.public_id}: {job.status}; {len(calls)} provider calls: {', '.join(c.step for c in calls)}")
    print(f"research responses at the provider at once: {most} of {args.questions} questions")
    print(f"research phase: {phase_wall:.1f} s wall for {phase_sum:.1f} s of responses "
          f"({phase_sum / phase_wall:.1f}× overlap)")
    print(f"billed input tokens: parallel {parallel_billed:,} vs linear chain {linear_billed:,} "
          f"({100 * (linear_billed - parallel_billed) / linear_billed:.0f}% fewer)")
    print("questions started together, ending in their minutes 1–10, polling only (simulated, 2,000 runs):"
          " how long after its end a question is read (p50 / p95 / max), and retrieves a question")
    for questions in sorted({1, args.questions, 5}):
        simulated = checks_simulated(questions)
        line = []
        for policy in ("now", "before"):
            lags, retrieves = simulated[policy]
            lags.sort()
            line.append(f"{policy} {lags[len(lags) // 2]:5.1f} / {lags[int(len(lags) * 0.95)]:5.1f} / {lags[-1]:5.1f} s, {retrieves:4.1f}")
        print(f"  {questions} question{'s' if questions > 1 else ' '}:  " + "    ".join(line))
    if problems:
        print("fake problems:", *problems, sep="\n  ")
        sys.exit(1)


if __name__ == "__main__":
    main()
