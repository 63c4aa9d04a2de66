"""models/doc.py: one appeal's text, normalised, segmented and counted once."""
import numpy as np

from models.charngrams import ngram_keys
from models.doc import Doc, as_docs, word_bigrams


def test_word_bigrams_are_the_words_then_each_adjacent_pair():
    assert word_bigrams(["暖气", "不", "热"]) == ["暖气", "不", "热", "暖气_不", "不_热"]
    assert word_bigrams(["暖气"]) == ["暖气"] and word_bigrams([]) == []


def test_text_is_normalised_unless_it_already_is():
    assert Doc("樓道裡有煤氣味　ＡＢＣ").text == "楼道里有煤气味 ABC"
    assert Doc("樓道　ＡＢＣ", normalised=True).text == "樓道　ＡＢＣ"


def test_words_and_tokens_of_a_window_read_only_its_characters():
    d = Doc("小区物业不管暖气，家里很冷")
    assert d.tokens() == ["小区", "物业", "不管", "暖气", "家里", "很", "冷"]
    assert d.tokens(max_chars=4) == ["小区", "物业"]
    assert d.words(max_chars=6) == ["小区", "物业", "不管", "小区_物业", "物业_不管"]
    assert d.words(max_chars=100) == d.words() == word_bigrams(d.tokens())
    # the window and the whole text are kept apart: asking for one does not change the other
    assert d.tokens() == ["小区", "物业", "不管", "暖气", "家里", "很", "冷"]


def test_char_grams_are_sorted_unique_keys_with_counts():
    d = Doc("暖气暖气不热")
    keys, counts = d.char_grams((1, 2))
    ref_keys, ref_counts = np.unique(ngram_keys("暖气暖气不热", (1, 2)), return_counts=True)
    assert keys.tolist() == ref_keys.tolist() and counts.tolist() == ref_counts.tolist()
    assert int(counts[keys.tolist().index(ord("暖"))]) == 2
    k3, c3 = d.char_grams((1, 3), max_chars=2)  # 暖, 气, 暖气
    assert len(k3) == 3 and c3.tolist() == [1, 1, 1]
    assert d.char_grams((1, 1))[0].tolist() == sorted({ord(c) for c in "暖气不热"})
    full = d.char_grams()
    assert int(full[1].sum()) == 6 + 5 + 4  # uni-, bi- and trigrams of six characters


def test_computations_are_kept_for_the_next_model():
    d = Doc("小区物业不管暖气")
    assert d.tokens() is d.tokens() and d.words(4) is d.words(4)
    assert d.char_grams((1, 3))[0] is d.char_grams((1, 3))[0]


def test_as_docs_wraps_strings_and_passes_docs_through():
    d = Doc("暖气")
    out = as_docs([d, "樓道", 12345])
    assert out[0] is d
    assert [x.text for x in out] == ["暖气", "楼道", "12345"]
    assert all(isinstance(x, Doc) for x in out)


def test_a_window_that_covers_the_whole_text_is_computed_once(monkeypatch):
    # The category model reads the first MAX_CHARS characters, the urgency model the whole
    # text: for an appeal no longer than the window both are the same text, and a tag
    # segments it and counts its n-grams once, not once per model.
    import models.doc as doc_module
    from models.doc import MAX_CHARS

    calls = {"tokenize": 0, "ngram_keys": 0}

    def counted(name, fn):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(doc_module, "tokenize", counted("tokenize", doc_module.tokenize))
    monkeypatch.setattr(doc_module, "ngram_keys", counted("ngram_keys", doc_module.ngram_keys))
    d = Doc("小区物业不管暖气，家里很冷")
    n = len(d.text)
    assert d.words(max_chars=MAX_CHARS) == d.words() == d.words(max_chars=n)
    assert d.tokens(max_chars=n + 1) == d.tokens()
    assert calls["tokenize"] == 1
    assert d.char_grams((1, 3), max_chars=MAX_CHARS)[1].tolist() == d.char_grams((1, 3))[1].tolist()
    d.char_grams((1, 3), max_chars=n)
    assert calls["ngram_keys"] == 1
    # a window shorter than the text is its own computation
    assert d.tokens(max_chars=n - 1) == ["小区", "物业", "不管", "暖气", "家里", "很"]
    assert calls["tokenize"] == 2
