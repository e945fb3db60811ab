"""Measure detection on the corpus in tests/corpus and rewrite the table in docs/detection.md.

    python scripts/detection_report.py          # rewrite the table
    python scripts/detection_report.py --check  # exit 1 if the doc is out of step

tests/test_detection_corpus.py runs the same measurement and fails when the doc's table is
not the one this script would write, so the published numbers are always the measured ones.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.corpus.measure import measure  # noqa: E402 - after the path set-up

DOC = ROOT / "docs" / "detection.md"
START, END = "<!-- detection-report:start -->\n", "<!-- detection-report:end -->"


def rewrite(text: str, table: str) -> str:
    return re.sub(
        re.escape(START) + ".*?" + re.escape(END),
        lambda _: START + table + END,
        text,
        flags=re.DOTALL,
    )


def main() -> int:
    table = measure().markdown()
    text = DOC.read_text(encoding="utf-8")
    updated = rewrite(text, table)
    if "--check" in sys.argv[1:]:
        if updated != text:
            print("docs/detection.md is out of step: run python scripts/detection_report.py")
            return 1
        print("docs/detection.md is up to date")
        return 0
    DOC.write_text(updated, encoding="utf-8")
    print(
        "docs/detection.md table up to date" if updated == text else "docs/detection.md rewritten"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
