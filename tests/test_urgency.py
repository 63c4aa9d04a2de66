import pickle
import re

import numpy as np
import pytest

from models.urgency import LEVELS, UrgencyModel, choose_alert, load_cues, load_sla

LEX = load_cues()


def live(text, kind=None):
    from corpora.text import normalise

    return sorted({c["cue"] for c in LEX.find(normalise(text))
                   if not c["negated"] and (kind is None or c["kind"] == kind)})


@pytest.mark.parametrize("text, kind, expected", [
    ("楼道里有很浓的煤气味", "hazard", ["燃气泄漏"]),
    ("樓道裡有很濃的煤氣味", "hazard", ["燃气泄漏"]),            # traditional characters
    ("经检查没有燃气泄漏", "hazard", []),                          # negation
    ("并未发生火灾，只是烧烤冒烟", "hazard", ["火灾"]),            # 冒烟 is not negated
    ("围墙开裂随时可能倒塌", "hazard", ["倒塌"]),
    ("电梯突然下坠，有人被困在里面", "hazard", ["被困"]),
    ("孩子有自杀的念头", "hazard", ["自杀"]),
    ("八岁孩子放学后走失了", "hazard", ["走失"]),
    ("吃了食堂饭菜后多人上吐下泻", "hazard", ["中毒"]),
    ("暖气不热，室温只有十二度", "basic_need", ["停暖"]),
    ("已经停水三天了", "basic_need", ["停水"]),
    ("老板拖欠工资半年", "wages", ["欠薪"]),
    ("我们三十多名农民工", "group", ["群体"]),
    ("再不解决我们就去上访", "escalation", ["升级"]),
    ("今天早上又开始了", "time_now", ["当下"]),
    ("多年来一直如此，建议改造", "time_past", ["长期"]),
    ("独居老人没人照顾", "vulnerable", ["弱势"]),
    ("请问社保怎么转移", "hazard", []),
])
def test_cues(text, kind, expected):
    assert live(text, kind) == expected


def test_cue_spans_point_into_the_text():
    from corpora.text import normalise

    text = normalise("我家楼道有煤气味，今天特别重")
    for c in LEX.find(text):
        assert text[c["start"]:c["end"]] == c["match"]


def _every_pattern(text):
    """What CueLexicon.find returns when every cue's regex runs (no prefilter)."""
    from corpora.text import is_negated

    out = [{"cue": c.cue, "kind": c.kind, "level": c.level, "start": m.start(), "end": m.end(), "match": m.group(0),
            "negated": is_negated(text, m.start())} for c in LEX.cues for m in c.pattern.finditer(text)]
    return sorted(out, key=lambda d: (d["start"], d["end"]))


@pytest.mark.parametrize("source", ["demo", "tipdm", "urgency"])
def test_prefilter_finds_exactly_what_every_pattern_finds(source, demo_frame):
    from tests.conftest import TIPDM, URGENCY, need
    from corpora.records import appeal_texts, read_appeals
    from corpora.text import normalise

    frame = demo_frame if source == "demo" else read_appeals(need({"tipdm": TIPDM, "urgency": URGENCY}[source])).frame
    texts = [normalise(t) for t in appeal_texts(frame)]
    differ = [i for i, t in enumerate(texts) if LEX.find(t) != _every_pattern(t)]
    assert not differ, f"{len(differ)} of {len(texts)} texts differ, e.g. row {differ[0]}"
    assert sum(bool(LEX.find(t)) for t in texts) > len(texts) // 10  # the comparison saw cues fire


def test_cues_read_beyond_the_text_window():
    X = ["楼道里有很浓的煤气味", "暖气不热已经三天", "建议增加公交线路"] * 6
    m = UrgencyModel(threshold_folds=3, max_chars=8, alert_budget=1.0).fit(X, ["critical", "urgent", "routine"] * 6)
    tail = "请问公交线路怎么调整，" * 3 + "另外楼道里有煤气味"
    (out,) = m.explain([tail])
    assert any(c["cue"] == "燃气泄漏" and c["start"] > 8 for c in out["urgency_cues"])
    assert out["urgency"] == "critical" or out["possible_critical"]


def test_a_cue_pattern_the_prefilter_cannot_take_still_runs():
    from corpora.rules import PatternSet

    ps = PatternSet([re.compile("(?<!没)有煤气味"), re.compile("暖气")])  # look-behind: Vectorscan refuses it
    assert ps.candidates("楼道里有煤气味") == [0]
    assert ps.candidates("暖气不热") == [0, 1]
    assert pickle.loads(pickle.dumps(ps)).candidates("暖气不热") == [0, 1]


@pytest.mark.parametrize("level, received, contact, finish, report", [
    ("critical", "2025-01-06T09:00:00", "2025-01-06T10:00:00", "2025-01-07T09:00:00", "2025-01-08T09:00:00"),
    ("urgent", "2025-01-06T23:30:00", "2025-01-07T00:30:00", "2025-01-09T23:30:00", "2025-01-10T23:30:00"),
    ("routine", "2025-01-06T09:00:00", "2025-01-07T09:00:00", "2025-01-21T09:00:00", "2025-01-22T09:00:00"),
])
def test_deadlines_table(level, received, contact, finish, report):
    d = load_sla().deadlines(level, received)
    assert (d["contact_by"], d["finish_by"], d["report_back_by"]) == (contact, finish, report)


def test_sla_per_city(tmp_path):
    p = tmp_path / "sla.csv"
    p.write_text("city,level,contact_hours,finish_hours,report_back_hours\n"
                 "default,critical,1,24,24\ndefault,urgent,1,72,24\ndefault,routine,24,360,24\n"
                 "北城,urgent,0.5,48,12\n", encoding="utf-8")
    sla = load_sla(p, city="北城")
    assert sla.deadlines("urgent")["finish_within_hours"] == 48
    assert sla.deadlines("routine")["finish_within_hours"] == 360  # falls back to default
    with pytest.raises(ValueError, match="no deadlines for city"):
        load_sla(p, city="南城")


def test_alert_takes_the_most_critical_appeals_within_its_budget():
    rng = np.random.default_rng(0)
    score = rng.random(400)
    critical = rng.random(400) < score ** 4            # higher scores are critical more often
    cue = critical & (rng.random(400) < 0.5)            # cues find half of them, at any score
    draw = rng.random(400) < 0.5
    none = np.zeros(400, dtype=bool)
    for budget in (0.02, 0.08, 0.3):
        tc, ts = choose_alert(score, critical, cue, none, draw, budget)
        fire = (cue & (score >= tc)) | (score >= ts)
        assert fire[draw].sum() <= budget * draw.sum()
        # no single score threshold does better within the same budget
        for t in np.unique(score):
            alone = score >= t
            if alone[draw].sum() <= budget * draw.sum():
                assert alone[critical].sum() <= fire[critical].sum()
    wide = choose_alert(score, critical, cue, none, draw, 0.3)
    narrow = choose_alert(score, critical, cue, none, draw, 0.02)
    assert wide[1] <= narrow[1]
    # what the critical grade already fires on is spent from the budget
    graded = score > 0.9
    tc, ts = choose_alert(score, critical, cue, graded, draw, 0.15)
    fire = graded | (cue & (score >= tc)) | (score >= ts)
    assert fire[draw].sum() <= 0.15 * draw.sum()
    with pytest.raises(ValueError, match="budget"):
        choose_alert(score, critical, cue, none, draw, 0)


class OofFits:
    """Models fitted on the demo corpus at several alert budgets (each fitted once per module),
    with the out-of-fold scores ``fit`` chose their thresholds on, captured as ``fit`` passes
    them to the level's grading (``_grade``) and to :func:`choose_alert`."""

    def __init__(self, demo_frame):
        from corpora.records import appeal_texts

        self.texts = appeal_texts(demo_frame)
        self.y = demo_frame["urgency"].to_numpy(dtype=object)
        self.fits = {}

    def __call__(self, budget):
        if budget not in self.fits:
            import models.urgency as mu

            seen = {}
            grade, choose = mu._grade, mu.choose_alert

            def spy_grade(pc, pu, tc, tu):
                seen.setdefault("pc_pu", (pc.copy(), pu.copy()))
                return grade(pc, pu, tc, tu)

            def spy_choose(score, critical, cue, graded, in_draw, b):
                seen["alert"] = (score.copy(), cue.copy())
                return choose(score, critical, cue, graded, in_draw, b)

            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(mu, "_grade", spy_grade)
                mp.setattr(mu, "choose_alert", spy_choose)
                m = UrgencyModel(alert_budget=budget).fit(self.texts, self.y)
            pc, pu = seen["pc_pu"]
            assert np.array_equal(seen["alert"][0], pc)  # the alert is chosen on the same OOF scores
            self.fits[budget] = (m, pc, pu, seen["alert"][1])
        return self.fits[budget]


@pytest.fixture(scope="module")
def oof_fits(demo_frame):
    return OofFits(demo_frame)


def _oof_macro_f1(y, pc, pu, t_critical, t_up):
    from sklearn.metrics import f1_score

    pred = np.where(pc >= t_critical, "critical", np.where(pu >= t_up, "urgent", "routine"))
    return f1_score(y, pred, labels=list(LEVELS), average="macro", zero_division=0)


@pytest.mark.parametrize("budget", [0.16, 0.3])
def test_operating_point_is_honoured(oof_fits, budget):
    """The level and alert follow the stored thresholds exactly; out of fold, the level's
    thresholds beat the obvious alternatives, and the alert's figures are what its
    thresholds give on the out-of-fold scores, within its budget."""
    m, pc, pu, hazard = oof_fits(budget)
    texts, y = oof_fits.texts, oof_fits.y
    # consistency: grade and alert as the stored thresholds say (on the unrounded scores: the
    # reported critical_score is rounded to 4 decimals)
    scores = m.predict_proba(texts)[:, 0]
    for e, pc_i in zip(m.explain(texts), scores):
        assert e["critical_score"] == round(pc_i, 4)
        assert (e["urgency"] == "critical") == (pc_i >= m.critical_threshold_)
        live_hazard = any(c["level"] == "critical" and not c["negated"] for c in e["urgency_cues"])
        assert e["possible_critical"] == (e["urgency"] != "critical" and (
            pc_i >= m.alert_threshold_ or (live_hazard and pc_i >= m.alert_cue_threshold_)))
    # the out-of-fold macro-F1 is that of the stored thresholds (computed here by scikit-learn) …
    chosen = _oof_macro_f1(y, pc, pu, m.critical_threshold_, m.urgent_threshold_)
    assert chosen == pytest.approx(m.oof_macro_f1_, abs=1e-9)
    # … and no worse than alternatives: 0.5 / 0.5, thresholds matching each level's share of
    # the labels, and the chosen ones moved by a tenth of the scores' spread either way
    share_c, share_up = np.mean(y == "critical"), np.mean(y != "routine")
    alternatives = [(0.5, 0.5), (np.quantile(pc, 1 - share_c), np.quantile(pu, 1 - share_up))]
    for dc in (-0.1, 0, 0.1):
        for du in (-0.1, 0, 0.1):
            if dc or du:
                alternatives.append((np.quantile(pc, np.clip(np.mean(pc < m.critical_threshold_) + dc, 0, 1)),
                                     np.quantile(pu, np.clip(np.mean(pu < m.urgent_threshold_) + du, 0, 1))))
    for tc, tu in alternatives:
        alt = _oof_macro_f1(y, pc, pu, tc, tu)
        assert alt <= chosen + 1e-9, f"thresholds {tc:.4f}/{tu:.4f}: OOF macro-F1 {alt:.4f} > chosen {chosen:.4f}"
    default = _oof_macro_f1(y, pc, pu, 0.5, 0.5)
    assert chosen > default + 0.05, f"chosen {chosen:.4f} vs 0.5/0.5 {default:.4f}"
    # the alert's cue path reads live critical cues only (computed here from the lexicon)
    from corpora.text import normalise

    assert np.array_equal(hazard, [any(c["level"] == "critical" and not c["negated"] for c in LEX.find(normalise(t)))
                                   for t in texts])
    # its out-of-fold figures are what its thresholds give on the out-of-fold scores
    crit = y == "critical"
    fired = (pc >= m.critical_threshold_) | (hazard & (pc >= m.alert_cue_threshold_)) | (pc >= m.alert_threshold_)
    recall, fires = round(float(fired[crit].mean()), 4), round(float(fired.mean()), 4)
    assert (m.alert_oof_["recall"], m.alert_oof_["fires_on_draw"]) == (recall, fires)
    assert fires <= budget
    assert m.alert_oof_["n_critical"] == crit.sum() and m.alert_oof_["n_draw"] == len(y)
    assert m.alert_oof_["draw"] == "all"
    lo, hi = m.alert_oof_["recall_ci95"]
    assert lo <= m.alert_oof_["recall"] <= hi


def test_raising_the_budget_never_lowers_out_of_fold_recall(oof_fits):
    """A wider budget can only let the alert catch more critical appeals; the level's own
    thresholds do not move with it (critical stays rare)."""
    fits = [oof_fits(b) for b in (0.1, 0.16, 0.3)]
    recall = [m.alert_oof_["recall"] for m, *_ in fits]
    fires = [m.alert_oof_["fires_on_draw"] for m, *_ in fits]
    assert recall == sorted(recall) and recall[0] < recall[-1], recall
    assert fires == sorted(fires), fires
    for b, (m, pc, *_) in zip((0.1, 0.16, 0.3), fits):
        graded_share = np.mean(pc >= m.critical_threshold_)
        if graded_share > b:  # the critical grade alone is over budget: the alert adds nothing to it
            assert m.alert_threshold_ == m.alert_cue_threshold_ == np.inf
            assert m.alert_oof_["fires_on_draw"] == round(graded_share, 4)
        else:
            assert m.alert_oof_["fires_on_draw"] <= b
    assert len({(m.critical_threshold_, m.urgent_threshold_, m.oof_macro_f1_) for m, *_ in fits}) == 1
    # at each budget, no single score threshold within that budget catches more (brute force
    # over every out-of-fold score)
    for b, (m, pc, _, hazard) in zip((0.1, 0.16, 0.3), fits):
        crit = oof_fits.y == "critical"
        graded = pc >= m.critical_threshold_
        fired = graded | (hazard & (pc >= m.alert_cue_threshold_)) | (pc >= m.alert_threshold_)
        caught = int(fired[crit].sum())
        for t in np.unique(pc):
            alone = graded | (pc >= t)
            if alone.sum() <= b * len(pc):
                assert int(alone[crit].sum()) <= caught, f"budget {b}: score >= {t:.4f} alone catches more"


def test_a_wider_budget_catches_more_and_an_impossible_one_adds_nothing(demo_frame):
    from corpora.records import appeal_texts

    texts, y = appeal_texts(demo_frame), demo_frame["urgency"].to_numpy(dtype=object)
    narrow, wide = (UrgencyModel(alert_budget=b).fit(texts, y) for b in (0.15, 0.4))
    assert narrow.alert_oof_["fires_on_draw"] <= 0.15 < wide.alert_oof_["fires_on_draw"] <= 0.4
    assert narrow.alert_oof_["recall"] < wide.alert_oof_["recall"]
    # the demo corpus is 9% critical, so its critical grade alone fires on more than 5%:
    # the alert then adds nothing to the grade
    m = UrgencyModel(alert_budget=0.05).fit(texts, y)
    assert m.alert_threshold_ == m.alert_cue_threshold_ == np.inf
    assert not any(e["possible_critical"] for e in m.explain(texts))


def test_the_budget_is_measured_on_the_random_draw(demo_frame):
    from corpora.records import appeal_texts

    texts, y = appeal_texts(demo_frame), demo_frame["urgency"].to_numpy(dtype=object)
    sampling = np.where(np.arange(len(y)) % 3 == 0, "random", "critical-screen")
    m = UrgencyModel(alert_budget=0.1).fit(texts, y, sampling=sampling)
    assert m.alert_oof_["draw"] == "random" and m.alert_oof_["n_draw"] == (sampling == "random").sum()
    with pytest.raises(ValueError, match="sampling has"):
        UrgencyModel().fit(texts, y, sampling=sampling[:-1])


def test_bad_labels_are_refused():
    with pytest.raises(ValueError, match="unknown urgency labels"):
        UrgencyModel().fit(["a", "b"], ["critical", "very urgent"])
    assert LEVELS == ("critical", "urgent", "routine")


def test_serving_city_deadlines(demo_bundle, tmp_path, monkeypatch):
    import models.urgency as mu
    from models.tagger import Tagger

    p = tmp_path / "sla.csv"
    p.write_text("city,level,contact_hours,finish_hours,report_back_hours\n"
                 "default,critical,1,24,24\ndefault,urgent,1,72,24\ndefault,routine,24,360,24\n"
                 "北城,urgent,0.5,48,12\n北城,routine,0.5,48,12\n", encoding="utf-8")
    monkeypatch.setattr(mu, "DATA_DIR", tmp_path)
    monkeypatch.setattr(mu.load_sla, "__defaults__", (p,))
    tag = Tagger(demo_bundle, city="北城").tag(["暖气不热已经三天"], received_at=["2025-01-06T09:00:00"])[0]
    assert tag["deadlines"]["city"] == "北城"
    assert tag["deadlines"]["contact_by"] == "2025-01-06T09:30:00"
    # large batches on worker processes (forked: they see the table above) follow the same city
    from models.tagger import tag_in_processes

    texts = ["暖气不热已经三天", "路灯坏了", "小区噪音扰民", "停水一天了"]
    tags = tag_in_processes(demo_bundle.path, texts, ["2025-01-06T09:00:00"] * 4, n_jobs=2, chunk_size=2,
                            city="北城")
    assert [t["deadlines"]["city"] for t in tags] == ["北城"] * 4


def test_rule_files_with_an_unquoted_comma_are_refused(tmp_path):
    from corpora.topics import load_topics

    p = tmp_path / "cues.csv"
    p.write_text("cue,kind,level,pattern,note\n燃气,hazard,critical,液化气.{0,4}漏,gas\n", encoding="utf-8")
    with pytest.raises(ValueError, match="quote a field that contains a comma"):
        load_cues(p)
    t = tmp_path / "topics.csv"
    t.write_text("topic,category,level2,keywords,seasonal\n欠薪,劳动,劳动关系,拖欠.{0,4}工资,yes\n", encoding="utf-8")
    with pytest.raises(ValueError, match="quote a field"):
        load_topics(t)


@pytest.mark.parametrize("text, cue", [("液化气罐好像在漏", "燃气泄漏"), ("电梯突然死锁", "被困"),
                                       ("扬言要砍人", "暴力"), ("室温只有十度", "停暖")])
def test_patterns_with_counted_repeats(text, cue):
    assert cue in live(text)


def test_a_critical_grade_always_names_its_cue_or_the_model_evidence(demo_frame):
    from corpora.records import appeal_texts

    texts, y = appeal_texts(demo_frame), demo_frame["urgency"].to_numpy(dtype=object)
    m = UrgencyModel().fit(texts, y)
    lowered = UrgencyModel().fit(texts, y)
    scores = lowered.predict_proba(texts)[:, 0]
    lowered.critical_threshold_ = float(np.median(scores))  # half graded critical, many without a critical cue
    seen_evidence = 0
    for e in lowered.explain([t for t, sc in zip(texts, scores) if sc >= lowered.critical_threshold_]):
        assert e["urgency"] == "critical"
        assert "无风险线索" not in e["urgency_reason"], e["urgency_reason"]
        if not any(c["level"] == "critical" and not c["negated"] for c in e["urgency_cues"]):
            assert e["urgency_reason"].startswith("特急：模型依据「")
            seen_evidence += 1
    assert seen_evidence > 10
    (gas,) = m.explain(["楼道里有很浓的煤气味，现在很危险"])
    assert gas["urgency_reason"].startswith(("特急：燃气泄漏", "紧急：燃气泄漏"))


# --- fit: what it accepts and refuses ------------------------------------------------------------

_FX = ["楼道里有很浓的煤气味", "暖气不热已经三天", "建议增加公交线路", "小区着火了浓烟很大", "停水两天了", "请问社保怎么转"] * 3
_FY = ["critical", "urgent", "routine"] * 6


@pytest.mark.parametrize("kwargs, args, message", [
    ({"alert_budget": 0}, (_FX, _FY), r"^alert_budget must be in \(0, 1\], got 0$"),
    ({"alert_budget": 1.5}, (_FX, _FY), r"^alert_budget must be in \(0, 1\], got 1.5$"),
    ({}, (_FX[:-1], _FY), "^X has 17 texts but y has 18 labels$"),
    ({}, (_FX, _FY, ["random"] * 17), "^sampling has 17 entries but y has 18 labels$"),
    ({}, (_FX[:4], ["urgent"] * 4), r"^need at least 2 urgency levels to train, got \['urgent'\]$"),
    ({}, (_FX[:5], ["urgent"] * 4 + ["routine"]), "each urgency level present needs at least 2 examples"),
])
def test_fit_refuses_what_it_cannot_use(kwargs, args, message):
    with pytest.raises(ValueError, match=message):
        UrgencyModel(threshold_folds=3, **kwargs).fit(*args)


def test_two_levels_and_the_edges_of_the_budget_fit():
    X, y = ["暖气不热已经三天", "建议增加公交线路", "停水两天了", "请问社保怎么转"] * 3, ["urgent", "routine"] * 6
    m = UrgencyModel(threshold_folds=2, alert_budget=1.0).fit(X, y)
    assert m.critical_head_ is None and m.urgent_head_ is not None
    p = m.predict_proba(["暖气不热", "公交线路"])
    np.testing.assert_allclose(p.sum(1), 1.0)
    assert (p[:, 0] == 0).all()  # no critical head: no critical score
    # trained on no critical appeal, it grades none critical
    assert [e["urgency"] for e in m.explain(["暖气不热已经三天", "建议增加公交线路"])] == ["urgent", "routine"]
    assert m.alert_oof_["n_critical"] == 0 and m.alert_oof_["recall"] is None


def test_the_alert_budget_is_measured_on_the_random_rows_only():
    sampling = ["random", "targeted"] * 9
    m = UrgencyModel(threshold_folds=3).fit(_FX, _FY, sampling=sampling)
    assert m.alert_oof_["draw"] == "random" and m.alert_oof_["n_draw"] == 9
    m = UrgencyModel(threshold_folds=3).fit(_FX, _FY, sampling=["targeted"] * 18)  # no random rows: all
    assert m.alert_oof_["draw"] == "all" and m.alert_oof_["n_draw"] == 18


def test_predict_proba_columns_follow_the_levels():
    m = UrgencyModel(threshold_folds=3).fit(_FX, _FY)
    assert list(m.classes_) == list(LEVELS)
    p = m.predict_proba(["家里有煤气味，很危险", "请问公交线路怎么调整"])
    np.testing.assert_allclose(p.sum(1), 1.0)
    assert p[0].argmax() == 0 and p[1].argmax() == 2
    e = m.explain(["家里有煤气味，很危险"], received_at=["2025-01-06T09:00:00"])[0]
    assert e["urgency"] == "critical" and e["urgency_score"] == round(float(p[0, 0]), 4)
    assert e["critical_score"] == round(float(p[0, 0]), 4) and e["possible_critical"] is False
    assert e["deadlines"]["contact_by"] == "2025-01-06T10:00:00"


# --- rules files and helpers ------------------------------------------------------------------------

def test_a_cue_level_outside_the_allowed_ones_is_refused(tmp_path):
    from corpora.rules import RuleFileError

    p = tmp_path / "cues.csv"
    p.write_text("cue,kind,level,pattern,note\n火灾,hazard,critical,着火,\n积水,basic_need,medium,积水,\n",
                 encoding="utf-8")
    with pytest.raises(RuleFileError, match=r"cues\.csv:3: level must be critical, urgent, up or down; got 'medium'"):
        load_cues(p)


@pytest.mark.parametrize("rows, message", [
    ("default,critical,1,24,24\ndefault,urgent,1,72,24\ndefault,routine,24,360,24\n北城,low,1,1,1\n",
     r"sla\.csv:5: level must be one of \('critical', 'urgent', 'routine'\), got 'low'"),
    ("default,critical,1,24,24\ndefault,urgent,一,72,24\n", r"sla\.csv:3: hours must be numbers"),
    ("default,critical,1,24,24\ndefault,urgent,1,72,24\n", r"the 'default' city must define all levels"),
    ("北城,critical,1,24,24\n", r"the 'default' city must define all levels"),
])
def test_malformed_sla_files_are_refused(tmp_path, rows, message):
    from corpora.rules import RuleFileError  # noqa: F401  (a ValueError too)

    p = tmp_path / "sla.csv"
    p.write_text("city,level,contact_hours,finish_hours,report_back_hours\n" + rows, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_sla(p)


def test_deadlines_take_datetimes_and_name_the_city():
    from datetime import datetime, timedelta, timezone

    t = datetime(2025, 1, 6, 9, 0, tzinfo=timezone(timedelta(hours=8)))
    d = load_sla().deadlines("critical", t)
    assert d == {"city": "default", "contact_within_hours": 1.0, "finish_within_hours": 24.0,
                 "report_back_within_hours": 24.0, "contact_by": "2025-01-06T10:00:00+08:00",
                 "finish_by": "2025-01-07T09:00:00+08:00", "report_back_by": "2025-01-08T09:00:00+08:00"}
    assert set(load_sla().deadlines("routine")) == {"city", "contact_within_hours", "finish_within_hours",
                                                    "report_back_within_hours"}


def test_choose_alert_refuses_a_budget_outside_zero_one():
    z = np.zeros(3, bool)
    for budget in (0, -0.1, 1.01):
        with pytest.raises(ValueError, match="the alert budget must be in"):
            choose_alert(np.array([0.1, 0.2, 0.3]), z, z, z, ~z, budget)


def test_choose_alert_prefers_the_pair_that_fires_least_on_ties():
    score = np.array([0.9, 0.8, 0.2, 0.1])
    crit = np.array([True, False, False, False])
    none, draw = np.zeros(4, bool), np.ones(4, bool)
    # 0.9 alone catches the one critical row; lower thresholds catch no more and fire more
    assert choose_alert(score, crit, none, none, draw, budget=1.0)[1] == 0.9
    # the critical grade already fires on every row: nothing fits the budget
    assert choose_alert(score, crit, none, ~none, draw, budget=0.5) == (np.inf, np.inf)


def test_wilson_interval():
    from models.urgency import wilson

    assert wilson(0, 0) is None
    assert wilson(5, 10) == [0.2366, 0.7634]


def test_level_thresholds_grade_a_separable_set_perfectly():
    from models.urgency import level_thresholds

    y = np.array(["critical", "urgent", "routine", "routine", "urgent", "critical"], dtype=object)
    pc = np.array([0.9, 0.2, 0.1, 0.05, 0.3, 0.8])
    pu = np.array([0.95, 0.7, 0.2, 0.1, 0.8, 0.9])
    f1, tc, tu = level_thresholds(y, pc, pu)
    assert f1 == 1.0 and 0.3 < tc <= 0.8 and 0.2 < tu <= 0.7


def test_decode_ngram_of_every_length():
    from models.charngrams import ngram_keys
    from models.urgency import decode_ngram

    keys = ngram_keys("煤气味", (1, 3))
    assert [decode_ngram(int(k)) for k in keys] == ["煤", "气", "味", "煤气", "气味", "煤气味"]
    assert decode_ngram(0) == ""


def test_reasons():
    from models.urgency import _reason

    def cue(name, level, negated=False):
        return {"cue": name, "level": level, "negated": negated}

    assert _reason("urgent", []) == "紧急：无风险线索，依全文模型判断"
    assert _reason("urgent", [cue("当下", "up"), cue("停水", "urgent"), cue("停水", "urgent"),
                              cue("火灾", "critical", negated=True)]) == "紧急：停水、当下"
    assert _reason("urgent", [cue(c, "up") for c in "甲乙丙丁戊"]) == "紧急：甲、乙、丙、丁"
    assert _reason("critical", [cue("火灾", "critical"), cue("当下", "up")], lambda: ["冒烟"]) == "特急：火灾、当下"
    assert _reason("critical", [cue("当下", "up")], lambda: []) == "特急：当下"
    assert _reason("critical", [], lambda: ["困在电梯"]) == "特急：模型依据「困在电梯」"
    assert _reason("critical", [cue(c, "up") for c in "甲乙丙丁"], lambda: ["困"]) == "特急：模型依据「困」；甲、乙、丙"
    assert _reason("routine", [cue("过去事件", "down"), cue("当下", "up"), cue("火灾", "critical")]) == \
        "一般：过去事件、火灾、当下"
