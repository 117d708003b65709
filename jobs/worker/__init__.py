"""The worker side of a job, one file per role:

- `step`: one job one step forward (prepare, start, check, store), under the job lease;
- `research`: which step of a multi-step research run comes next;
- `prompt`: the provider request built from the job, its template and its sources;
- `reconcile`: creates that never answered (timeout, dropped connection, worker death):
  matched to the response they started, or given up after a window; orphans canceled;
- `lease`: the job lease (renewed by a heartbeat while a step runs) and the dispatcher lease;
- `dispatcher`: the dispatcher loop and its sweeps (recovery, expiry, orphans).

django-q2 reaches these through jobs.tasks; everything else enqueues through jobs.queue.
"""
