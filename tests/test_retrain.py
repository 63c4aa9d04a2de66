"""Retraining behind a gate (training/retrain.py): the training set, the held-out split and the gate."""
import numpy as np
import pandas as pd
import pytest

from corpora.records import appeal_texts
from training.retrain import GatePolicy, gate, heldout_split, labelled_rows, row_keys
from training.split import near_duplicate_groups


def _human(frame: pd.DataFrame, labels, start="2026-01-01") -> pd.DataFrame:
    h = frame[["id", "time", "title", "text", "district"]].copy()
    h["category"] = list(labels)
    h["urgency"] = None
    h["category_at"] = pd.date_range(start, periods=len(h), freq="min", tz="UTC")
    h["urgency_at"] = pd.NaT
    h["labelled_at"] = h["category_at"]
    return h.reset_index(drop=True)


def test_a_human_label_replaces_the_base_row_of_the_same_text_and_the_latest_label_wins(demo_frame):
    base = demo_frame.iloc[:40]
    relabel = base.iloc[[3, 3]].copy()  # the same appeal text labelled twice by dispatchers
    human = _human(relabel, ["环境保护", "交通运输"])
    rows = labelled_rows(base, human, "category")
    keys = row_keys(appeal_texts(base.iloc[[3]]))[0]
    mine = rows[rows["key"] == keys]
    assert len(mine) == 1 and mine["label"].item() == "交通运输" and bool(mine["human"].item())
    assert mine["source"].item() == f"appeal:{base['id'].iloc[3]}"
    # every other base text keeps its own label, with its row as source
    other = rows[~rows["human"].astype(bool)]
    assert len(other) == len(set(row_keys(appeal_texts(base)))) - 1
    assert set(other["source"]) <= {f"file:{i}" for i in base.index}


def test_held_out_appeals_are_ones_the_champion_never_saw_with_the_newest_labels_among_them(demo_frame):
    base, later = demo_frame.iloc[:300], demo_frame.iloc[300:]
    human = _human(later, later["category"])
    rows = labelled_rows(base, human, "category")
    seen = np.unique(row_keys(appeal_texts(base)))
    policy = GatePolicy(newest_share=0.2, holdout_share=0.25)
    train, held, newest = heldout_split(rows, seen, policy, random_state=1)
    keys = rows["key"].to_numpy(np.uint64)
    assert len(held) and not np.isin(keys[held], seen).any()
    assert set(newest) <= set(held) and not set(train) & set(held)
    assert len(train) + len(held) <= len(rows)
    groups = near_duplicate_groups(rows["text"].tolist())
    new = ~np.isin(keys, seen)
    # near-duplicates the champion never saw sit on one side only; ones it saw may train the challenger too
    assert not set(groups[np.intersect1d(train, np.flatnonzero(new))]) & set(groups[held])
    # the newest fifth of the human labels (by label time) is held out, whole groups at a time
    human_idx = np.flatnonzero(rows["human"].to_numpy(bool) & ~np.isin(keys, seen))
    at = pd.to_datetime(rows["labelled_at"].to_numpy()[human_idx], utc=True)
    newest_expected = human_idx[np.argsort(at.asi8)][-round(0.2 * len(human_idx)):]
    assert set(newest_expected) <= set(newest)


def test_without_the_champions_training_rows_only_human_labels_are_held_out(demo_frame):
    base, later = demo_frame.iloc[:300], demo_frame.iloc[300:400]
    rows = labelled_rows(base, _human(later, later["category"]), "category")
    _, held, _ = heldout_split(rows, None, GatePolicy(), random_state=0)
    assert len(held) and rows["human"].to_numpy(bool)[held].all()


def _report(macro, per_class=None, n=200, caught=None, crit=0):
    r = {"category": {"n": n, "macro_f1": macro, "per_class": per_class or {}}}
    if caught is not None:
        r["urgency"] = {"critical_caught": caught, "critical_support": crit}
    return r


def test_the_gate_names_the_rule_that_decided():
    p = GatePolicy(macro_f1_tolerance=0.01, max_category_drop=0.05, min_category_support=10, min_heldout=50)
    ok, reason, rules = gate(_report(0.80), _report(0.795), p)
    assert ok and reason.startswith("promoted") and {r["rule"] for r in rules if r["passed"]} == {
        "min_heldout", "macro_f1", "category_drop"}
    ok, reason, _ = gate(_report(0.80), _report(0.78), p)
    assert not ok and reason.startswith("rejected by macro_f1")
    ok, reason, _ = gate(_report(0.80), _report(0.90, n=49), p)
    assert not ok and reason.startswith("rejected by min_heldout")
    a = {"城乡建设": {"f1": 0.9, "support": 30}, "交通运输": {"f1": 0.9, "support": 5}}
    b = {"城乡建设": {"f1": 0.84, "support": 30}, "交通运输": {"f1": 0.1, "support": 5}}
    ok, reason, _ = gate(_report(0.8, a), _report(0.85, b), p)
    assert not ok and reason.startswith("rejected by category_drop") and "城乡建设" in reason
    assert "交通运输" not in reason  # five held-out appeals are too few to judge a category
    b["城乡建设"]["f1"] = 0.86
    assert gate(_report(0.8, a), _report(0.85, b), p)[0]
    ok, reason, _ = gate(_report(0.8, caught=0.9, crit=10), _report(0.85, caught=0.8, crit=10), p)
    assert not ok and reason.startswith("rejected by critical_recall")
    ok, _, rules = gate(_report(0.8, caught=0.9, crit=0), _report(0.85, caught=0.0, crit=0), p)
    assert ok and [r["passed"] for r in rules if r["rule"] == "critical_recall"] == [None]
    sus = {"new_labels": 200, "new_suspect": 120, "base_share": 0.05}
    ok, reason, _ = gate(_report(0.8), _report(0.85), p, suspects=sus)
    assert not ok and reason.startswith("rejected by label_quality") and "120 of 200" in reason
    # where the base labels are flagged as often, the new ones are not condemned for it
    assert gate(_report(0.8), _report(0.85), p, suspects={**sus, "base_share": 0.35})[0]
    assert not gate(_report(0.8), _report(0.85), p, suspects={**sus, "base_share": 0.29})[0]


@pytest.mark.parametrize("bad", [{"newest_share": 1.0}, {"holdout_share": -0.1}, {"macro_f1_tolerance": 2},
                                 {"min_heldout": 0}])
def test_a_policy_out_of_range_is_refused(bad):
    with pytest.raises(ValueError):
        GatePolicy(**bad)


# --- the whole procedure on the demo corpus: a real champion, real labels in a database ---

def _setup(tmp_path, demo_frame, *, urgency=True):
    """A registry whose champion trained on a quarter of the demo corpus, and a database
    holding the other appeals, tagged by it, unlabelled."""
    from sqlalchemy.orm import Session

    from models.registry import promote
    from models.tagger import Tagger
    from service import store
    from service.db import make_engine, upgrade
    from training.split import grouped_folds

    groups = near_duplicate_groups(appeal_texts(demo_frame))
    start = grouped_folds(demo_frame["category"].to_numpy(dtype=object), groups, n_splits=4, random_state=0)[0][1]
    rest = np.setdiff1d(np.arange(len(demo_frame)), start)
    registry = tmp_path / "registry"
    from training.train import train_bundle

    cols = ["id", "time", "title", "text", "district", "category"] + (["urgency"] if urgency else [])
    base = demo_frame.iloc[start][cols].reset_index(drop=True)
    champion = train_bundle(base, registry / "v0", evaluate=False, progress=False, version="v0")
    promote("v0", by="test", registry=registry)
    url = f"sqlite:///{tmp_path / 'suqiu.db'}"
    upgrade(url)
    engine = make_engine(url)
    later = demo_frame.iloc[rest]
    # re-posts of an appeal arrive, and are labelled, close together (the demo corpus is 56
    # templates of ~12 near-duplicates; in arrival order the newest labels would span them all)
    later = later.iloc[np.argsort(near_duplicate_groups(appeal_texts(later)), kind="stable")].reset_index(drop=True)
    appeals = [{"id": r.id, "time": pd.Timestamp(r.time).to_pydatetime(), "title": r.title, "text": r.text, "district": r.district}
               for r in later.itertuples()]
    tags = Tagger(champion).tag(appeal_texts(later))
    with Session(engine) as s:
        store.register_model(s, version="v0", path=str(champion.path), manifest=champion.manifest)
        store.ingest(s, appeals=appeals, tags=tags)
    return registry, engine, base, later


def _label(engine, later, values, field="category"):
    from sqlalchemy.orm import Session

    from service import store

    with Session(engine) as s:
        for appeal_id, value in zip(later["id"], values):
            store.add_labels(s, appeal_id=appeal_id, changes={field: value}, reason="test", author="reviewer")
            s.commit()


def test_true_corrections_promote_the_challenger_and_the_registry_says_who_and_why(tmp_path, demo_frame):
    from sqlalchemy.orm import Session

    from models.registry import current_version, list_versions
    from training.retrain import human_labels, retrain

    registry, engine, base, later = _setup(tmp_path, demo_frame)
    _label(engine, later, later["category"])
    with Session(engine) as s:
        human = human_labels(s)
    assert len(human) == len(later) and (human["category"].to_numpy() == later["category"].to_numpy()).all()
    rep = retrain(base, human=human, urgency_base=base, registry=registry, by="analyst-1",
                  policy=GatePolicy(min_heldout=20), find_suspects=False, progress=False)
    assert rep["promoted"] and rep["reason"].startswith("promoted") and rep["champion"] == "v0"
    assert current_version(registry).name == rep["challenger"] != "v0"
    held = rep["heldout"]["category"]
    assert 20 <= held < len(later) and rep["challenger_metrics"]["n"] == rep["champion_metrics"]["n"] == held
    assert rep["challenger_metrics"]["macro_f1"] >= rep["champion_metrics"]["macro_f1"] - 0.005
    versions = {v["version"]: v for v in list_versions(registry=registry)}
    assert versions[rep["challenger"]]["status"] == "champion" and versions["v0"]["status"] == "retired"
    # the new champion never trained on what it was judged on, and did train on the rest
    from models.registry import load_bundle

    rows = load_bundle(registry / rep["challenger"]).models["training_rows"]["category"]
    assert np.isin(row_keys(appeal_texts(base)), rows).all()
    assert (~np.isin(row_keys(appeal_texts(later)), rows)).sum() >= held


def test_a_poisoned_batch_is_rejected_and_the_champion_stays(tmp_path, demo_frame):
    from sqlalchemy.orm import Session

    from models.registry import current_version, list_versions
    from training.retrain import human_labels, retrain

    registry, engine, base, later = _setup(tmp_path, demo_frame, urgency=False)
    shuffled = np.random.default_rng(0).permutation(later["category"].to_numpy(dtype=object))
    _label(engine, later, shuffled)
    with Session(engine) as s:
        human = human_labels(s)
    found = []
    rep = retrain(base, human=human, registry=registry, by="analyst-1", policy=GatePolicy(min_heldout=20),
                  on_suspects=lambda frame, version: found.append(frame), progress=False)
    assert not rep["promoted"] and rep["reason"].startswith("rejected by")
    assert current_version(registry).name == "v0"
    status = {v["version"]: v["status"] for v in list_versions(registry=registry)}
    assert status == {"v0": "champion", rep["challenger"]: "rejected"}
    sus = rep["label_suspects"]
    assert sus["new_suspect"] / sus["new_labels"] > 0.5 and len(found[0]) == sus["found"]  # listed, not dropped
    assert rep["data"]["category"]["rows"] == len(set(row_keys(appeal_texts(pd.concat([base, later])))))


def test_urgency_is_carried_over_without_urgency_data_and_human_urgency_labels_need_the_base_file(
        tmp_path, demo_frame):
    from sqlalchemy.orm import Session

    from models.registry import load_bundle
    from training.retrain import human_labels, retrain

    registry, engine, base, later = _setup(tmp_path, demo_frame)
    _label(engine, later, later["category"])
    with Session(engine) as s:
        human = human_labels(s)
    rep = retrain(base.drop(columns="urgency"), human=human, registry=registry, by="a",
                  policy=GatePolicy(min_heldout=20), find_suspects=False, progress=False)
    new = load_bundle(registry / rep["challenger"])
    old = load_bundle(registry / "v0")
    assert new.manifest["data"]["urgency"]["carried_from"] == "v0"
    texts = appeal_texts(later.head(20))
    assert (new.models["urgency"].predict(texts) == old.models["urgency"].predict(texts)).all()
    _label(engine, later.head(5), ["critical"] * 5, field="urgency")
    with Session(engine) as s:
        human = human_labels(s)
    with pytest.raises(ValueError, match="--urgency-data"):
        retrain(base, human=human, registry=registry, by="a", find_suspects=False, progress=False)
