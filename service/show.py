"""Print tagged appeals (JSONL from `suqiu classify`) as a short, redacted table.

Every text printed (ids, error messages, topics, urgency reasons, ...) goes through
:func:`corpora.text.redact`: a classify output can quote what a row held.
"""
from __future__ import annotations

import json
import sys

from corpora.text import redact


def _r(value) -> str:
    return redact(str(value)) if value is not None else ""


def main(path: str) -> None:
    with open(path, encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    for r in rows:
        if "error" in r:
            sys.stdout.write(f"{_r(r.get('row'))}: {_r(r['error'])}\n")
            continue
        review = " 需复核" if r.get("needs_review") else ""
        urg = f"  紧急度 {_r(r['urgency'])} ({_r(r.get('urgency_reason', ''))})" if "urgency" in r else ""
        deadline = (r.get("deadlines") or {}).get("contact_by")
        due = f"  联系时限 {_r(deadline)}" if deadline else ""
        sys.stdout.write(f"{_r(r['id'])}: {_r(r['category'])} {r['confidence']:.2f}{review} → {_r(r['department'])}"
                         f"{' / ' + _r(r['topic']) if r.get('topic') else ''}{urg}{due}\n")


if __name__ == "__main__":
    main(sys.argv[1])
