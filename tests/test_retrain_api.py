"""Retraining through the service and the command line (service/retrain_jobs.py): a job in
the background, one at a time, the gate's decision in its record, the swap that follows;
`suqiu retrain`'s JSON contract."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from corpora.records import appeal_texts
from models.registry import current_version, promote
from tests.conftest import api_env
from training.split import grouped_folds, near_duplicate_groups

ROOT = Path(__file__).resolve().parents[1]
COLS = ["id", "time", "title", "text", "district", "category"]


@pytest.fixture(scope="module")
def halves(demo_frame, tmp_path_factory):
    """The demo corpus split by near-duplicate groups: a base file (a quarter) the champion
    trains on, and the appeals dispatchers will correct; re-posts labelled together."""
    groups = near_duplicate_groups(appeal_texts(demo_frame))
    start = grouped_folds(demo_frame["category"].to_numpy(dtype=object), groups, n_splits=4, random_state=0)[0][1]
    rest = demo_frame.drop(index=demo_frame.index[start])
    rest = rest.iloc[np.argsort(near_duplicate_groups(appeal_texts(rest)), kind="stable")]
    root = tmp_path_factory.mktemp("retrain-data")
    base = root / "base.csv"
    demo_frame.iloc[start][COLS].to_csv(base, index=False)
    return base, demo_frame.iloc[start], rest


@pytest.fixture
def champion(tmp_path, halves):
    from training.train import train_bundle

    registry = tmp_path / "registry"
    _, start, _ = halves
    train_bundle(start[COLS].reset_index(drop=True), registry / "v0", evaluate=False, progress=False, version="v0")
    promote("v0", by="setup", registry=registry)
    return registry


def _post_and_label(client, keys, rest, labels):
    h = {"X-API-Key": keys["admin"]}
    body = {"appeals": [{k: (str(v) if k == "time" else v) for k, v in row.items()}
                        for row in rest[COLS[:-1]].to_dict(orient="records")]}
    assert client.post("/v1/appeals", json=body, headers=h).status_code == 200
    for appeal_id, category in zip(rest["id"], labels):
        r = client.post(f"/v1/appeals/{appeal_id}/labels", json={"category": category}, headers=h)
        assert r.status_code == 200, r.text


def _wait(client, keys, job, timeout=300):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        rec = client.get(f"/v1/models/retrain/{job}", headers={"X-API-Key": keys["analyst"]}).json()
        if rec["status"] != "running":
            return rec
        time.sleep(0.2)
    raise AssertionError(f"job {job} still running after {timeout} s")


def test_a_retrain_job_promotes_on_true_labels_and_the_service_switches(tmp_path, halves, champion):
    base, _, rest = halves
    url = f"sqlite:///{tmp_path / 'suqiu.db'}"
    with api_env(url, None, registry_dir=champion, retrain_data=[base], retrain_min_heldout=20, model_poll_s=0.1,
                 hotspots=False) as (client, keys, _):
        _post_and_label(client, keys, rest, rest["category"])
        for role in ("analyst", "ingest"):
            assert client.post("/v1/models/retrain", headers={"X-API-Key": keys[role]}).status_code == 403
        r = client.post("/v1/models/retrain", headers={"X-API-Key": keys["admin"]})
        assert r.status_code == 202 and r.json()["status"] == "running" and r.json()["by"] == "test-admin"
        busy = client.post("/v1/models/retrain", headers={"X-API-Key": keys["admin"]})
        assert busy.status_code == 409 and "already running" in busy.json()["detail"]
        rec = _wait(client, keys, r.json()["job"])
        assert rec["status"] == "done", rec.get("error")
        res = rec["result"]
        assert res["promoted"] and res["champion"] == "v0" and res["reason"].startswith("promoted")
        assert {"macro_f1", "n"} <= set(res["challenger_metrics"]) and res["heldout"]["category"] >= 20
        assert current_version(champion).name == res["challenger"]
        end = time.monotonic() + 15
        while client.get("/readyz").json()["model_version"] != res["challenger"]:
            assert time.monotonic() < end, "the service did not switch to the promoted model"
            time.sleep(0.1)
        models = {v["version"]: v for v in client.get("/v1/models", headers={"X-API-Key": keys["analyst"]}).json()
                  ["data"]}
        assert models[res["challenger"]]["status"] == "champion" and models["v0"]["status"] == "retired"
        assert models[res["challenger"]]["metrics"]["macro_f1"] == res["challenger_metrics"]["macro_f1"]
        assert client.get("/v1/models/retrain/nope", headers={"X-API-Key": keys["admin"]}).status_code == 404


def test_without_base_data_the_service_says_what_to_set(tmp_path, champion):
    url = f"sqlite:///{tmp_path / 'suqiu.db'}"
    with api_env(url, None, registry_dir=champion, hotspots=False) as (client, keys, _):
        r = client.post("/v1/models/retrain", headers={"X-API-Key": keys["admin"]})
        assert r.status_code == 409 and "SUQIU_RETRAIN_DATA" in r.json()["detail"]


def test_suqiu_retrain_prints_its_decision_as_the_last_line(tmp_path, halves, champion):
    """The contract scripts depend on: the database and registry from SUQIU_* settings, one
    JSON object as the last line; here a poisoned set of labels, which the gate rejects."""
    from sqlalchemy.orm import Session

    from models.tagger import Tagger
    from models.registry import load_bundle
    from service import store
    from service.db import make_engine, upgrade

    base, _, rest = halves
    url = f"sqlite:///{tmp_path / 'suqiu.db'}"
    upgrade(url)
    engine = make_engine(url)
    bundle = load_bundle(champion / "v0")
    with Session(engine) as s:
        store.register_model(s, version="v0", path=str(bundle.path), manifest=bundle.manifest)
        appeals = [{"id": r.id, "text": r.text, "title": r.title} for r in rest.itertuples()]
        store.ingest(s, appeals=appeals, tags=Tagger(bundle).tag(appeal_texts(rest)))
        for appeal_id, category in zip(rest["id"], np.random.default_rng(3).permutation(rest["category"].to_numpy())):
            store.add_labels(s, appeal_id=appeal_id, changes={"category": category}, reason=None, author="r")
            s.commit()
    engine.dispose()
    env = {**os.environ, "SUQIU_DATABASE_URL": url, "SUQIU_REGISTRY_DIR": str(champion),
           "SUQIU_RETRAIN_MIN_HELDOUT": "20"}
    p = subprocess.run([sys.executable, "-m", "service.cli", "retrain", "--data", str(base), "-q", "--by", "ops"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert {"champion", "challenger", "promoted", "reason", "champion_metrics", "challenger_metrics"} <= set(out)
    assert out["champion"] == "v0" and out["promoted"] is False and out["reason"].startswith("rejected by")
    assert "macro_f1" in out["champion_metrics"] and "macro_f1" in out["challenger_metrics"]
    assert current_version(champion).name == "v0"
    assert "gate label_quality" in p.stderr  # each rule is logged with its figures
    listed = subprocess.run([sys.executable, "-m", "service.cli", "models", "list"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    status = {json.loads(line)["version"]: json.loads(line)["status"] for line in listed.stdout.splitlines()}
    assert status == {"v0": "champion", out["challenger"]: "rejected"}
    bad = subprocess.run([sys.executable, "-m", "service.cli", "retrain", "--data", str(tmp_path / "nope.csv")],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "nope.csv" in bad.stderr and "Traceback" not in bad.stderr


def test_a_category_an_admin_adds_is_labelled_learnt_and_routed(tmp_path, halves, champion):
    """A city's catalogue changes: labels with a new category are refused until an admin
    adds it with its department; retraining then learns it, and the new champion routes it.
    Predictions made before keep the version that made them."""
    base, _, rest = halves
    url = f"sqlite:///{tmp_path / 'suqiu.db'}"
    # the new category: the demo's 交通运输 appeals about taxis move to 出租车管理
    taxi = (rest["title"].str.contains("出租车|网约车").to_numpy(dtype=bool)
            & (rest["category"] == "交通运输").to_numpy())
    assert taxi.sum() >= 10
    labels = np.where(taxi, "出租车管理", rest["category"].to_numpy(dtype=object))
    # about the catalogue, not the gate (above): on the templated demo corpus per-category F1 swings widely
    lenient = {"retrain_max_category_drop": 1.0, "retrain_macro_f1_tolerance": 1.0}
    with api_env(url, None, registry_dir=champion, retrain_data=[base], retrain_min_heldout=20, model_poll_s=0.1,
                 hotspots=False, **lenient) as (client, keys, _):
        h = {"X-API-Key": keys["admin"]}
        first = rest["id"].iloc[int(np.flatnonzero(taxi)[0])]
        body = {"appeals": [{k: (str(v) if k == "time" else v) for k, v in row.items()}
                            for row in rest[COLS[:-1]].to_dict(orient="records")]}
        assert client.post("/v1/appeals", json=body, headers=h).status_code == 200
        r = client.post(f"/v1/appeals/{first}/labels", json={"category": "出租车管理"}, headers=h)
        assert r.status_code == 422 and "出租车管理" in r.text
        assert client.post("/v1/categories", json={"name": "出租车管理", "department": "市交通运输局出租汽车管理处"},
                           headers=h).status_code == 201
        for appeal_id, category in zip(rest["id"], labels):
            assert client.post(f"/v1/appeals/{appeal_id}/labels", json={"category": category},
                               headers=h).status_code == 200
        job = client.post("/v1/models/retrain", headers=h).json()["job"]
        rec = _wait(client, keys, job)
        assert rec["status"] == "done", rec.get("error")
        assert rec["result"]["promoted"], rec["result"]["reason"]
        new = rec["result"]["challenger"]
        end = time.monotonic() + 15
        while client.get("/readyz").json()["model_version"] != new:
            assert time.monotonic() < end
            time.sleep(0.1)
        tag = client.post("/v1/classify", json={"text": rest["text"].iloc[int(np.flatnonzero(taxi)[1])]},
                          headers=h).json()["data"][0]
        assert tag["model_version"] == new and "出租车管理" in tag["category_scores"]
        assert (tag["category"], tag["department"]) == ("出租车管理", "市交通运输局出租汽车管理处")
        cats = {c["name"]: c for c in client.get("/v1/categories", headers=h).json()["data"]}
        assert cats["出租车管理"]["in_model"] and cats["出租车管理"]["source"] == "added"
        old = client.get(f"/v1/appeals/{first}", headers=h).json()
        assert {p["model_version"] for p in old["predictions"]} == {"v0"}  # what v0 said stays v0's
