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
    assert set(loaded.manifest["files"]) == {"category.joblib", "urgency.joblib"}
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
