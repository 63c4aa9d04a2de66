"""The `suqiu` command line contract: names, flags, outputs, and clear errors."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from service.cli import main


@pytest.fixture()
def model_dir(demo_bundle):
    return str(demo_bundle.path)


def run(*args):
    return subprocess.run([sys.executable, "-m", "service.cli", *args], capture_output=True, text=True)


def test_classify_round_trip_keeps_order_and_fields(model_dir, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("id,title,text,time,district\n"
                   "b2,暖气不热,家里暖气不热已经三天了,2025/12/1 8:00:00,北山区\n"
                   "a1,,导游强制购物，不买不让走,2025-10-02 10:00,南湖区\n"
                   ",,請問社保怎麼轉移,,\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert main(["classify", "--model", model_dir, "--input", str(src), "--output", str(out), "-q"]) == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["b2", "a1", "row-3"]
    for r in rows:
        assert {"id", "category", "category_scores", "needs_review", "department", "urgency", "urgency_score",
                "urgency_cues", "deadlines"} <= set(r)
    assert [r["category"] for r in rows] == ["城乡建设", "商贸旅游", "劳动和社会保障"]
    assert rows[0]["deadlines"]["contact_by"] == "2025-12-01T09:00:00+08:00"  # the hotline's clock


def test_train_and_evaluate_round_trip_on_held_out_appeals(tmp_path, demo_frame):
    """`suqiu train` on two thirds of the demo corpus, `suqiu evaluate` on the rest: whole
    near-duplicate groups held out, so the figures are of appeals the model never saw (the
    demo corpus is templated: on its own training rows any memoriser scores ~1)."""
    from sklearn.metrics import f1_score

    from corpora.records import appeal_texts
    from models.registry import load_bundle
    from training.split import grouped_folds, near_duplicate_groups

    texts = appeal_texts(demo_frame)
    groups = np.asarray(near_duplicate_groups(texts))
    train, test = grouped_folds(demo_frame["category"].to_numpy(dtype=object), groups, n_splits=3, random_state=0)[0]
    assert not set(groups[train]) & set(groups[test])
    cols = ["id", "time", "title", "text", "district", "channel", "category", "urgency"]
    demo_frame.iloc[train][cols].to_csv(tmp_path / "train.csv", index=False)
    held = demo_frame.iloc[test].reset_index(drop=True)
    held[cols].to_csv(tmp_path / "test.csv", index=False)
    assert set(held["urgency"]) == {"critical", "urgent", "routine"}

    out = tmp_path / "m"
    assert main(["train", "--data", str(tmp_path / "train.csv"), "--out", str(out), "--no-eval"]) == 0
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["models"] == ["category", "training_rows", "urgency"]
    rows = load_bundle(out).models["training_rows"]  # what retraining may not hold out against this model
    from training.retrain import row_keys

    assert np.isin(row_keys(appeal_texts(demo_frame.iloc[train])), rows["category"]).all()
    assert not np.isin(row_keys(appeal_texts(demo_frame.iloc[test])), rows["category"]).any()
    assert 0 < len(rows["urgency"]) <= len(rows["category"])
    report = tmp_path / "r.json"
    assert main(["evaluate", "--model", str(out), "--data", str(tmp_path / "test.csv"), "--report", str(report)]) == 0
    r = json.loads(report.read_text(encoding="utf-8"))
    assert r["n"] == len(held) and r["model_version"] == manifest["version"]

    # the reported category macro-F1 is that of the bundle's own predictions on the held-out rows
    y = held["category"].to_numpy(dtype=object)
    labels = sorted(set(demo_frame["category"]))
    pred = load_bundle(out).models["category"].predict(appeal_texts(held))
    assert r["category"]["macro_f1"] == round(f1_score(y, pred, labels=labels, average="macro", zero_division=0), 4)
    assert r["category"]["per_class"][labels[0]]["support"] == int((y == labels[0]).sum())
    # far above predicting the training rows' majority category for every appeal
    majority = demo_frame.iloc[train]["category"].mode()[0]
    majority_f1 = f1_score(y, [majority] * len(y), labels=labels, average="macro", zero_division=0)
    assert r["category"]["macro_f1"] > majority_f1 + 0.3, (r["category"]["macro_f1"], majority_f1)

    # urgency: above the keyword baseline on the same held-out rows, and far above all-routine
    u = r["urgency"]
    assert set(u["model"]["per_class"]) == {"critical", "urgent", "routine"}
    assert u["model"]["per_class"]["critical"]["support"] == int((held["urgency"] == "critical").sum())
    assert u["model"]["macro_f1"] > u["keyword_baseline"]["macro_f1"]
    routine_f1 = f1_score(held["urgency"], ["routine"] * len(held), labels=["critical", "urgent", "routine"],
                          average="macro", zero_division=0)
    assert u["model"]["macro_f1"] > routine_f1 + 0.3
    assert r["summary"]["urgency_alert_recall"] == u["model"]["critical_alert"]["recall"]
    assert r["summary"]["category_macro_f1"] == r["category"]["macro_f1"]


@pytest.mark.parametrize("content, message", [
    (None, "no such file"),
    (b"\x00\x01binary\x00" * 50, "binary"),
    ("title,body\n标题,内容\n", "no 'text' column"),
    ("id,text\n1,\n2,正常\n", "row 1, field 'text': text is empty"),
    ("id,text\n1," + "长" * 1_048_576 + "\n", "maximum is 20,000"),
    (b"text\n\xff\xfe\xfa\xfb\n", "cannot decode"),
])
def test_bad_input_is_refused_clearly(model_dir, tmp_path, content, message):
    src = tmp_path / "bad.csv"
    if content is not None:
        src.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    r = run("classify", "--model", model_dir, "--input", str(src), "--output", str(tmp_path / "o.jsonl"))
    assert r.returncode == 3
    assert message in r.stderr
    assert "Traceback" not in r.stderr


def test_gbk_input_is_read(model_dir, tmp_path):
    src = tmp_path / "gbk.csv"
    src.write_bytes("id,text\n1,小区暖气不热已经三天\n".encode("gbk"))
    out = tmp_path / "o.jsonl"
    assert main(["classify", "--model", model_dir, "--input", str(src), "--output", str(out), "-q"]) == 0
    assert json.loads(out.read_text(encoding="utf-8"))["category"] == "城乡建设"


def test_skip_invalid_reports_rows_in_place(model_dir, tmp_path):
    src = tmp_path / "mixed.csv"
    src.write_text("id,text\n1,停水三天了\n2,\n3,景区门票太贵\n", encoding="utf-8")
    out = tmp_path / "o.jsonl"
    assert main(["classify", "--model", model_dir, "--input", str(src), "--output", str(out), "-q",
                 "--skip-invalid"]) == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r.get("id") for r in rows] == ["1", None, "3"]
    assert rows[1]["error"] == "row 2, field 'text': text is empty"


def test_unknown_category_is_refused_at_training(tmp_path):
    src = tmp_path / "t.csv"
    src.write_text("text,category\n" + "暖气不热,城乡建设\n" * 6 + "外星人入侵,星际事务\n", encoding="utf-8")
    r = run("train", "--data", str(src), "--out", str(tmp_path / "m"), "--no-eval")
    assert r.returncode == 3
    assert "unknown category labels: '星际事务' at records [7]" in r.stderr


def test_missing_model_is_refused(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("text\n暖气不热\n", encoding="utf-8")
    r = run("classify", "--model", str(tmp_path), "--input", str(src), "--output", str(tmp_path / "o.jsonl"))
    assert r.returncode == 3 and "no manifest.json" in r.stderr


def test_parallel_tagging_matches_one_process(model_dir, tmp_path, demo_frame):
    src = tmp_path / "many.csv"
    demo_frame[["id", "time", "title", "text"]].head(40).to_csv(src, index=False)
    outs = []
    for jobs in ("1", "2"):
        out = tmp_path / f"o{jobs}.jsonl"
        assert main(["classify", "--model", model_dir, "--input", str(src), "--output", str(out), "-q",
                     "--jobs", jobs, "--batch-size", "5"]) == 0
        outs.append(out.read_text(encoding="utf-8"))
    assert outs[0] == outs[1]
    assert [json.loads(x)["id"] for x in outs[0].splitlines()] == demo_frame["id"].head(40).tolist()


def test_bench_reports_every_figure(demo_bundle, tmp_path):
    """`suqiu bench` runs end to end (figures only: no speed is asserted)."""
    from training.bench import run_bench

    rep = run_bench(model_dir=demo_bundle.path, n=120, single=10, out=tmp_path / "bench.json")
    assert set(rep["batch_appeals_per_second"]) == {"one_process", f"{os.cpu_count() or 1}_processes"}
    assert all(v > 0 for v in rep["batch_appeals_per_second"].values())
    assert rep["worker_startup_seconds"] > 0 and rep["single_latency_ms"]["n"] == 10
    assert json.loads((tmp_path / "bench.json").read_text(encoding="utf-8")) == rep


@pytest.mark.parametrize("name, value, message", [("SUQIU_GROUP_LINGER_MS", "-1", "greater than or equal to 0"),
                                                   ("SUQIU_MAX_BATCH", "many", "valid integer")])
def test_a_bad_setting_is_named(monkeypatch, tmp_path, capsys, name, value, message):
    monkeypatch.setenv("SUQIU_DATABASE_URL", f"sqlite:///{tmp_path / 's.db'}")
    monkeypatch.setenv(name, value)
    assert main(["db", "upgrade"]) == 3
    err = capsys.readouterr().err
    assert f"setting {name}='{value}'" in err and message in err
