"""`make bench`: every benchmark of this directory, one after the other, each printing its
figures beside the baseline it measured in the same run (see README.md).

    .venv/bin/python bench/run.py [--quick]

--quick shortens every run (a smoke test of the suite, not figures to quote).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    import api_bench
    import harness
    import lag
    import poll_throughput

    started = time.monotonic()
    load = os.getloadavg()
    print(f"reportdesk benchmarks: database {harness.database_url().split('://')[0]}, {os.cpu_count()} CPUs, load average {load[0]:.1f} at start")
    if args.quick:
        poll_throughput.main(["--sizes", "50,300", "--naive-size", "100", "--machine-size", "0", "--seconds", "5", "--warmup", "2"])
        lag.main(["--jobs", "6", "--within", "15"])
        api_bench.main(["--seconds", "2", "--reads", "20"])
    else:
        poll_throughput.main([])
        lag.main([])
        api_bench.main([])
    load = os.getloadavg()
    print(f"done in {time.monotonic() - started:.0f} s; load average {load[0]:.1f} at the end")


if __name__ == "__main__":
    main()
