"""How good is the local engine's offline draft? Recall and junk on the evaluation set.

Runs every case of tests/evaluation/cases.json (real documents; see the README beside it)
through the local engine and prints, per case and overall: the share of expected passages
that land in their sections, the share of evidence rows that are junk (date lines, markup,
code, page furniture), sentences used twice, false statements about the sources, and the
engine's time in milliseconds (extraction of the documents not included).
No database, no network. Usage: python bench/local_engine_eval.py [-v]
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reportdesk.settings")

import django  # noqa: E402

django.setup()

from tests.evaluation.harness import evaluate, load_cases  # noqa: E402


def main(verbose: bool) -> int:
    expected = found = rows = junk = repeats = false = 0
    print(f"{'case':<72} {'recall':>7} {'junk':>9} {'repeats':>8} {'false':>6} {'ms':>6}")
    for case in load_cases():
        result, _report = evaluate(case)
        expected += result.expected
        found += result.found
        rows += result.evidence_rows
        junk += len(result.junk)
        repeats += len(result.repeats)
        false += len(result.false_statements)
        print(
            f"{result.name[:72]:<72} {result.recall:>7.0%} {len(result.junk):>4}/{result.evidence_rows:<4}"
            f" {len(result.repeats):>8} {len(result.false_statements):>6} {result.engine_ms:>6.0f}"
        )
        if verbose:
            for line in result.misses + result.junk + result.repeats + result.false_statements:
                print(f"    - {line}")
    print(
        f"\nRecall {found}/{expected} = {found / expected:.0%} of expected passages in their sections; "
        f"junk {junk}/{rows} = {junk / rows if rows else 0:.0%} of evidence rows; "
        f"{repeats} sentences used twice; {false} false statements about the sources."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(verbose="-v" in sys.argv[1:]))
