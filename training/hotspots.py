"""Hotspot grouping on the real message-board data: speed, and heat against likes.

Prints (a) incremental grouping throughput (appeals per wall-clock and per CPU second) over ``tipdm2020c/*.csv`` and (b)
the Spearman rank correlation between group heat and the likes of
``appeals_unlabelled_hot.csv`` — per appeal (its group's heat vs its likes) and per group
of two or more (heat vs the group's summed likes). Heat is computed *without* its likes
part for (b), so the figure is not circular; the with-likes figure is printed beside it.

    python -m training.hotspots [--shared ../shared/corpora] [--limit N]

Skips with a message (exit 0) when the real data is absent. Prints no appeal text.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path


log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SHARED = ROOT.parent / "shared" / "corpora"


def _frame(path):
    from corpora.records import appeal_texts, read_appeals

    res = read_appeals(path)
    frame = res.frame.copy()
    frame["text"] = appeal_texts(frame)
    frame["id"] = [f"{path.stem}:{i}" for i in frame["id"]]
    return frame


def throughput(files, limit=None) -> dict:
    import pandas as pd

    from models.hotspots import HotspotGrouper

    frame = pd.concat([_frame(p) for p in files], ignore_index=True)
    frame = frame.drop_duplicates("id")
    if limit:
        frame = frame.iloc[:limit]
    g = HotspotGrouper()
    start, cpu = time.perf_counter(), time.process_time()
    ids = g.add_frame(frame, progress=False)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    sizes = pd.Series(ids).value_counts()
    return {"appeals": len(frame), "seconds": round(seconds, 2), "appeals_per_s": round(len(frame) / seconds, 1),
            "appeals_per_cpu_s": round(len(frame) / cpu, 1),  # less sensitive to other load on the machine
            "groups": int(len(sizes)), "groups_2plus": int((sizes >= 2).sum()),
            "appeals_in_groups_2plus": int(sizes[sizes >= 2].sum()), "largest_group": int(sizes.max())}


def heat_vs_likes(path) -> dict:
    import pandas as pd
    from scipy.stats import spearmanr

    from models.hotspots import HotspotGrouper

    frame = _frame(path)
    likes = pd.to_numeric(frame["likes"], errors="coerce").fillna(0.0)
    out = {"appeals": len(frame)}
    for label, with_likes in (("without_likes", False), ("with_likes", True)):
        g = HotspotGrouper()
        sub = frame.drop(columns=["likes"]) if not with_likes else frame.assign(likes=likes)
        gid = g.add_frame(sub, progress=False)
        rows = g.groups(min_size=1)
        heat = {r["group_id"]: r["heat"] for r in rows}
        per_appeal = spearmanr([heat[x] for x in gid], likes)
        summed = pd.Series(likes.to_numpy()).groupby(pd.Series(gid)).sum()
        multi = [r for r in rows if r["size"] >= 2]
        per_group = spearmanr([r["heat"] for r in multi], [summed[r["group_id"]] for r in multi]) \
            if len(multi) > 2 else None
        all_groups = spearmanr([r["heat"] for r in rows], [summed[r["group_id"]] for r in rows])
        out[label] = {
            "spearman_per_appeal": round(float(per_appeal.statistic), 3),
            "spearman_per_group_2plus": round(float(per_group.statistic), 3) if per_group else None,
            "groups_2plus": len(multi),
            "spearman_per_group_all": round(float(all_groups.statistic), 3),
        }
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="the real corpora folder")
    p.add_argument("--limit", type=int, help="group only the first N appeals (throughput)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    log.info("training.hotspots %s", vars(args))
    tip = args.shared / "tipdm2020c"
    files = sorted(f for f in tip.glob("*.csv") if f.name != "taxonomy.csv") if tip.is_dir() else []
    if not files:
        log.warning("skipped: %s has no appeal files (the real data is optional)", tip)
        return 0
    report = {"throughput": throughput(files, args.limit)}
    hot = tip / "appeals_unlabelled_hot.csv"
    if hot.exists():
        report["heat_vs_likes"] = heat_vs_likes(hot)
    print(json.dumps(report, ensure_ascii=False, indent=2))  # noqa: T201 (the script's output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
