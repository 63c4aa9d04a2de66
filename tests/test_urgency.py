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
    # the Tagger loads the serving city's table with load_sla(city=...): point it at the file above
    # (a wrapper rather than new __defaults__, which mutmut's wrapper around load_sla would ignore)
    load = mu.load_sla
    monkeypatch.setattr(mu, "load_sla", lambda path=p, **kw: load(path, **kw))
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
    ({}, (_FX[:5], ["urgent"] * 4 + ["routine"]),
     "^each urgency level present needs at least 2 examples to choose thresholds$"),
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

@pytest.mark.parametrize("row, message", [
    ("积水,basic_need,medium,积水,", r"cues\.csv:3: level must be critical, urgent, up or down; got 'medium'"),
    ("积水,basic_need,urgent,积水(,", r"cues\.csv:3: '积水' has an invalid pattern"),  # a bad regex: file, line, cue
])
def test_a_bad_cue_row_is_refused_naming_its_file_and_line(tmp_path, row, message):
    from corpora.rules import RuleFileError

    p = tmp_path / "cues.csv"
    p.write_text(f"cue,kind,level,pattern,note\n火灾,hazard,critical,着火,\n{row}\n", encoding="utf-8")
    with pytest.raises(RuleFileError, match=message):
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
    # only a routine reason leads with the cues that point down; otherwise they come last
    assert _reason("urgent", [cue("过去事件", "down"), cue("当下", "up"), cue("停水", "urgent")]) == \
        "紧急：停水、当下、过去事件"
    assert _reason("critical", [cue("过去事件", "down"), cue("火灾", "critical")]) == "特急：火灾、过去事件"


# --- issue 13: behaviour the mutation run found unprotected ---------------------------------------

def test_cue_features_count_each_live_cue_and_each_kind_in_its_own_column():
    """log1p of the count of each live cue, then of each kind (CueLexicon.features): a cue found
    twice counts 2, two cues of one kind add up in the kind's column, and no other column moves."""
    from collections import Counter

    from corpora.text import normalise

    found = LEX.find(normalise("家里停水了，还停电了，楼道里有煤气味，又有煤气味"))
    # premise: two basic-need cues once each, the gas cue twice, nothing negated
    assert sorted((c["kind"], c["cue"]) for c in found) == [
        ("basic_need", "停水"), ("basic_need", "停电"), ("hazard", "燃气泄漏"), ("hazard", "燃气泄漏")]
    expected = Counter(f"{c['kind']}:{c['cue']}" for c in found) + Counter(f"kind:{c['kind']}" for c in found)
    row = LEX.features([found, []])
    got = {LEX.feature_names[j]: v for j, v in enumerate(row[0]) if v}
    assert got == pytest.approx({name: np.log1p(n) for name, n in expected.items()})
    assert got["hazard:燃气泄漏"] == pytest.approx(np.log(3)) and got["kind:basic_need"] == pytest.approx(np.log(3))
    assert not row[1].any()
    # a negated cue is skipped, and the cues after it still count
    found = LEX.find(normalise("经检查没有燃气泄漏，但是停水三天了"))
    assert [(c["cue"], c["negated"]) for c in found] == [("燃气泄漏", True), ("停水", False)]
    row = LEX.features([found])[0]
    assert {LEX.feature_names[j] for j in np.flatnonzero(row)} == {"basic_need:停水", "kind:basic_need"}
    assert len(LEX.feature_names) == len(LEX.cues) + len(LEX.kinds) == row.shape[0]
    assert LEX.feature_names[len(LEX.cues):] == [f"kind:{k}" for k in sorted({c.kind for c in LEX.cues})]


def test_a_pickled_lexicon_finds_the_same_cues():
    """Bundles pickle the lexicon with the model; the loaded one (rebuilt by __setstate__) finds
    and counts exactly what the original does."""
    from corpora.text import normalise

    restored = pickle.loads(pickle.dumps(LEX))
    assert [c.cue for c in restored.cues] == [c.cue for c in LEX.cues]
    for text in ("楼道里有很浓的煤气味", "经检查没有燃气泄漏", "已经停水三天了，老人没人照顾"):
        t = normalise(text)
        assert restored.find(t) == LEX.find(t) != []
        np.testing.assert_array_equal(restored.features([restored.find(t)]), LEX.features([LEX.find(t)]))


def test_a_small_cue_file_loads_as_written(tmp_path):
    """Each row becomes a Cue with the file's name, kind, level, pattern and note (the note
    column is optional), and find reports the row's name, kind and level with the match."""
    p = tmp_path / "cues.csv"
    p.write_text("cue,kind,level,pattern,note\n火灾,hazard,critical,着火|起火,fire\n停水,basic_need,urgent,停水,\n",
                 encoding="utf-8")
    lex = load_cues(p)
    assert [(c.cue, c.kind, c.level, c.pattern.pattern, c.note) for c in lex.cues] == [
        ("火灾", "hazard", "critical", "着火|起火", "fire"), ("停水", "basic_need", "urgent", "停水", "")]
    assert [(f["cue"], f["kind"], f["level"], f["match"]) for f in lex.find("小区起火了，还停水")] == [
        ("火灾", "hazard", "critical", "起火"), ("停水", "basic_need", "urgent", "停水")]
    bare = tmp_path / "bare.csv"
    bare.write_text("cue,kind,level,pattern\n火灾,hazard,critical,着火\n", encoding="utf-8")
    assert [(c.cue, c.note) for c in load_cues(bare).cues] == [("火灾", "")]


def _evidence_model(grams, coef):
    """A fitted model reduced to what ``evidence`` reads: n-gram keys, the critical head's
    weights (n-grams first, then the cue features) and the lexicon."""
    from functools import reduce
    from types import SimpleNamespace

    m = UrgencyModel()  # keys packed 21 bits a character (models.charngrams.ngram_keys)
    m.vectorizer_ = SimpleNamespace(keys_=np.array([reduce(lambda k, ch: (k << 21) | ord(ch), g, 0) for g in grams]))
    m.critical_head_ = SimpleNamespace(coef_=np.array([coef]))
    m.cues_ = LEX
    return m


def test_evidence_names_what_raised_the_critical_score_most():
    """UrgencyModel.evidence: the k (default 3) features with the largest positive contribution
    (value × weight), largest first; an n-gram inside a longer one shown is dropped; single
    characters only when nothing longer raised the score; a cue column is named by its cue."""
    from scipy.sparse import csr_matrix

    grams = ["很", "煤气味", "危险", "煤气", "气味", "楼道", "电梯", "路面", "急", " "]
    n_cues = len(LEX.feature_names)
    water = len(grams) + LEX.feature_names.index("basic_need:停水")
    m = _evidence_model(grams, [3.0, 2.0, 1.5, 1.0, 0.5, -1.0, 0.2, 0.1, 0.05, 5.0] + [0.0] * n_cues)

    def row(values):
        cols = sorted(values)
        return csr_matrix((np.array([values[c] for c in cols], float), (np.zeros(len(cols), int), cols)),
                          shape=(1, len(grams) + n_cues))

    every = {j: 1.0 for j in range(len(grams))}
    assert m.evidence(row(every)) == ["煤气味", "危险", "电梯"]          # 很: a single character; 煤气, 气味: inside 煤气味
    assert m.evidence(row(every), k=4) == ["煤气味", "危险", "电梯", "路面"]
    assert m.evidence(row(every), k=1) == ["煤气味"]
    # the value scales the weight: 路面 at 30 contributes 3 and comes first
    assert m.evidence(row({**every, 7: 30.0}))[0] == "路面"
    # a longer n-gram found after a shorter one it contains replaces it, and goes last
    m2 = _evidence_model(grams, [0.0, 1.0, 0.0, 2.0, 0.0, 0.0, 1.5, 0.0, 0.0, 0.0] + [0.0] * n_cues)
    assert m2.evidence(row(every)) == ["电梯", "煤气味"]
    # only what raises the score: nothing positive, nothing shown; single characters as a last resort
    assert m.evidence(row({5: 1.0})) == []
    assert m.evidence(row({0: 1.0, 5: 1.0})) == ["很"]
    assert m.evidence(row({0: 1.0, 8: 1.0, 9: 1.0})) == ["很", "急"]  # a blank n-gram names nothing
    # a cue feature is named by its cue (the first cue column sits right after the n-grams)
    m3 = _evidence_model(grams, [0.0] * len(grams) + [0.0] * n_cues)
    m3.critical_head_.coef_[0, water] = 2.0
    m3.critical_head_.coef_[0, len(grams)] = 1.0
    assert m3.evidence(row({water: 1.0, len(grams): 1.0, 1: 1.0})) == ["停水", LEX.cues[0].cue]
    # no critical head (trained without a critical appeal): no evidence
    m.critical_head_ = None
    assert m.evidence(row(every)) == []


def test_macro_f1_averages_the_levels_present_in_the_labels():
    """The level's thresholds maximise macro-F1 over the levels the labels hold (a level no
    appeal has does not count as an F1 of 0), as scikit-learn computes it over those labels."""
    from sklearn.metrics import f1_score

    from models.urgency import _macro_f1

    y = np.array(["urgent", "urgent", "routine", "routine", "routine"], dtype=object)
    for pred in (["critical", "urgent", "routine", "routine", "urgent"],
                 ["urgent", "urgent", "routine", "routine", "routine"],
                 ["routine", "routine", "urgent", "urgent", "urgent"],   # nothing right
                 ["critical"] * 5):
        pred = np.array(pred, dtype=object)
        assert _macro_f1(y, pred) == pytest.approx(f1_score(y, pred, labels=["urgent", "routine"], average="macro",
                                                            zero_division=0)), pred
    assert _macro_f1(y, np.array(["critical", "urgent", "routine", "routine", "urgent"], dtype=object)) == \
        pytest.approx((2 * 1 / (2 + 2) + 2 * 2 / (2 + 3)) / 2)  # urgent 1 of 2 right, 2 called; routine 2 of 3, 2 called


def test_a_score_that_reaches_a_threshold_takes_the_level():
    from models.urgency import _grade

    pc = np.array([0.5, 0.4999, 0.1, 0.1, 0.9])
    pu = np.array([0.9, 0.9, 0.3, 0.2999, 0.1])
    assert _grade(pc, pu, 0.5, 0.3).tolist() == ["critical", "urgent", "urgent", "routine", "critical"]


def test_level_thresholds_keep_the_first_pair_on_ties():
    """Every critical threshold in (0.3, 0.8] and urgent threshold in (0.2, 0.7] grades the set
    perfectly; the first pair of the grid (the lowest) is kept. Without a critical label, the
    critical threshold is inf: nothing is graded critical."""
    from models.urgency import level_thresholds

    y = np.array(["critical", "urgent", "routine", "routine", "urgent", "critical"], dtype=object)
    pc = np.array([0.9, 0.2, 0.1, 0.05, 0.3, 0.8])
    pu = np.array([0.95, 0.7, 0.2, 0.1, 0.8, 0.9])
    f1, tc, tu = level_thresholds(y, pc, pu)
    assert f1 == 1.0 and 0.3 < tc < 0.4 and 0.2 < tu < 0.3
    f1, tc, tu = level_thresholds(y[1:5], np.full(4, 0.6), pu[1:5])
    assert f1 == 1.0 and tc == np.inf and 0.2 < tu <= 0.7


def test_an_unknown_city_is_refused_naming_the_cities_known(tmp_path):
    p = tmp_path / "sla.csv"
    p.write_text("city,level,contact_hours,finish_hours,report_back_hours\n"
                 "default,critical,1,24,24\ndefault,urgent,1,72,24\ndefault,routine,24,360,24\n"
                 "北城,urgent,0.5,48,12\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"sla\.csv: no deadlines for city '南城'; known: \['default', '北城'\]$"):
        load_sla(p, city="南城")
    t = load_sla(p, city="北城")
    assert t.city == "北城" and t.deadlines("urgent")["city"] == "北城"
    assert {lev: (s.level, s.contact_hours, s.finish_hours, s.report_back_hours) for lev, s in t.rows.items()} == {
        "critical": ("critical", 1, 24, 24), "urgent": ("urgent", 0.5, 48, 12), "routine": ("routine", 24, 360, 24)}


@pytest.fixture(scope="module")
def small_model():
    return UrgencyModel(threshold_folds=3).fit(_FX, _FY)


def test_the_heads_are_class_weighted_with_the_given_c():
    """Both heads are class-weighted logistic regressions (docs/adr/0003-urgency-model.md): a
    rare critical class is not outvoted by the routine bulk."""
    m = UrgencyModel(threshold_folds=3, C=7.0).fit(_FX, _FY)
    assert m.critical_head_.class_weight == m.urgent_head_.class_weight == "balanced"
    assert m.critical_head_.C == m.urgent_head_.C == 7.0  # C: inverse regularisation of both heads


def test_max_features_and_max_chars_bound_what_the_n_grams_read():
    m = UrgencyModel(threshold_folds=3, max_features=25).fit(_FX, _FY)
    assert len(m.vectorizer_.keys_) == 25
    # the n-grams read the first 4 characters: two texts alike there (and without cues) score alike
    a, b = "建议增加公交线路", "建议增加绿化树木"
    assert LEX.find(a) == LEX.find(b)  # the same cue (建议), at the same place
    windowed = UrgencyModel(threshold_folds=3, max_chars=4).fit(_FX, _FY)
    pa, pb = windowed.predict_proba([a, b])
    np.testing.assert_array_equal(pa, pb)
    whole = UrgencyModel(threshold_folds=3).fit(_FX, _FY)
    pa, pb = whole.predict_proba([a, b])
    assert not np.array_equal(pa, pb)


def test_the_alert_fires_when_a_score_reaches_its_threshold_and_never_on_a_critical_grade(small_model):
    """possible_critical: not graded critical, and the critical score reaches alert_threshold_,
    or a live critical cue fires and the score reaches alert_cue_threshold_."""
    import copy

    texts = ["请问公交线路怎么调整，另外楼道里发现煤气味", "经检查没有燃气泄漏", "建议增加公交线路"]
    pc = small_model.predict_proba(texts)[:, 0]
    m = copy.deepcopy(small_model)
    m.critical_threshold_ = np.inf  # nothing graded critical

    def alert(score_t, cue_t):
        m.alert_threshold_, m.alert_cue_threshold_ = score_t, cue_t
        return [e["possible_critical"] for e in m.explain(texts)]

    up = lambda x: np.nextafter(x, np.inf)  # noqa: E731
    assert alert(np.inf, pc[0]) == [True, False, False]       # the live gas cue, its score just reached
    assert alert(np.inf, up(pc[0])) == [False, False, False]   # … just missed
    assert alert(np.inf, 0.0) == [True, False, False]         # the negated cue never opens the cue path
    assert alert(pc[2], np.inf) == [pc[0] >= pc[2], pc[1] >= pc[2], True]
    assert alert(up(pc[2]), np.inf)[2] is False
    # a critical grade is never also a possible critical
    m.critical_threshold_ = 0.0
    assert alert(0.0, 0.0) == [False, False, False]
    assert [e["urgency"] for e in m.explain(texts)] == ["critical"] * 3


def test_the_urgency_score_is_the_score_that_decided_the_level(small_model):
    """Critical: the critical score; otherwise the urgent-or-above score, the one compared with
    urgent_threshold_ (1 − the routine column of predict_proba)."""
    texts = ["家里有煤气味，很危险", "暖气不热已经三天", "建议增加公交线路", "停水两天了", "请问社保怎么转"]
    p = small_model.predict_proba(texts)
    out = small_model.explain(texts)
    assert {e["urgency"] for e in out} == {"critical", "urgent", "routine"}
    for e, (pc, _, routine) in zip(out, p):
        pu = 1 - routine
        if e["urgency"] == "critical":
            assert e["urgency_score"] == round(pc, 4)
        else:
            assert e["urgency_score"] == pytest.approx(round(pu, 4), abs=1e-12)
            assert (e["urgency"] == "urgent") == (pu >= small_model.urgent_threshold_ - 1e-12)


def test_a_critical_grade_without_a_critical_cue_names_the_model_evidence(small_model):
    import copy

    m = copy.deepcopy(small_model)
    m.critical_threshold_ = 0.0  # every appeal graded critical
    # n-grams of the critical training text (楼道, 很浓) without its gas cue, and the water cue
    (words, water, gas) = m.explain(["楼道里很浓，停水两天了", "停水两天了", "楼道里有很浓的煤气味"])
    assert words["urgency"] == water["urgency"] == gas["urgency"] == "critical"
    assert words["urgency_reason"].startswith("特急：模型依据「"), words["urgency_reason"]
    assert "很浓" in words["urgency_reason"] and words["urgency_reason"].endswith("；停水"), words["urgency_reason"]
    assert water["urgency_reason"] == "特急：停水"  # nothing in it raised the critical score: its cues
    assert gas["urgency_reason"].startswith("特急：燃气泄漏"), gas["urgency_reason"]


def test_cue_weight_scales_the_cue_block_and_zero_turns_it_off():
    """cue_weight scales the cue features beside the TF-IDF block; at 0 the cues add nothing,
    so texts alike in the characters the n-grams read (max_chars=8) score alike whatever
    their cues, while at 1 the live gas cue raises the critical score."""
    head = "请问公交线路怎么调整，另外"
    texts = [head + "楼道里发现煤气味", head + "经检查没有发现问题"]
    X, y = ["楼道里有很浓的煤气味", "暖气不热已经三天", "建议增加公交线路"] * 6, ["critical", "urgent", "routine"] * 6
    off = UrgencyModel(threshold_folds=3, max_chars=8, cue_weight=0.0).fit(X, y)
    np.testing.assert_allclose(*off.predict_proba(texts), rtol=0, atol=1e-12)
    on = UrgencyModel(threshold_folds=3, max_chars=8, cue_weight=1.0).fit(X, y)
    gas, plain = on.predict_proba(texts)[:, 0]
    assert gas > plain + 0.05


def test_a_small_training_set_keeps_n_grams_seen_once_and_a_large_one_drops_them():
    """Under 50 texts every n-gram counts (a small set has few to spare); from 50 texts on,
    an n-gram must occur in two of them to be kept."""
    def chars(m):
        return {chr(int(k)) for k in m.vectorizer_.keys_ if int(k) < (1 << 21)}

    small = ["楼道里有煤气味", "暖气不热已经三天", "建议增加公交线路", "小区着火了鑫", "停水两天了", "请问社保怎么转"] * 2
    m = UrgencyModel(threshold_folds=2).fit(small[:-1] + ["请问社保怎么办"], ["critical", "urgent", "routine"] * 4)
    assert {"鑫", "办"} <= chars(m)  # each in one text only
    large = [f"{t}{i}" for i in range(10) for t in small[:6]]  # 60 texts
    m = UrgencyModel(threshold_folds=2).fit(large[:-1] + ["请问社保怎么办"], ["critical", "urgent", "routine"] * 20)
    assert "鑫" in chars(m) and "办" not in chars(m)  # 鑫 in ten texts, 办 in one


def test_a_fold_whose_training_rows_hold_one_appeal_of_a_class_still_scores_it(monkeypatch):
    """A head is fitted whenever its training rows hold both of its classes, even one appeal
    of one: with two critical (or two urgent) appeals and two folds, each fold trains on one,
    and the out-of-fold scores the thresholds are chosen on are not left at 0."""
    import models.urgency as mu

    seen = []
    choose = mu.level_thresholds
    monkeypatch.setattr(mu, "level_thresholds", lambda y, pc, pu: seen.append((pc, pu)) or choose(y, pc, pu))
    routine = ["建议增加公交线路", "请问社保怎么转", "建议小区增设长椅", "请问户口怎么迁"]
    UrgencyModel(threshold_folds=2).fit(["楼道里有很浓的煤气味", "小区着火了浓烟很大"] + routine,
                                        ["critical"] * 2 + ["routine"] * 4)
    UrgencyModel(threshold_folds=2).fit(["暖气不热已经三天", "停水两天了"] + routine, ["urgent"] * 2 + ["routine"] * 4)
    (pc, pu), (pc2, pu2) = seen
    assert (pc > 0).all() and (pu > 0).all()
    assert (pc2 == 0).all() and (pu2 > 0).all()  # no critical appeal: no critical score


def test_choose_alert_may_set_the_cue_threshold_at_the_score_threshold():
    """The cue path may fire at a lower score than the score alone needs, or at the same one:
    here the only pair within budget that catches the critical row is score >= 0.9 with the
    cue path no lower (a cue at 0.5 would spend the budget on a row that is not critical)."""
    score = np.array([0.9, 0.5, 0.1, 0.05])
    crit = np.array([True, False, False, False])
    cue = np.array([False, True, False, False])
    none, draw = np.zeros(4, bool), np.ones(4, bool)
    tc, ts = choose_alert(score, crit, cue, none, draw, budget=0.25)
    fire = (cue & (score >= tc)) | (score >= ts)
    assert fire.tolist() == [True, False, False, False]
    assert tc <= ts
    # the budget is a share of the draw: a draw of one row and a budget of a half allow no alert on it
    draw = np.array([False, True, False, False])
    tc, ts = choose_alert(score, np.array([False, True, False, False]), cue, none, draw, budget=0.5)
    assert not ((cue & (score >= tc)) | (score >= ts))[1]


@pytest.mark.parametrize("budget", [0.6, 0.8])
def test_alert_oof_reports_what_the_chosen_point_does_on_the_out_of_fold_scores(monkeypatch, budget):
    """alert_oof_: recall on the critical rows and firing on the random draw, each with its
    95% Wilson interval, of the alert the stored thresholds give on the out-of-fold critical
    scores (captured as fit hands them to level_thresholds); a score that reaches a threshold
    fires; the cue path reads live critical cues only. At 0.6 the critical grade alone uses
    the budget (the alert adds nothing); at 0.8 the alert's thresholds come into play."""
    import models.urgency as mu
    from corpora.text import normalise

    seen = []
    choose = mu.level_thresholds
    monkeypatch.setattr(mu, "level_thresholds", lambda y, pc, pu: seen.append(pc) or choose(y, pc, pu))
    X = _FX + ["经检查没有燃气泄漏", "消防员说没有起火", "暖气不热", "建议增设长椅", "小区着火了", "请问户口怎么迁",
               "孩子放学后走失了", "老人摔倒在家没人管"]
    y = np.array(_FY + ["routine", "urgent", "urgent", "routine", "critical", "routine", "critical", "critical"],
                 dtype=object)
    sampling = np.array(["random", "critical-screen", "random", "random"] * 6 + ["random", "critical-screen"])
    m = UrgencyModel(threshold_folds=3, alert_budget=budget).fit(X, y, sampling=sampling)
    (pc,) = seen
    hazard = np.array([any(c["level"] == "critical" and not c["negated"] for c in LEX.find(normalise(t))) for t in X])
    fired = (pc >= m.critical_threshold_) | (hazard & (pc >= m.alert_cue_threshold_)) | (pc >= m.alert_threshold_)
    crit, draw = y == "critical", sampling == "random"
    assert m.alert_oof_ == {
        "recall": round(fired[crit].mean(), 4), "recall_ci95": mu.wilson(fired[crit].sum(), crit.sum()),
        "fires_on_draw": round(fired[draw].mean(), 4), "fires_on_draw_ci95": mu.wilson(fired[draw].sum(), draw.sum()),
        "draw": "random", "n_draw": 19, "n_critical": 9}
    assert m.alert_oof_["fires_on_draw"] <= budget
    if budget == 0.6:  # recall and firing not trivially 0 or 1 (the rounding is seen)
        assert 0 < m.alert_oof_["recall"] < 1 and 0 < m.alert_oof_["fires_on_draw"] < 1
    else:  # the alert's thresholds are scores it fires on
        assert np.isin(m.alert_threshold_, pc) or np.isin(m.alert_cue_threshold_, pc)


def test_fit_is_reproducible_for_a_given_random_state():
    a, b = (UrgencyModel(threshold_folds=3).fit(_FX, _FY) for _ in range(2))
    assert (a.critical_threshold_, a.urgent_threshold_, a.alert_threshold_, a.alert_cue_threshold_, a.alert_oof_) == \
        (b.critical_threshold_, b.urgent_threshold_, b.alert_threshold_, b.alert_cue_threshold_, b.alert_oof_)


def test_threshold_folds_are_capped_by_the_rarest_level():
    """threshold_folds=5 with two critical appeals: the out-of-fold scores come from 2 folds
    (each critical appeal held out once), not from 5 folds that some level cannot fill."""
    import warnings

    X = ["楼道里有很浓的煤气味", "小区着火了浓烟很大"] + ["暖气不热已经三天", "停水两天了", "电梯坏了三天"] * 2 + \
        ["建议增加公交线路", "请问社保怎么转", "建议增设长椅"] * 2
    y = ["critical"] * 2 + ["urgent"] * 6 + ["routine"] * 6
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scikit-learn warns when a class has fewer members than folds
        m = UrgencyModel(threshold_folds=5).fit(X, y)
    assert m.alert_oof_["n_critical"] == 2


def test_the_defaults_are_the_documented_operating_point():
    """The class docstring's defaults (C from the ablation, the 8% alert budget of ADR 0003)."""
    assert UrgencyModel().get_params() == {"C": 3.0, "cue_weight": 1.0, "alert_budget": 0.08, "max_features": 50_000,
                                           "max_chars": None, "threshold_folds": 5, "random_state": 0}
    given = UrgencyModel(max_features=7, random_state=3, max_chars=9).get_params()
    assert (given["max_features"], given["random_state"], given["max_chars"]) == (7, 3, 9)
