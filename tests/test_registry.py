import json

import numpy as np
import pytest

from models.registry import BundleError, load_bundle
from models.tagger import Tagger


def test_round_trip_gives_identical_predictions(demo_bundle, demo_frame):
    texts = demo_frame["text"].tolist()[:50]
    loaded = load_bundle(demo_bundle.path)
    a = demo_bundle.models["category"].predict_proba(texts)
    b = loaded.models["category"].predict_proba(texts)
    np.testing.assert_array_equal(a, b)
    assert loaded.manifest["labels"]["category"] == list(loaded.models["category"].classes_)
    assert set(loaded.manifest["files"]) == {"category.joblib", "training_rows.joblib", "urgency.joblib"}
    assert loaded.manifest["libraries"]["scikit-learn"]


def test_tampered_artifact_is_refused(demo_bundle, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(demo_bundle.path, copy)
    with open(copy / "category.joblib", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(BundleError, match="refusing to load a modified artifact"):
        load_bundle(copy)


def test_missing_manifest_and_unknown_format_are_refused(demo_bundle, tmp_path):
    import shutil

    with pytest.raises(BundleError, match="no manifest.json"):
        load_bundle(tmp_path)
    copy = tmp_path / "old"
    shutil.copytree(demo_bundle.path, copy)
    m = json.loads((copy / "manifest.json").read_text())
    m["format"] = 99
    (copy / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(BundleError, match="format 99"):
        load_bundle(copy)


def test_tagger_fields(demo_bundle):
    tags = Tagger(demo_bundle).tag(["北山区梧桐郡暖气不热已经三天了，家里有婴儿", "请问社保怎么转移"],
                                   received_at=["2025-12-01T08:00:00", None])
    assert [t["category"] for t in tags] == ["城乡建设", "劳动和社会保障"]
    t = tags[0]
    assert abs(sum(t["category_scores"].values()) - 1) < 1e-3
    assert t["department"] and t["topic"] == "冬季采暖"
    assert t["urgency"] in {"critical", "urgent"}
    assert t["deadlines"]["contact_by"] == "2025-12-01T09:00:00"
    assert "contact_by" not in tags[1]["deadlines"]
    assert any(c["cue"] == "停暖" for c in t["urgency_cues"])


# --- bundles of small stand-in models: the format itself ------------------------------------

def test_save_writes_a_manifest_of_what_it_saved(tmp_path):
    import hashlib
    import platform

    from models.registry import FORMAT_VERSION, save_bundle

    b = save_bundle(tmp_path / "b", {"urgency": {"w": [1, 2]}, "category": {"w": [3]}}, version="v7",
                    extra={"labels": {"category": ["甲", "乙"]}})
    m = json.loads((tmp_path / "b" / "manifest.json").read_text(encoding="utf-8"))
    assert m == b.manifest and b.version == "v7" and b.path == tmp_path / "b"
    assert m["format"] == FORMAT_VERSION and m["models"] == ["category", "urgency"]
    assert m["labels"] == {"category": ["甲", "乙"]}
    assert m["files"] == {f: hashlib.sha256((tmp_path / "b" / f).read_bytes()).hexdigest()
                          for f in ("urgency.joblib", "category.joblib")}
    assert m["libraries"]["python"] == platform.python_version() and m["libraries"]["numpy"]
    assert m["libraries"]["torch"] and m["libraries"]["transformers"]  # an encoder bundle says what it ran on
    assert "甲" in (tmp_path / "b" / "manifest.json").read_text(encoding="utf-8")  # readable, not \\u escapes
    loaded = load_bundle(tmp_path / "b")
    assert loaded.models == {"urgency": {"w": [1, 2]}, "category": {"w": [3]}} and loaded.version == "v7"


def test_an_unnamed_version_is_the_time_of_saving(tmp_path):
    import re
    from datetime import datetime, timezone

    from models.registry import save_bundle

    m = save_bundle(tmp_path, {"category": 1}).manifest
    assert re.fullmatch(r"\d{8}-\d{6}", m["version"])
    created = datetime.fromisoformat(m["created"])
    assert created.tzinfo is not None and abs((datetime.now(timezone.utc) - created).total_seconds()) < 60
    assert m["version"] == created.strftime("%Y%m%d-%H%M%S")


@pytest.mark.parametrize("name", ["Category", "1st", "cat-egory", "", "a b", "../x"])
def test_model_names_must_be_plain_identifiers(tmp_path, name):
    from models.registry import save_bundle

    with pytest.raises(ValueError, match="must be lower-case letters, digits and _"):
        save_bundle(tmp_path, {name: 1})


def test_a_broken_manifest_or_a_missing_artifact_is_refused(tmp_path):
    from models.registry import save_bundle

    save_bundle(tmp_path / "a", {"category": 1, "urgency": 2})
    (tmp_path / "a" / "urgency.joblib").unlink()
    with pytest.raises(BundleError, match="artifact urgency.joblib listed in the manifest is missing"):
        load_bundle(tmp_path / "a")
    (tmp_path / "a" / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(BundleError, match=r"manifest.json: not valid JSON \("):
        load_bundle(tmp_path / "a")


def test_sha256_of_a_file_larger_than_one_read(tmp_path):
    import hashlib

    from models.registry import sha256_file

    data = bytes(range(256)) * 9000  # 2.2 MiB: three reads of 1 MiB
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(tmp_path / "f") == hashlib.sha256(data).hexdigest()


def test_data_hash_sees_order_boundaries_and_labels():
    from models.registry import data_hash

    base = data_hash(["暖气", "社保"])
    assert base == data_hash(["暖气", "社保"])
    assert len({base, data_hash(["社保", "暖气"]), data_hash(["暖气社保"]), data_hash(["暖", "气社保"]),
                data_hash(["暖气", "社保"], ["甲", "乙"]), data_hash(["暖气", "社保"], ["乙", "甲"]),
                data_hash(["暖气", "社保"], ["甲乙", ""])}) == 7


def test_current_version_follows_the_pointer(tmp_path):
    from models.registry import current_version, set_current

    assert current_version(tmp_path) is None
    (tmp_path / "v1").mkdir()
    (tmp_path / "v2").mkdir()
    set_current(tmp_path / "v1", tmp_path)
    assert current_version(tmp_path) == tmp_path.resolve() / "v1"
    assert (tmp_path / "CURRENT").read_text(encoding="utf-8") == "v1\n"
    set_current(tmp_path / "v2", tmp_path)
    assert current_version(tmp_path).name == "v2" and not (tmp_path / "CURRENT.tmp").exists()
    (tmp_path / "CURRENT").write_text("gone\n", encoding="utf-8")
    assert current_version(tmp_path) is None  # names a directory that does not exist


def test_set_current_refuses_a_bundle_outside_the_registry(tmp_path):
    from models.registry import set_current

    (tmp_path / "reg").mkdir()
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(ValueError, match="is not inside the registry"):
        set_current(tmp_path / "elsewhere", tmp_path / "reg")
    assert not (tmp_path / "reg" / "CURRENT").exists()


def test_data_hash_of_a_fixed_input_never_changes():
    """Manifests of different versions are compared by this hash: its definition is fixed."""
    import hashlib

    from models.registry import data_hash

    raw = "暖气".encode() + b"\x1f" + "甲".encode() + b"\x1e" + "社保".encode() + b"\x1f" + "乙".encode() + b"\x1e"
    assert data_hash(["暖气", "社保"], ["甲", "乙"]) == hashlib.sha256(raw).hexdigest()


def test_a_bundle_is_saved_into_new_nested_directories_compressed(tmp_path):
    import pickle

    from models.registry import save_bundle

    model = {"weights": [0.5] * 20000}
    save_bundle(tmp_path / "registry" / "v1", {"category": model})
    saved = (tmp_path / "registry" / "v1" / "category.joblib").stat().st_size
    assert saved < len(pickle.dumps(model)) / 10
    assert load_bundle(tmp_path / "registry" / "v1").models["category"] == model


# --- the registry: statuses, history, promotion, rollback (ADR 0007) --------------------------

def _stand_in(reg, name, *, created=None, metrics=None):
    """A bundle of stand-in models in the registry ``reg`` (no training: the format is what counts)."""
    from models.registry import save_bundle

    extra = {"data": {"category": {"n": 3, "sha256": "ab" * 32}}, "metrics": metrics or {}}
    b = save_bundle(reg / name, {"category": {"w": name}}, version=name, extra=extra)
    if created:
        b.manifest["created"] = created
        (reg / name / "manifest.json").write_text(json.dumps(b.manifest), encoding="utf-8")
    return b


@pytest.fixture
def reg(tmp_path):
    reg = tmp_path / "reg"
    for i, name in enumerate(("a", "b", "c")):
        _stand_in(reg, name, created=f"2026-12-0{i + 1}T00:00:00+00:00")
    return reg


def _statuses(reg):
    from models.registry import list_versions

    return {v["version"]: v["status"] for v in list_versions(registry=reg)}


def test_a_new_registry_lists_candidates_newest_first(reg):
    from models.registry import list_versions

    (reg / "not-a-bundle").mkdir()  # no manifest: not a version
    (reg / ".hidden").mkdir()
    got = list_versions(registry=reg)
    assert [v["version"] for v in got] == ["c", "b", "a"]
    assert {v["status"] for v in got} == {"candidate"}
    v = got[0]
    assert v["created"] == "2026-12-03T00:00:00+00:00" and v["model_version"] == "c"
    assert v["path"] == str(reg / "c") and v["metrics"] == {}
    assert v["data"] == {"category": {"n": 3, "sha256": "ab" * 32}}
    assert v["by"] is v["reason"] is v["promoted_by"] is v["report"] is None
    assert list_versions(registry=reg.parent / "nowhere") == []


def test_promote_points_current_retires_the_champion_and_keeps_who(reg):
    from models.registry import current_version, history, promote

    first = promote("a", by="ops-li", reason="first model", registry=reg)
    assert first["version"] == "a" and first["status"] == "champion" and first["previous"] is None
    assert current_version(reg) == reg.resolve() / "a"
    second = promote("b", by="ops-wang", registry=reg)
    assert second["previous"] == "a" and current_version(reg).name == "b"
    assert _statuses(reg) == {"a": "retired", "b": "champion", "c": "candidate"}
    events = [(e["version"], e["status"], e["by"], e["reason"]) for e in history(registry=reg)]
    assert events == [("a", "champion", "ops-li", "first model"), ("a", "retired", "ops-wang", "replaced by b"),
                      ("b", "champion", "ops-wang", None)]
    lines = (reg / "HISTORY.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3 and all(json.loads(x)["at"].endswith("+00:00") for x in lines)


def test_rollback_goes_back_down_the_line_of_promotions(reg):
    from models.registry import NothingToRollBackError, current_version, list_versions, promote, rollback

    for name in ("a", "b", "c"):
        promote(name, by="admin", registry=reg)
    back = rollback(by="night-shift", registry=reg)
    assert back["version"] == "b" and back["previous"] == "c" and back["reason"] == "rolled back from c"
    assert current_version(reg).name == "b"
    c = next(v for v in list_versions(registry=reg) if v["version"] == "c")
    assert (c["status"], c["reason"], c["by"]) == ("retired", "rolled back", "night-shift")
    assert rollback(by="night-shift", registry=reg)["version"] == "a"
    assert _statuses(reg) == {"a": "champion", "b": "retired", "c": "retired"}
    with pytest.raises(NothingToRollBackError, match="the history records no champion before a"):
        rollback(by="night-shift", registry=reg)
    assert current_version(reg).name == "a"


def test_promoting_the_champion_again_keeps_what_rollback_returns_to(reg):
    from models.registry import promote, rollback

    promote("a", by="x", registry=reg)
    promote("b", by="x", registry=reg)
    again = promote("b", by="y", reason="rebuilt in place", registry=reg)
    assert again["previous"] == "a"
    assert rollback(by="y", registry=reg)["version"] == "a"


def test_a_bundle_that_fails_verification_is_never_promoted(reg):
    from models.registry import current_version, history, promote, rollback

    promote("a", by="x", registry=reg)
    with open(reg / "b" / "category.joblib", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(BundleError, match="refusing to load a modified artifact"):
        promote("b", by="x", registry=reg)
    assert current_version(reg).name == "a" and len(history(registry=reg)) == 1
    # and a rollback to a bundle tampered with since is refused alike
    promote("c", by="x", registry=reg)
    (reg / "a" / "category.joblib").write_bytes(b"junk")
    with pytest.raises(BundleError):
        rollback(by="x", registry=reg)
    assert current_version(reg).name == "c"


@pytest.mark.parametrize("version", ["zz", "../reg/a", "a/../b", "", ".lock", "CURRENT", "HISTORY.jsonl", None,
                                     "x" * 200])
def test_unknown_versions_are_refused(reg, version):
    from models.registry import UnknownVersionError, promote, record_status

    with pytest.raises(UnknownVersionError):
        promote(version, by="x", registry=reg)
    with pytest.raises(UnknownVersionError):
        record_status(version, "rejected", by="x", registry=reg)
    assert not (reg / "CURRENT").exists() and _statuses(reg) == dict.fromkeys("abc", "candidate")


def test_rollback_with_nothing_before_is_refused(reg):
    from models.registry import NothingToRollBackError, promote, rollback, set_current

    with pytest.raises(NothingToRollBackError, match="has no champion to roll back"):
        rollback(by="x", registry=reg)
    set_current(reg / "a", reg)  # made champion outside the history (an old `train --set-current`)
    with pytest.raises(NothingToRollBackError, match="no champion before a"):
        rollback(by="x", registry=reg)
    promote("b", by="x", registry=reg)  # ... which a promotion still records as what it replaced
    assert rollback(by="x", registry=reg)["version"] == "a"
    promote("c", by="x", registry=reg)
    import shutil

    shutil.rmtree(reg / "a")
    promote("b", by="x", registry=reg)
    assert rollback(by="x", registry=reg)["version"] == "c"
    with pytest.raises(NothingToRollBackError, match="the champion before c, a, is no longer in the registry"):
        rollback(by="x", registry=reg)


def test_record_status_and_its_refusals(reg):
    from models.registry import RegistryError, list_versions, promote, record_status

    report = {"challenger": "b", "challenger_metrics": {"macro_f1": 0.71}, "reason": "worse on 城乡建设"}
    event = record_status("b", "rejected", by="suqiu retrain", reason="gate: 城乡建设 dropped", report=report,
                          registry=reg)
    assert event["status"] == "rejected" and event["report"] == report
    record_status("c", "candidate", by="suqiu retrain", registry=reg)
    got = {v["version"]: v for v in list_versions(registry=reg)}
    assert got["b"]["status"] == "rejected" and got["b"]["reason"] == "gate: 城乡建设 dropped"
    assert got["b"]["metrics"] == {"macro_f1": 0.71} and got["b"]["report"] == report  # held-out, from the gate
    assert got["c"]["status"] == "candidate" and got["c"]["by"] == "suqiu retrain" and got["c"]["report"] is None
    with pytest.raises(RegistryError, match=r"unknown status 'archived'; allowed: \['champion', 'candidate', "):
        record_status("c", "archived", by="x", registry=reg)
    with pytest.raises(RegistryError, match="becomes champion by promote"):
        record_status("c", "champion", by="x", registry=reg)
    promote("a", by="x", registry=reg)
    with pytest.raises(RegistryError, match="a is the champion: promote another version or roll back first"):
        record_status("a", "retired", by="x", registry=reg)
    for by in ("", "  ", None):
        with pytest.raises(ValueError, match="by must name who acts"):
            record_status("c", "retired", by=by, registry=reg)
    # a rejected version can still be promoted by hand, and then shows who did it
    promote("b", by="ops-li", reason="reviewed by hand", registry=reg)
    b = next(v for v in list_versions(registry=reg) if v["version"] == "b")
    assert (b["status"], b["promoted_by"], b["reason"]) == ("champion", "ops-li", "reviewed by hand")


def test_metrics_are_the_bundles_cross_validated_headline(tmp_path):
    from models.registry import list_versions

    cv = {"cv": {"model": {"macro_f1": 0.9, "accuracy": 0.91, "per_class": {"x": {}}}},
          "urgency_cv": {"model": {"macro_f1": 0.6, "critical_recall": 0.8, "confusion_matrix": {}}}}
    _stand_in(tmp_path, "m", metrics=cv)
    assert list_versions(registry=tmp_path)[0]["metrics"] == {"macro_f1": 0.9, "accuracy": 0.91,
                                                              "urgency_macro_f1": 0.6, "critical_recall": 0.8}


def test_current_moved_outside_the_history_wins(reg):
    from models.registry import promote, set_current

    promote("a", by="x", registry=reg)
    set_current(reg / "c", reg)
    assert _statuses(reg) == {"a": "retired", "b": "candidate", "c": "champion"}


def test_a_torn_or_broken_history_line_is_skipped_and_never_joined(reg):
    from models.registry import history, promote, record_status

    promote("a", by="x", registry=reg)
    with open(reg / "HISTORY.jsonl", "a", encoding="utf-8") as fh:
        fh.write('[1, 2]\nnot json\n{"version": "b", "status": "rej')  # a writer died mid-line
    assert [e["version"] for e in history(registry=reg)] == ["a"]
    record_status("b", "rejected", by="x", registry=reg)
    assert [(e["version"], e["status"]) for e in history(registry=reg)] == [("a", "champion"), ("b", "rejected")]
    assert _statuses(reg)["b"] == "rejected"


_WRITER = """
import sys
from models.registry import record_status
reg, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(n):
    record_status(name, "candidate", by=f"w-{name}", reason=str(i), report={"pad": name * 60000}, registry=reg)
"""


def test_concurrent_writers_never_interleave(reg):
    """Four processes append 25 events of 60 kB each at once: every line is whole."""
    import subprocess
    import sys

    from models.registry import history

    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(reg), name, "25"]) for name in ("a", "b", "c", "a")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    lines = (reg / "HISTORY.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 100
    events = [json.loads(x) for x in lines]
    assert all(e["report"]["pad"] == e["version"] * 60000 and e["by"] == f"w-{e['version']}" for e in events)
    assert len(history(registry=reg)) == 100


def test_a_writer_waits_for_the_lock(reg):
    """While one process holds the registry's lock, another's promotion waits for it."""
    import subprocess
    import sys
    import time

    from models.registry import _locked, current_version

    code = "import sys; from models.registry import promote; promote('b', by='other', registry=sys.argv[1])"
    with _locked(reg):
        proc = subprocess.Popen([sys.executable, "-c", code, str(reg)])
        time.sleep(2.0)  # ample time to import, verify the bundle and promote, were it not blocked
        assert proc.poll() is None and current_version(reg) is None
    assert proc.wait(timeout=60) == 0
    assert current_version(reg).name == "b"


# --- the command line: `suqiu models`, and every command reads SUQIU_REGISTRY_DIR ---------------

def _cli(capsys, *args):
    from service.cli import main

    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_models_list_promote_rollback_on_the_command_line(reg, monkeypatch, capsys):
    monkeypatch.setenv("SUQIU_REGISTRY_DIR", str(reg))
    code, out, _ = _cli(capsys, "models", "promote", "a", "--by", "ops-li", "--reason", "first")
    assert code == 0 and json.loads(out)["version"] == "a"
    code, out, _ = _cli(capsys, "models", "promote", "b")
    event = json.loads(out)
    assert code == 0 and event["previous"] == "a" and event["by"]  # the login name by default
    code, out, _ = _cli(capsys, "models", "list")
    rows = [json.loads(x) for x in out.splitlines()]
    assert [(r["version"], r["status"]) for r in rows] == [("c", "candidate"), ("b", "champion"), ("a", "retired")]
    assert {"version", "status", "created", "metrics", "by", "reason"} <= set(rows[0])
    assert rows[2]["reason"] == "replaced by b" and rows[2]["promoted_by"] == "ops-li"
    code, out, _ = _cli(capsys, "models", "rollback", "--by", "night")
    assert code == 0 and json.loads(out)["version"] == "a"
    assert (reg / "CURRENT").read_text(encoding="utf-8").strip() == "a"


@pytest.mark.parametrize("args, message", [
    (("models", "promote", "nope"), "no model version 'nope' in the registry"),
    (("models", "promote", "../a"), "'../a' is not a model version"),
    (("models", "rollback"), "has no champion to roll back"),
])
def test_models_refusals_are_clear(reg, monkeypatch, capsys, args, message):
    monkeypatch.setenv("SUQIU_REGISTRY_DIR", str(reg))
    code, out, err = _cli(capsys, *args)
    assert code == 3 and out == "" and message in err
    assert not (reg / "CURRENT").exists()


def test_classify_and_ingest_without_model_read_the_settings(registry, monkeypatch, capsys, tmp_path):
    """No --model: SUQIU_MODEL_DIR if set, else the champion of SUQIU_REGISTRY_DIR (issue 16's bug)."""
    from sqlalchemy import select
    from sqlalchemy.orm import sessionmaker

    from models.registry import promote
    from service.db import Prediction, make_engine

    src = tmp_path / "in.csv"
    src.write_text("id,text\nx1,家里暖气不热已经三天了\n", encoding="utf-8")
    monkeypatch.setenv("SUQIU_REGISTRY_DIR", str(registry))
    monkeypatch.delenv("SUQIU_MODEL_DIR", raising=False)
    code, _, err = _cli(capsys, "classify", "--input", str(src), "--output", str(tmp_path / "o.jsonl"), "-q")
    assert code == 3 and f"the registry {registry} has no current version" in err
    promote("v2", by="t", registry=registry)

    def version_of_classify():
        assert _cli(capsys, "classify", "--input", str(src), "--output", str(tmp_path / "o.jsonl"), "-q")[0] == 0
        return json.loads((tmp_path / "o.jsonl").read_text(encoding="utf-8"))["model_version"]

    assert version_of_classify() == "v2"
    url = f"sqlite:///{tmp_path / 's.db'}"
    monkeypatch.setenv("SUQIU_DATABASE_URL", url)
    assert _cli(capsys, "ingest", "--input", str(src), "-q")[0] == 0
    monkeypatch.setenv("SUQIU_MODEL_DIR", str(registry / "v1"))  # set: it wins over the registry
    assert version_of_classify() == "v1"
    src.write_text("id,text\nx2,请问社保怎么转移\n", encoding="utf-8")
    assert _cli(capsys, "ingest", "--input", str(src), "-q")[0] == 0
    engine = make_engine(url)
    with sessionmaker(engine)() as s:
        got = dict(s.execute(select(Prediction.appeal_id, Prediction.model_version)).all())
    engine.dispose()
    assert got == {"x1": "v2", "x2": "v1"}


def test_train_set_current_uses_the_registry_of_the_settings(tmp_path, monkeypatch, capsys):
    """With SUQIU_REGISTRY_DIR set, `train --set-current` accepts an --out inside it (issue 16's
    bug: it checked the built-in models/registry) and records the promotion."""
    from models.registry import current_version, list_versions
    from tests.conftest import DEMO

    reg = tmp_path / "elsewhere" / "reg"
    monkeypatch.setenv("SUQIU_REGISTRY_DIR", str(reg))
    code, _, err = _cli(capsys, "train", "--data", str(DEMO), "--out", str(tmp_path / "outside"), "--no-eval",
                        "--set-current")
    assert code == 3 and f"--set-current needs --out inside the registry {reg.resolve()}" in err
    code, out, _ = _cli(capsys, "train", "--data", str(DEMO), "--out", str(reg / "m1"), "--no-eval", "--set-current")
    assert code == 0, out
    assert current_version(reg).name == "m1"
    (m1,) = list_versions(registry=reg)
    assert (m1["status"], m1["by"], m1["reason"]) == ("champion", "suqiu train", "suqiu train --set-current")


# --- what the files say: manifests, history lines, messages, order -----------------------------

def test_a_library_that_is_not_installed_is_recorded_as_null(tmp_path, monkeypatch):
    from models import registry

    monkeypatch.setattr(registry, "_LIBS", (*registry._LIBS, "no-such-library-suqiu"))
    m = registry.save_bundle(tmp_path, {"category": 1}).manifest
    assert m["libraries"]["no-such-library-suqiu"] is None and m["libraries"]["numpy"]
    on_disk = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))
    assert on_disk["libraries"]["no-such-library-suqiu"] is None


def test_the_manifest_is_written_one_key_per_line(tmp_path):
    from models.registry import save_bundle

    save_bundle(tmp_path, {"category": 1}, version="v1")
    lines = (tmp_path / "manifest.json").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "{" and '  "format": 3,' in lines and '  "version": "v1",' in lines


def test_a_loaded_bundle_knows_where_it_came_from_and_a_bare_manifest_loads_empty(tmp_path):
    from models.registry import save_bundle

    save_bundle(tmp_path / "b", {"category": {"w": 1}}, version="v1")
    assert load_bundle(tmp_path / "b").path == tmp_path / "b"
    (tmp_path / "bare").mkdir()
    (tmp_path / "bare" / "manifest.json").write_text(json.dumps({"format": 3, "version": "v0"}), encoding="utf-8")
    bare = load_bundle(tmp_path / "bare")
    assert bare.models == {} and bare.version == "v0" and bare.path == tmp_path / "bare"


def test_a_tampered_artifact_is_named_with_both_hashes(tmp_path):
    import hashlib

    from models.registry import save_bundle

    b = save_bundle(tmp_path, {"category": {"w": 1}})
    expected = b.manifest["files"]["category.joblib"]
    (tmp_path / "category.joblib").write_bytes(b"junk")
    with pytest.raises(BundleError) as err:
        load_bundle(tmp_path)
    actual = hashlib.sha256(b"junk").hexdigest()
    assert str(err.value) == (f"{tmp_path}: category.joblib has SHA-256 {actual[:12]}…, manifest says "
                              f"{expected[:12]}…; refusing to load a modified artifact.")


def test_history_is_readable_and_an_ordinary_file(reg):
    import os
    import stat

    from models.registry import promote, record_status

    old = os.umask(0o022)
    try:
        record_status("b", "rejected", by="质检组", reason="城乡建设下降", registry=reg)
        promote("a", by="x", registry=reg)
    finally:
        os.umask(old)
    text = (reg / "HISTORY.jsonl").read_text(encoding="utf-8")
    assert "质检组" in text and "城乡建设下降" in text  # not \\u escapes
    assert stat.S_IMODE((reg / "HISTORY.jsonl").stat().st_mode) == 0o644


def test_every_event_says_what_action_made_it(reg):
    from models.registry import history, promote, record_status, rollback

    record_status("c", "candidate", by="suqiu retrain", registry=reg)
    promote("a", by="ops", registry=reg)
    gate = {"challenger": "b", "verdict": "promote"}
    event = promote("b", by="ops", reason="gate passed", report=gate, registry=reg)
    assert event["report"] == gate
    back = rollback(by="night", registry=reg)
    assert (back["version"], back["status"], back["by"], back["action"]) == ("a", "champion", "night", "rollback")
    got = [(e["version"], e["status"], e["by"], e["action"], e.get("report")) for e in history(registry=reg)]
    assert got == [("c", "candidate", "suqiu retrain", "record", None),
                   ("a", "champion", "ops", "promote", None),
                   ("a", "retired", "ops", "promote", None),
                   ("b", "champion", "ops", "promote", gate),
                   ("b", "retired", "night", "rollback", None),
                   ("a", "champion", "night", "rollback", None)]


def test_record_status_refuses_champion_with_the_way_to_do_it(reg):
    from models.registry import RegistryError, record_status

    with pytest.raises(RegistryError) as err:
        record_status("c", "champion", by="x", registry=reg)
    assert str(err.value) == "a version becomes champion by promote(), which also points CURRENT at it"


def test_a_listed_version_says_when_it_last_changed_and_was_promoted(reg):
    from models.registry import history, list_versions, promote, record_status

    promote("a", by="ops-li", registry=reg)
    record_status("b", "rejected", by="gate", registry=reg)
    promote("c", by="ops-wang", registry=reg)
    events = history(registry=reg)
    got = {v["version"]: v for v in list_versions(registry=reg)}
    a_promoted, b_rejected, a_retired, c_promoted = events
    assert (got["a"]["at"], got["a"]["promoted_at"], got["a"]["promoted_by"]) == (
        a_retired["at"], a_promoted["at"], "ops-li")
    assert (got["b"]["at"], got["b"]["promoted_at"], got["b"]["promoted_by"]) == (b_rejected["at"], None, None)
    assert got["c"]["at"] == got["c"]["promoted_at"] == c_promoted["at"]


def test_versions_are_listed_by_creation_time_and_unreadable_manifests_last(tmp_path):
    from models.registry import list_versions

    for name, created in (("zeta", "2026-12-01T00:00:00+00:00"), ("alpha", "2026-12-03T00:00:00+00:00"),
                          ("mid", "2026-12-02T00:00:00+08:00")):
        _stand_in(tmp_path, name, created=created)
    _stand_in(tmp_path, "undated", created="not a date")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "manifest.json").write_text("{oops", encoding="utf-8")
    (tmp_path / "listed").mkdir()
    (tmp_path / "listed" / "manifest.json").write_text("[1, 2]", encoding="utf-8")
    got = list_versions(registry=tmp_path)
    # mid was created 2026-12-01T16:00Z: after zeta; the three without a readable time last, by name
    assert [v["version"] for v in got] == ["alpha", "mid", "zeta", "undated", "listed", "broken"]
    broken = next(v for v in got if v["version"] == "broken")
    assert (broken["status"], broken["created"], broken["metrics"], broken["data"]) == ("candidate", None, {}, {})
