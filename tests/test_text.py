import pytest

from corpora.text import join_title, normalise, redact, tokenize


@pytest.mark.parametrize("raw, expected", [
    ("樓道裡有煤氣味", "楼道里有煤气味"),                       # traditional → simplified
    ("ＡＢＣ１２３　测试", "ABC123 测试"),                      # full-width → half-width
    ("<p>小区<br/>暖气</p>不热&nbsp;", "小区 暖气 不热"),         # HTML remnants
    ("第一行_x000D_第二行", "第一行 第二行"),                    # Excel-escaped CR
    ("见链接[a]href=[$YingHao$]https://x.cn/_x000D_", "见链接"),
    ("a\x00b\x07c\u200bd", "abcd"),                             # control / zero-width chars
    ("  多个   空格\n\t换行 ", "多个 空格 换行"),
    (None, ""),
    ("暖气不热😡", "暖气不热😡"),                                  # emoji kept
])
def test_normalise(raw, expected):
    assert normalise(raw) == expected


def test_normalise_is_idempotent():
    s = "樓道裡有煤氣味<br>ＡＢＣ１２３&amp;"
    assert normalise(normalise(s)) == normalise(s)


@pytest.mark.parametrize("title, text, expected", [
    ("暖气不热", "暖气不热，家里冷。", "暖气不热,家里冷。"),
    ("暖气不热", "家里冷。", "暖气不热。家里冷。"),
    (None, "家里冷。", "家里冷。"),
    ("暖气不热", "", "暖气不热"),
    ("暖氣不熱", "家裡冷", "暖气不热。家里冷"),
])
def test_join_title(title, text, expected):
    assert join_title(title, text) == expected


@pytest.mark.parametrize("raw, expected", [
    ("我的电话13812345678谢谢", "我的电话[手机号]谢谢"),
    ("手机 138-1234-5678", "手机 [手机号]"),
    ("+86 13912345678", "[手机号]"),
    ("座机0731-84567890", "座机[电话]"),
    ("身份证号430102199001011234", "身份证号[身份证号]"),
    ("身份证43010219900101123X", "身份证[身份证号]"),
    ("卡号6222021234567890123", "卡号[银行卡号]"),
    ("卡号6222 0212 3456 7890", "卡号[银行卡号]"),
    ("邮箱zhang.san@example.com", "邮箱[邮箱]"),
    ("车牌湘A12345被刮", "车牌[车牌号]被刮"),
    ("新能源车牌粤B·D12345", "新能源车牌[车牌号]"),
    ("住在5栋2单元301室", "住在[门牌号]"),
    ("住12-3-401室", "住[门牌号]"),
    ("2019年有3000人", "2019年有3000人"),                      # years and counts are not PII
    ("工资拖欠了15000元", "工资拖欠了15000元"),
])
def test_redact(raw, expected):
    assert redact(raw) == expected


def test_tokenize_uses_domain_dictionary():
    toks = tokenize("小区物业不管暖气，网约车绕路，公积金提取")
    for word in ("小区", "物业", "暖气", "网约车", "公积金"):
        assert word in toks
    assert "，" not in toks and "," not in toks


def test_join_title_drops_a_title_the_text_already_says_anywhere():
    # Not at the start, and past the first len(title) + 10 characters: still not repeated.
    text = "家里冷了好几天，找过物业也没有用，总之一句话：暖气不热。"
    assert join_title("暖气不热", text) == normalise(text)


# --- strip_control ------------------------------------------------------------------

def test_strip_control_keeps_none_and_line_breaks():
    from corpora.text import strip_control

    assert strip_control(None) is None
    assert strip_control("a\x00b\tc\r\nd\x7f") == "ab\tc\r\nd"


# --- redact: full-width input ---------------------------------------------------------

def test_redact_full_width_text_keeps_what_lies_between_matches():
    raw = "手机１３８１２３４５６７８，备用１３９１２３４５６７８，谢谢"
    assert redact(raw) == "手机[手机号]，备用[手机号]，谢谢"


def test_redact_placeholder_replaces_every_match_in_full_width_text_too():
    assert redact("手机１３８１２３４５６７８，住３栋", placeholder=" ") == "手机 ，住 "
    assert redact("手机13812345678，住3栋", placeholder=" ") == "手机 ，住 "


# --- tokenize ---------------------------------------------------------------------------

def test_tokenize_keeps_words_made_of_letters_digits_and_symbols():
    assert "PM2.5" in tokenize("空气PM2.5超标")


@pytest.mark.parametrize("text, word", [("楼道燃气泄漏", "燃气泄漏"), ("办理不动产证", "不动产证")])
def test_tokenize_keeps_domain_words_jieba_alone_would_split(text, word):
    # jieba's own dictionary cuts these into 燃气/泄漏 and 不动产/证; corpora/data/userdict.txt joins them.
    assert word in tokenize(text)


def _fresh_tokenizer(monkeypatch, tmp_path, userdict: str):
    import corpora.text as t

    (tmp_path / "userdict.txt").write_text(userdict, encoding="utf-8")
    monkeypatch.setattr(t, "DATA_DIR", tmp_path)
    monkeypatch.setattr(t, "_TOKENIZER", None)
    return t._tokenizer()


def test_userdict_words_after_a_blank_line_are_loaded(monkeypatch, tmp_path):
    tok = _fresh_tokenizer(monkeypatch, tmp_path, "暖气 2000 n\n\n燃气泄漏 800 n\n")
    assert "燃气泄漏" in tok.cut("楼道燃气泄漏")


def test_userdict_frequency_is_honoured(monkeypatch, tmp_path):
    # A high frequency makes an entry beat jieba's own split (办理 / 不动产 / 证).
    tok = _fresh_tokenizer(monkeypatch, tmp_path, "办理不动 100000 n\n")
    assert tok.cut("办理不动产证")[0] == "办理不动"


@pytest.mark.parametrize("line", ["燃气泄漏 n", "燃气泄漏 八百 n", "燃气泄漏 800 n extra"])
def test_a_malformed_userdict_line_is_refused_with_its_number(monkeypatch, tmp_path, line):
    with pytest.raises(ValueError, match=r"^userdict\.txt:3: expected 'word frequency tag', got '"):
        _fresh_tokenizer(monkeypatch, tmp_path, f"暖气 2000 n\n\n{line}\n")


# --- is_negated -------------------------------------------------------------------------

def test_negation_at_the_very_start_of_the_text_counts():
    from corpora.text import is_negated

    assert is_negated("没有燃气泄漏", 2)
    assert not is_negated("有燃气泄漏", 1)
