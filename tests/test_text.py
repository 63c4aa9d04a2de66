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
