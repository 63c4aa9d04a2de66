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
