"""Print tagged appeals (JSONL from `suqiu classify`) as a short, redacted table."""
from __future__ import annotations

import json
import sys


def main(path: str) -> None:
    with open(path, encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    for r in rows:
        if "error" in r:
            sys.stdout.write(f"{r.get('row')}: {r['error']}\n")
            continue
        review = " 需复核" if r.get("needs_review") else ""
        urg = f"  紧急度 {r['urgency']} ({r.get('urgency_reason', '')})" if "urgency" in r else ""
        deadline = r.get("deadlines", {}).get("contact_by")
        due = f"  联系时限 {deadline}" if deadline else ""
        sys.stdout.write(f"{r['id']}: {r['category']} {r['confidence']:.2f}{review} → {r['department']}"
                         f"{' / ' + r['topic'] if r.get('topic') else ''}{urg}{due}\n")


if __name__ == "__main__":
    main(sys.argv[1])
