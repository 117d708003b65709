"""`make bench`: every benchmark of this directory, one after the other, each printing its
figures beside the baseline it measured in the same run (see README.md).

    .venv/bin/python bench/run.py [--quick]

--quick shortens every run (a smoke test of the suite, not figures to quote).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    import harness

    harness.ensure_database(harness.database_url())
    started = time.monotonic()
    print(
        f"reportdesk benchmarks: database {harness.database_url().split('://')[0]}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f} at start",
        flush=True,
    )
    quick = {
        "poll_throughput.py": ["--sizes", "50,300", "--naive-size", "100", "--machine-size", "0", "--seconds", "5", "--warmup", "2"],
        "cluster.py": ["--runs", "4:50,4:300", "--seconds", "5", "--warmup", "10", "--lag-jobs", "6", "--within", "20"],
        "lag.py": ["--jobs", "6", "--within", "15"],
        "stream_watch.py": ["--streams", "20", "--within", "5"],
        "api_bench.py": ["--seconds", "2", "--reads", "20"],
        "multistep_parallel.py": ["--step-seconds", "0.5"],
    }
    for script, quick_args in quick.items():
        # Each in a process of its own: each sets Django up its own way.
        subprocess.run([sys.executable, str(HERE / script), *(quick_args if args.quick else [])], check=True)
    print(f"done in {time.monotonic() - started:.0f} s; load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
