"""Stream simulator: a multi-year daily appeal stream for a configurable city, with the
ground truth returned beside it (never inside it). Used to test and benchmark early
warning on streams that do not flatter the detector.

What is simulated
-----------------
* **Background appeals** per district: base rate × district weight × weekday × public
  holiday (make-up workdays count as workdays) × a slow trend, negative-binomial counts.
  Texts and their labelled categories are drawn from the real message-board corpus
  (``../shared/corpora/tipdm2020c/appeals_labelled_dev.csv``) when it is present, else from
  the shipped corpus (``corpora/data/demo_appeals.csv``, seasonal texts left out):
  ``CityConfig.background`` = ``"auto" | "real" | "shipped"``. Real texts bring real
  word-level noise (long-tail vocabulary, place tokens such as 「A3区」 or 「J8」). Texts
  are dealt like cards from a deck shuffled anew each pass, so a text comes back only
  once the deck is used up (about every 60 days at 80 a day, real corpus); 15% of the
  corpus is held out of the deck for the category surges.
* **Re-posters**: a share of background appeals (``repost_rate``) is posted again, same
  text, same sender, one to four more times over the following days. This is chance
  re-posting, not an issue. The ``user`` column exists only when ``senders`` is true;
  re-posts happen either way.
* **Seasons** (``kind="seasonal_onset"``, one truth entry per district per occurrence, so a
  topic may have several seasons a year; ``season`` names it, ``anchor`` names the holiday
  it is tied to): winter heating in northern cities (per-district onset 15 Nov ± 6 days:
  a surge for about two weeks, then an in-season level of ~3–4 a day from the third week,
  tapering by mid-March); summer heat and power cuts; year-end wage arrears rising
  towards Spring Festival (anchored on the lunar holiday); in southern cities the plum
  rain (mid-June to mid-July) and, on the coast, the typhoon season (August–September,
  starting at least three weeks after the plum rain ends),
  both driving 「内涝积水」; tourism in tourist districts at Spring Festival, Labour Day and
  National Day (the actual holiday dates from ``chinesecalendar``; a table of lunar new
  years beyond its range) and in the summer holidays.
* **Spikes** (``kind="spike"``): in-season incidents on top of an elevated level (one
  district's heating appeals ~3–4 → ~14–15 a day for a week about three weeks after the
  onset; a district power cut in the heat; typhoon landfalls), short sharp surges of one
  category in one district (3–5 days at 2.5–4 × the district's usual level of that
  category: small series, texts of that category from the background corpus; ``topic``
  is None), rainstorms (two days of flooding in one district) and one-off incidents
  (noise, air pollution, water or gas in one district for 3–5 days).
* **An emerging issue** (``kind="emerging"``): a new problem at one named place in one
  district (EV charging points at a 小区, cracks along a metro works, a new refuse
  transfer station, shared e-bikes blocking a road, a gym that closed with prepaid
  cards), which appears and grows; its texts are composed from varied sentences about
  that one matter, not one template.

The frame has only ``id, time, district, category, text`` (and ``user`` when
``senders``): nothing derived from the truth. The truth is a list of dicts: ``id, kind,
topic, category, district, start, end, ids`` and, where they apply, ``season``,
``anchor``, ``within`` (the season an in-season incident sits in), ``matter`` and
``place``. Each appeal belongs to at most one event; background appeals and re-posts to
none.

:func:`cities` returns a set of varied cities (north / south / coastal, volumes, district
counts, dispersion, with and without senders) to report figures as ranges.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path

import numpy as np

from corpora.holidays import day_kind, holiday_name
from corpora.text import DATA_DIR

__all__ = ["CityConfig", "simulate_stream", "cities", "holiday_run", "REAL_CORPUS", "SHIPPED_CORPUS"]

REPO_ROOT = Path(__file__).resolve().parents[1]
REAL_CORPUS = REPO_ROOT.parent / "shared" / "corpora" / "tipdm2020c" / "appeals_labelled_dev.csv"
SHIPPED_CORPUS = DATA_DIR / "demo_appeals.csv"

DEMO_DISTRICTS = ["东城区", "西城区", "南湖区", "北山区", "高新区", "临江县"]
_DEMO_DISTRICT_RE = re.compile("|".join(DEMO_DISTRICTS))
_DEFAULT_PER_DISTRICT = 65.0 / 6  # the per-district volume the seasonal levels are written for

ESTATES = ["幸福里小区", "锦绣花园", "滨江一号", "翠湖苑", "阳光新城", "金桂园", "和平小区", "书香门第",
           "东方名苑", "绿洲家园", "望江府", "丽景湾", "长青坊", "红星社区", "梧桐郡", "世纪华庭"]
ROADS = ["人民路", "解放大道", "建设北路", "滨河路", "中山东路", "学院路", "新华街", "迎宾大道", "工业园路"]
# Places of the emerging issue: names no other simulated appeal uses.
NEW_ESTATES = ["锦澜府小区", "云栖湾小区", "瑞景家园", "观澜苑小区", "桂香苑", "紫荆雅居", "春江悦府"]
NEW_ROADS = ["兴业路", "望海路", "长宁大道", "柳湾路", "青峰路", "金川大道"]
OPEN = ["尊敬的领导：", "您好！", "领导您好，", "", "", "", "尊敬的市长：", "各位领导好，", "我是{d}居民，"]
CLOSE = ["恳请相关部门尽快处理！", "希望领导重视，早日解决。", "请有关部门给个说法。", "谢谢！", "盼复。",
         "望尽快答复，谢谢。", "", ""]
_CN_DIGITS = "〇一二三四五六七八九"
DURATION = ["已经三天了", "从上周开始", "今天早上起", "这半个月来", "已经一个多星期", "最近几天", "这两天"]

# Event texts per topic: bodies with slots {d} district, {e} estate, {r} road, {n} a digit,
# {c} a Chinese digit, {dur} a duration and {h} the holiday (tourism). Each body names its
# topic (topics.csv); "<topic>/incident" bodies are for in-season incidents.
TEMPLATES = {
    "冬季采暖": [
        "{d}{e}{n}号楼暖气不热，{dur}，室内只有十四五度，老人孩子冻得睡不着，供热公司一直推脱。",
        "{d}{e}的暖气片摸着是凉的，打了好几次供热站电话，都说在排查，请督促尽快解决。",
        "{d}{e}今年供暖后室温一直不达标，家里开着电暖器还冷，请有关部门上门测温。",
        "{d}{e}{n}栋顶楼住户暖气不循环，物业说是管网问题要等供热公司，{dur}也不见人来。",
        "{d}{r}一带的老小区采暖效果很差，收了全额采暖费，室温却上不去。",
        "请问{d}{e}的暖气什么时候能热起来？{dur}家里室温十二度。",
    ],
    "冬季采暖/incident": [
        "{d}{r}供热管道爆裂，{e}等几个小区大面积停暖，{dur}，室外零下，家里冷得待不住。",
        "{d}{e}突然停暖，供热站说换热站设备坏了，{dur}还在抢修，老人已经冻感冒了。",
        "{d}{e}暖气片全凉了，听说是{r}的供热主管道在抢修，什么时候能恢复供暖？",
        "{d}{r}沿线小区停暖{dur}，供热公司电话打不通，请督促尽快恢复供热。",
    ],
    "高温停电": [
        "{d}{e}今天又停电了，连续高温三十八度，家里老人热得受不了，供电所电话打不通，请尽快恢复供电。",
        "这几天{d}{e}一到晚上就跳闸停电，空调用不了，孩子热得睡不着，请供电公司检修线路。",
        "{d}{e}夏天用电高峰经常停电，冰箱里的东西都坏了，希望电力部门增容改造。",
        "{d}{r}沿街商铺{dur}频繁断电，高温天生意没法做，请供电部门给个说法。",
        "{d}最近持续高温，{e}的变压器老化，一开空调就跳闸，请尽快更换。",
    ],
    "高温停电/incident": [
        "{d}{r}附近的变电站出故障，{e}等好几个小区大面积停电{n}个多小时了，高温天老人孩子受不了，请尽快抢修。",
        "{d}{e}从昨晚开始停电，供电所说是线路烧了，到现在还在抢修，家里热得待不住。",
        "{d}{r}一带整片断电，红绿灯都灭了，高温下商户冰柜里的东西全坏了。",
    ],
    "内涝积水": [
        "昨晚暴雨，{d}{e}地下车库积水有半米深，排水泵坏了，{n}辆车泡在水里，请尽快派人抽水。",
        "{d}{r}一下雨就积水，最深的地方到膝盖，行人和电动车都过不去，请市政部门疏通排水管网。",
        "{d}{e}一楼住户家里雨水倒灌，家具都泡了，小区排水设施太差，请有关部门解决。",
        "{d}{r}下穿隧道暴雨后积水严重，已经有车辆熄火被困，请设置警示并及时排水。",
        "这几天连续下雨，{d}{e}门口路面积水{dur}都没退，请城管部门处理。",
    ],
    "内涝积水/incident": [
        "台风过境，{d}{r}大面积积水，{e}地下室被淹，请尽快组织抽排。",
        "{d}{e}台风暴雨后内涝严重，一楼进水{c}十公分，物业的抽水泵不够用。",
        "台风带来的暴雨让{d}{r}变成了河，公交停运，{e}门口的积水一直退不下去。",
    ],
    "欠薪": [
        "我们{c}十多个农民工在{d}{r}的工地干了大半年，包工头拖欠工资一直不给，马上要过年了，请劳动监察帮我们讨薪！",
        "{d}一家公司{n}个月不发工资了，老板说年底一起结，现在联系不上，请人社部门尽快介入。",
        "{d}{e}项目的装修工人被拖欠工资{c}万多元，找了项目部几次都说开发商没给钱。",
        "年底了，{d}某物流公司不发工资，{c}十多名员工讨薪无门，请劳动监察大队处理。",
        "我在{d}{r}的餐馆打工，老板拖欠{n}个月工资后关门了，请帮忙追讨。",
    ],
    "景区管理": [
        "{h}到{d}的景区游玩，停车场全满，周边道路堵了两个小时，建议开通接驳车。",
        "{h}{d}景区门票比网上公布的贵了{c}十元，园中园还要另外收费，请文旅部门规范。",
        "{h}{d}的景点游客太多，排队{n}个小时才进去，景区也不限流，很不安全。",
        "{h}在{d}景区门口有导游拉客，把游客带去购物店强制购物，请查处。",
        "{h}{d}景区周边饭店宰客，游客投诉无门，希望加强管理。",
        "{h}带孩子去{d}的景区，厕所太少，游客服务中心没人，体验很差。",
    ],
    "噪音": [
        "{d}{r}的工地每天晚上十一点以后还在施工，打桩声非常大，附近{e}居民根本睡不着。",
        "{d}{e}旁边新开的酒吧噪音扰民，每晚闹到凌晨两三点，请执法部门管一管。",
        "{d}{r}夜间施工{dur}不停，渣土车进出轰鸣，请环保部门夜间执法。",
        "{d}{e}楼下商铺音响外放，噪声很大，老人心脏不好受不了。",
    ],
    "大气污染": [
        "{d}{e}附近的化工厂{dur}一到晚上就排放刺鼻气味的废气，很多居民喉咙痛。",
        "{d}{r}的搅拌站粉尘很大，窗台上每天一层灰，请生态环境局来检测。",
        "{d}{e}周边有人焚烧垃圾，浓烟和臭味飘进家里，请尽快查处。",
        "{d}{r}工地扬尘严重，不洒水降尘，路过的人都捂着鼻子。",
    ],
    "自来水供应": [
        "{d}{e}{dur}一直停水，自来水公司不提前通知，高层住户要下楼提水，请尽快恢复供水。",
        "{d}{e}的自来水发黄浑浊，烧开后有沉淀，请水务部门检测水质。",
        "{d}{r}附近水管爆裂，整片停水，请尽快抢修。",
        "{d}{e}水压太低，{n}楼以上用不了水，请供水公司解决。",
    ],
    "燃气供应": [
        "{d}{e}{n}栋楼道里有很浓的煤气味，怀疑燃气管道泄漏，请立即处理！",
        "{d}{e}天然气{dur}停气，燃气公司说在检修，做饭都成问题。",
        "{d}{r}施工挖断了燃气管道，周边几个小区停气，请尽快抢修。",
        "{d}{e}燃气表读数异常，燃气费比往月多了{c}倍，请燃气公司核查。",
    ],
}
HOLIDAY_PHRASE = {"Spring Festival": ["春节期间", "春节假期", "过年期间"], "Labour Day": ["五一假期", "五一期间"],
                  "National Day": ["国庆期间", "国庆黄金周", "国庆假期"], None: ["暑假期间", "暑假", "这个暑假"]}

# Emerging issues: one matter at one place; each text opens on the place and picks two or
# three of the facts ({p} the place, {n} / {c} a digit), then a request.
MATTERS = [
    {"matter": "电动车充电桩", "category": "城乡建设", "place": "estate",
     "open": ["{p}电动车充电桩的问题", "反映{p}充电桩的事", "关于{p}电动车充电难", "{p}业主反映充电桩"],
     "facts": ["小区去年装的{c}十个电动车充电桩坏了一大半", "充电桩扫码付了钱却充不进电，客服电话一直打不通",
               "充电桩运营商把收费从每度一元涨到两元多", "晚上下班回来充电要排队到半夜",
               "不少人只好从楼上飞线给电动车充电，很危险", "物业说充电桩归运营商管，运营商说场地归物业，互相推诿",
               "电动车充电口被人拔掉，车充了一夜还是充不满", "地下车库一辆电动车充电时冒烟，大家都很担心"],
     "ask": ["请相关部门督促运营商维修充电桩。", "希望街道协调增加充电桩。", "请查一查充电收费是否合规。",
             "请尽快解决业主电动车充电难的问题。"]},
    {"matter": "地铁施工房屋开裂", "category": "城乡建设", "place": "road",
     "open": ["{p}地铁站开工以来的问题", "反映{p}沿线房屋开裂", "关于{p}地铁施工", "{p}地铁站旁边的住户求助"],
     "facts": ["沿街老房子墙体出现很多裂缝", "我家客厅墙上的裂缝越来越宽，能塞进一枚硬币",
               "楼下路面下沉了十几公分，台阶都裂开了", "施工方来拍了照就走了，再也没人来过",
               "有的住户家里地砖拱起，门都关不上", "楼里{c}十多户人家都不敢住了", "裂缝是地铁围挡立起来以后才出现的"],
     "ask": ["请求对沿线房屋做安全鉴定。", "请地铁公司和住建部门给个说法。", "希望尽快派人检测房屋安全。"]},
    {"matter": "垃圾中转站选址", "category": "环境保护", "place": "estate",
     "open": ["{p}旁边新建的垃圾中转站", "反映{p}垃圾中转站", "关于{p}附近垃圾中转站选址"],
     "facts": ["中转站离住宅楼只有{c}十米", "每天凌晨垃圾车进出，渗滤液流到路上", "苍蝇蚊子特别多，窗户都不敢开",
               "中转站选址没有公示，也没有征求业主意见", "孩子上学每天要从中转站门口经过",
               "垃圾车排队堵住了小区大门", "晚上压缩设备轰隆隆响个不停"],
     "ask": ["请求中转站另行选址。", "请规划部门公开选址依据。", "希望有关部门到现场看一看。"]},
    {"matter": "共享电单车乱停", "category": "交通运输", "place": "road",
     "open": ["{p}共享电单车乱停", "反映{p}共享单车堆放", "关于{p}人行道上的共享电单车"],
     "facts": ["人行道上堆满了共享电单车", "盲道被共享单车占了，视障人士没法走",
               "早高峰共享电单车逆行很多，差点撞到孩子", "运维人员很少来清理，一堆就是好几天",
               "公交站台前停满共享车，乘客上下车要绕到机动车道", "倒在路边的共享电单车有{c}十多辆"],
     "ask": ["请督促共享单车企业清理。", "建议划定停放区。", "请交通部门管一管共享电单车投放。"]},
    {"matter": "健身馆关门预付卡", "category": "商贸旅游", "place": "road",
     "open": ["{p}的游泳健身馆突然关门", "反映{p}健身馆跑路", "关于{p}健身馆预付卡退款"],
     "facts": ["我们办的年卡还有{c}千元没用完", "门上贴了装修通知，但老板电话打不通", "会员群里已经有{c}百多人",
               "店里的器材都被搬走了", "关门前一周还在推销充值优惠", "私教课程的钱也退不了"],
     "ask": ["请市场监管部门追查预付卡退款。", "希望有关部门帮会员追回钱款。", "请公安部门介入调查。"]},
]

_FALLBACK_LUNAR_NEW_YEAR = {2027: "02-06", 2028: "01-26", 2029: "02-13", 2030: "02-03", 2031: "01-23",
                            2032: "02-11", 2033: "01-31", 2034: "02-19", 2035: "02-08"}
_FALLBACK_RUN = {"Spring Festival": (-1, 6), "Labour Day": ("05-01", "05-05"), "National Day": ("10-01", "10-07")}
_HOLIDAY_SEARCH = {"Spring Festival": ("01-15", 50), "Labour Day": ("04-25", 15), "National Day": ("09-25", 15)}


@dataclass
class CityConfig:
    """A simulated city.

    ``kind="north"`` has central heating; ``"south"`` has none but a plum-rain season,
    and typhoons when ``coastal``. Per-district seasonal and incident levels are written
    for ~11 background appeals per district a day and scale with the district's volume.
    """
    name: str = "示范市"
    kind: str = "north"                 # "north" | "south"
    coastal: bool = False               # typhoon season August–September (southern cities)
    districts: list = field(default_factory=lambda: list(DEMO_DISTRICTS))
    district_weights: list | None = None  # relative volume per district; None = equal
    tourist_districts: list = field(default_factory=lambda: ["南湖区", "临江县"])
    base_per_day: float = 65.0          # background appeals per day, city-wide
    weekday_factor: tuple = (1.1, 1.05, 1.0, 1.0, 0.95, 0.7, 0.65)
    holiday_factor: float = 0.6
    trend_per_year: float = 0.08
    dispersion: float = 8.0             # negative-binomial size: var = mu + mu^2 / dispersion
    background: str = "auto"            # "auto" (real corpus when present) | "real" | "shipped"
    senders: bool = False               # a `user` column
    repost_rate: float = 0.01           # share of background appeals posted again (1–4 more times)
    seasons: bool = True
    in_season_incidents: bool = True
    incidents_per_year: int = 3         # one-off topic incidents
    surges_per_year: int = 3            # short category surges in one district
    rainstorms_per_year: int = 2
    emerging: bool = True


def cities(n: int = 5, seed: int = 0) -> list[CityConfig]:
    """``n`` varied cities for reporting ranges: north and south, inland and coastal,
    40–120 background appeals a day, 4–8 districts, different dispersion, with and
    without senders. ``seed`` jitters volumes and district weights.

    Examples
    --------
    >>> cs = cities()
    >>> len(cs), sorted({c.kind for c in cs}), any(c.coastal for c in cs), {c.senders for c in cs} == {True, False}
    (5, ['north', 'south'], True, True)
    """
    rng = np.random.default_rng([seed, 7])
    north = ["城关区", "东城区", "西城区", "北山区", "高新区", "河东区", "开发区", "临河县"]
    south = ["老城区", "滨海区", "港口区", "东湖区", "西江区", "新港区", "南岭区", "北湾区"]
    archetypes = [
        dict(name="北岭市", kind="north", districts=north[:6], tourist=[2, 5], base=80, disp=8.0, senders=False,
             repost=0.01),
        dict(name="南州市", kind="south", coastal=True, districts=south[:7], tourist=[1, 3], base=100, disp=5.0,
             senders=True, repost=0.03),
        dict(name="江城市", kind="south", districts=south[:5], tourist=[0], base=55, disp=10.0, senders=True,
             repost=0.02),
        dict(name="塞原市", kind="north", districts=north[:4], tourist=[3], base=40, disp=4.0, senders=False,
             repost=0.01),
        dict(name="海湾市", kind="south", coastal=True, districts=south[:8], tourist=[1, 6], base=120, disp=6.0,
             senders=False, repost=0.02),
    ]
    out = []
    for i in range(n):
        a = archetypes[i % len(archetypes)]
        dists = list(a["districts"])
        weights = rng.gamma(4.0, 1.0, size=len(dists))
        out.append(CityConfig(
            name=a["name"] if i < len(archetypes) else f"{a['name']}{i // len(archetypes) + 1}",
            kind=a["kind"], coastal=a.get("coastal", False), districts=dists,
            district_weights=[round(float(w / weights.sum()), 4) for w in weights],
            tourist_districts=[dists[j] for j in a["tourist"]],
            base_per_day=round(float(np.clip(a["base"] * rng.uniform(0.9, 1.1), 40, 120)), 1),
            dispersion=a["disp"], senders=a["senders"], repost_rate=a["repost"],
            trend_per_year=round(float(rng.uniform(0.0, 0.1)), 3)))
    return out


# ------------------------------------------------------------------ corpora
def _resolve_background(choice: str) -> str:
    if choice not in ("auto", "real", "shipped"):
        raise ValueError(f"CityConfig.background must be 'auto', 'real' or 'shipped', got {choice!r}")
    if choice == "auto":
        return "real" if REAL_CORPUS.exists() else "shipped"
    if choice == "real" and not REAL_CORPUS.exists():
        raise ValueError(f"CityConfig.background='real' but the real corpus is absent: {REAL_CORPUS}")
    return choice


@lru_cache(maxsize=4)
def _corpus(source: str, path: str) -> tuple[tuple, tuple, dict]:
    """(texts, categories, texts by topic) of a labelled corpus; the shipped corpus without
    its seasonal texts (those come from the seasons)."""
    from corpora.records import appeal_texts, read_appeals
    from corpora.topics import default_topics

    frame = read_appeals(path).frame
    frame = frame[frame["category"].notna()]
    lex = default_topics()
    texts, cats, by_topic = [], [], {}
    seasonal = {t.name for t in lex.topics if t.seasonal}
    for text, cat in zip(appeal_texts(frame), frame["category"]):
        topics = lex.assign(text)
        for t in topics:
            if lex.by_name[t].category == cat:
                by_topic.setdefault(t, []).append(text)
        if source == "shipped" and set(topics) & seasonal:
            continue
        texts.append(text)
        cats.append(cat)
    return tuple(texts), tuple(cats), {k: tuple(v) for k, v in by_topic.items()}


def holiday_run(year: int, name: str) -> tuple[date, date] | None:
    """First and last day of the statutory holiday ``name`` ('Spring Festival', 'Labour
    Day', 'National Day') in ``year``, adjacent holidays merged (2023: Mid-autumn and
    National Day); from ``chinesecalendar``, else a table of lunar new years / fixed dates.

    Examples
    --------
    >>> holiday_run(2024, "Spring Festival"), holiday_run(2025, "Spring Festival")[0]
    ((datetime.date(2024, 2, 10), datetime.date(2024, 2, 17)), datetime.date(2025, 1, 28))
    >>> holiday_run(2023, "National Day")
    (datetime.date(2023, 9, 29), datetime.date(2023, 10, 6))
    """
    first, span = _HOLIDAY_SEARCH[name]
    d0 = date.fromisoformat(f"{year}-{first}")
    hit = next((d0 + timedelta(days=i) for i in range(span) if holiday_name(d0 + timedelta(days=i)) == name), None)
    if hit is not None:
        a = b = hit
        while day_kind(a - timedelta(days=1)) == "holiday":
            a -= timedelta(days=1)
        while day_kind(b + timedelta(days=1)) == "holiday":
            b += timedelta(days=1)
        return a, b
    if name == "Spring Festival":
        if year not in _FALLBACK_LUNAR_NEW_YEAR:
            return None
        lny = date.fromisoformat(f"{year}-{_FALLBACK_LUNAR_NEW_YEAR[year]}")
        lo, hi = _FALLBACK_RUN[name]
        return lny + timedelta(days=lo), lny + timedelta(days=hi)
    if year < 2004:
        return None
    lo, hi = _FALLBACK_RUN[name]
    return date.fromisoformat(f"{year}-{lo}"), date.fromisoformat(f"{year}-{hi}")


# ------------------------------------------------------------------ texts
class _Writer:
    """Composes event texts; ``rng`` is the simulation's draw generator."""

    def __init__(self, rng, source: str, shipped_by_topic: dict, real_by_topic: dict, pool: tuple,
                 pool_cats: tuple, reserve: np.ndarray):
        self.rng = rng
        self.source = source
        self.shipped_by_topic = shipped_by_topic
        self.real_by_topic = real_by_topic if source == "real" else {}
        cats = np.asarray(pool_cats, dtype=object)
        # texts for category surges: a reserve the background never deals
        self.by_cat = {c: reserve[cats[reserve] == c] for c in sorted(set(pool_cats))}
        self.pool = pool

    def _pick(self, seq):
        return seq[int(self.rng.integers(len(seq)))]

    def _slots(self, district: str, holiday=None) -> dict:
        n = int(self.rng.integers(2, 10))
        return dict(d=district, e=self._pick(ESTATES), r=self._pick(ROADS), n=n, c=_CN_DIGITS[n],
                    dur=self._pick(DURATION), h=self._pick(HOLIDAY_PHRASE[holiday]))

    def topic(self, topic: str, district: str, *, incident=False, holiday=None) -> str:
        u = self.rng.random()
        real = self.real_by_topic.get(topic, ())
        shipped = self.shipped_by_topic.get(topic, ())
        if not incident and topic != "景区管理" and len(real) >= 20 and u < 0.3:
            return self._pick(real)
        if not incident and topic != "景区管理" and shipped and u > 0.8:
            return _DEMO_DISTRICT_RE.sub(district, self._pick(shipped))
        bodies = TEMPLATES.get(f"{topic}/incident") if incident and self.rng.random() < 0.7 else None
        slots = self._slots(district, holiday)
        body = self._pick(bodies or TEMPLATES[topic]).format(**slots)
        return (self._pick(OPEN).format(**slots) + body + self._pick(CLOSE)).strip()

    def of_category(self, category: str, district: str) -> str:
        idx = self.by_cat[category]
        text = self.pool[int(idx[int(self.rng.integers(len(idx)))])]
        return _DEMO_DISTRICT_RE.sub(district, text) if self.source == "shipped" else text

    def matter(self, m: dict, district: str, place: str) -> str:
        p = f"{district}{place}"
        n = int(self.rng.integers(2, 10))
        k = int(self.rng.integers(2, 4))
        facts = [m["facts"][i].format(n=n, c=_CN_DIGITS[n]) for i in self.rng.permutation(len(m["facts"]))[:k]]
        head = self._pick(m["open"]).format(p=p)
        return (self._pick(OPEN).format(d=district) + head + "：" + "，".join(facts) + "。"
                + self._pick(m["ask"]) + self._pick(CLOSE)).strip()


# ------------------------------------------------------------------ events
@dataclass
class _Event:
    meta: dict                 # id, kind, topic, category, district, start, end (+ season, anchor, ...)
    first: date                # first day with appeals
    mu: np.ndarray             # expected appeals per day from `first`
    write: object              # () -> text
    followups: float = 0.0     # share of appeals from a sender who already wrote about it


def _ramp(n_days: int, level: float, up: int = 3, down: int = 0) -> np.ndarray:
    x = np.full(n_days, level, dtype=float)
    for i in range(min(up, n_days)):
        x[i] = level * (i + 1) / (up + 1)
    for i in range(min(down, n_days)):
        x[n_days - 1 - i] = level * (i + 1) / (down + 1)
    return x


def simulate_stream(*, start="2024-01-01", end="2025-12-31", city: CityConfig | None = None, seed: int = 0):
    """Return ``(frame, truth)``: the appeals and the events behind some of them.

    ``frame`` has columns ``id, time, district, category, text`` (and ``user`` when
    ``city.senders``), sorted by time; ``truth`` is a list of events (see the module
    docstring). Deterministic per ``seed``; the seed moves every event.

    Examples
    --------
    >>> city = CityConfig(background="shipped", base_per_day=40)
    >>> f, truth = simulate_stream(start="2024-10-01", end="2024-12-31", city=city, seed=1)
    >>> list(f.columns), len(f) > 3000
    (['id', 'time', 'district', 'category', 'text'], True)
    >>> sorted({e["kind"] for e in truth})
    ['emerging', 'seasonal_onset', 'spike']
    >>> sorted({e["season"] for e in truth if e["kind"] == "seasonal_onset"})
    ['heating', 'national_day', 'year_end_wages']
    """
    import pandas as pd

    from corpora.topics import default_topics

    city = city or CityConfig()
    if city.kind not in ("north", "south"):
        raise ValueError(f"CityConfig.kind must be 'north' or 'south', got {city.kind!r}")
    if not city.districts:
        raise ValueError("CityConfig.districts is empty")
    if not set(city.tourist_districts) <= set(city.districts):
        raise ValueError(f"CityConfig.tourist_districts {sorted(set(city.tourist_districts) - set(city.districts))} "
                         "are not among the districts")
    source = _resolve_background(city.background)
    d0, d1 = date.fromisoformat(str(start)), date.fromisoformat(str(end))
    if d1 < d0:
        raise ValueError(f"end {d1} is before start {d0}")
    plan = np.random.default_rng([seed, 1])   # where and when events happen
    draw = np.random.default_rng([seed, 2])   # counts, texts, times, senders
    pool, pool_cats, real_by_topic = _corpus(source, str(REAL_CORPUS if source == "real" else SHIPPED_CORPUS))
    _, _, shipped_by_topic = _corpus("shipped", str(SHIPPED_CORPUS))
    in_reserve = draw.random(len(pool)) < 0.15
    deck = np.flatnonzero(~in_reserve)
    writer = _Writer(draw, source, shipped_by_topic, real_by_topic, pool, pool_cats, np.flatnonzero(in_reserve))
    topic_cat = {t.name: t.category for t in default_topics().topics}

    n_days = (d1 - d0).days + 1
    days = [d0 + timedelta(days=i) for i in range(n_days)]
    dists = list(city.districts)
    w = np.ones(len(dists)) if city.district_weights is None else np.asarray(city.district_weights, dtype=float)
    if len(w) != len(dists) or (w <= 0).any():
        raise ValueError("CityConfig.district_weights needs one positive weight per district")
    w = w / w.sum()
    per_district = city.base_per_day * w
    scale = {d: float(np.clip(v / _DEFAULT_PER_DISTRICT, 0.6, 1.8)) for d, v in zip(dists, per_district)}
    cat_share = {c: pool_cats.count(c) / len(pool_cats) for c in sorted(set(pool_cats))}
    years = list(range(d0.year - 1, d1.year + 2))
    events: list[_Event] = []

    def add(eid, kind, topic, district, first, mu, write, *, category=None, start_=None, followups=0.0, **extra):
        mu = np.asarray(mu, dtype=float)
        last = first + timedelta(days=len(mu) - 1)
        if last < d0 or first > d1:
            return
        n_same = sum(1 for e in events if e.meta["id"].split("#")[0] == eid)
        meta = {"id": eid if not n_same else f"{eid}#{n_same + 1}", "kind": kind, "topic": topic,
                "category": category or topic_cat.get(topic), "district": district,
                "start": (start_ or first).isoformat(), "end": last.isoformat(), **extra}
        events.append(_Event(meta, first, mu, write, followups))

    def jit(lo, hi):
        return int(plan.integers(lo, hi + 1))

    def topic_writer(topic, district, **kw):
        return lambda: writer.topic(topic, district, **kw)

    def pick_district():
        return dists[int(plan.choice(len(dists), p=w))]

    if city.seasons:
        for y in years:
            # Winter heating (north): per-district onset ~15 Nov; surge, in-season level, taper.
            if city.kind == "north":
                onsets = {}
                for dist in dists:
                    s = scale[dist]
                    onset = date(y, 11, 15) + timedelta(days=jit(-6, 6))
                    onsets[dist] = onset
                    peak, level = plan.uniform(7.0, 9.0) * s, plan.uniform(3.0, 4.0) * s
                    age = np.arange(121)
                    mu = np.where(age < 4, peak * (age + 1) / 5, peak)
                    mu = np.where((age >= 10) & (age < 17), peak + (level - peak) * (age - 10) / 7, mu)
                    mu = np.where(age >= 17, level, mu)
                    mu = np.where(age >= 96, level * np.maximum(0.25, 1 - (age - 96) / 32), mu)
                    add(f"heating-{y}-{dist}", "seasonal_onset", "冬季采暖", dist, onset, mu,
                        topic_writer("冬季采暖", dist), season="heating", anchor=None)
                if city.in_season_incidents:
                    dist = pick_district()
                    s = onsets[dist] + timedelta(days=jit(18, 25))
                    add(f"heating-incident-{y}-{dist}", "spike", "冬季采暖", dist, s,
                        np.full(7, plan.uniform(10.0, 11.5) * scale[dist]),
                        topic_writer("冬季采暖", dist, incident=True), within=f"heating-{y}-{dist}")
            # Summer heat and power cuts.
            heat_on, heat_end = (date(y, 7, 8), date(y, 8, 25)) if city.kind == "north" else (date(y, 6, 28),
                                                                                              date(y, 9, 5))
            onsets = {}
            for dist in dists:
                onset = heat_on + timedelta(days=jit(-6, 6))
                onsets[dist] = onset
                add(f"heat-{y}-{dist}", "seasonal_onset", "高温停电", dist, onset,
                    _ramp((heat_end - onset).days + 1, 2.5 * scale[dist], up=3, down=7),
                    topic_writer("高温停电", dist), season="summer_heat", anchor=None)
            if city.in_season_incidents:
                dist = pick_district()
                s = onsets[dist] + timedelta(days=jit(10, 30))
                add(f"heat-incident-{y}-{dist}", "spike", "高温停电", dist, s,
                    np.full(jit(2, 3), plan.uniform(8.0, 11.0) * scale[dist]),
                    topic_writer("高温停电", dist, incident=True), within=f"heat-{y}-{dist}")
            # Year-end wage arrears, rising towards Spring Festival (the next year's).
            sf = holiday_run(y + 1, "Spring Festival")
            if sf is not None:
                for dist in dists:
                    onset = sf[0] - timedelta(days=jit(46, 56))
                    length = (sf[0] - onset).days - 1
                    mu = scale[dist] * np.linspace(1.5, 4.0, length)
                    add(f"wages-{y}-{dist}", "seasonal_onset", "欠薪", dist, onset, mu,
                        topic_writer("欠薪", dist), season="year_end_wages", anchor="Spring Festival")
            # Plum rain (south): city-wide 入梅 in mid-June, 出梅 about a month later.
            if city.kind == "south":
                rain_on = date(y, 6, 8) + timedelta(days=jit(0, 12))
                rain_end = rain_on + timedelta(days=jit(25, 35))
                for dist in dists:
                    onset = rain_on + timedelta(days=jit(0, 2))
                    add(f"plum-rain-{y}-{dist}", "seasonal_onset", "内涝积水", dist, onset,
                        _ramp((rain_end - onset).days + 1, plan.uniform(2.0, 3.0) * scale[dist], up=2, down=3),
                        topic_writer("内涝积水", dist), season="plum_rain", anchor=None)
            # Typhoon season (coastal): an elevated level August–September and 2–3 landfalls.
            if city.kind == "south" and city.coastal:
                ty_on, ty_end = date(y, 8, 1) + timedelta(days=jit(-7, 7)), date(y, 9, 30)
                ty_on = max(ty_on, rain_end + timedelta(days=21))  # three quieter weeks after 出梅: two onsets
                for dist in dists:
                    onset = ty_on + timedelta(days=jit(0, 3))
                    add(f"typhoon-season-{y}-{dist}", "seasonal_onset", "内涝积水", dist, onset,
                        _ramp((ty_end - onset).days + 1, plan.uniform(1.2, 1.8) * scale[dist], up=2, down=5),
                        topic_writer("内涝积水", dist), season="typhoon", anchor=None)
                n_land = jit(2, 3)
                gap = ((ty_end - ty_on).days - 10) // n_land
                for k in range(n_land):
                    s = ty_on + timedelta(days=5 + k * gap + jit(0, max(0, gap - 8)))
                    hit = plan.choice(len(dists), size=min(len(dists), jit(2, 4)), replace=False)
                    for j in sorted(hit):
                        dist = dists[j]
                        add(f"typhoon-{s.isoformat()}-{dist}", "spike", "内涝积水", dist, s,
                            np.full(2, plan.uniform(7.0, 10.0) * scale[dist]),
                            topic_writer("内涝积水", dist, incident=True), within=f"typhoon-season-{y}-{dist}")
            # Tourism in tourist districts: three holiday peaks and the summer holidays.
            for name, season in (("Spring Festival", "spring_festival"), ("Labour Day", "labour_day"),
                                 ("National Day", "national_day")):
                run = holiday_run(y, name)
                if run is None:
                    continue
                first, last = run
                for dist in city.tourist_districts:
                    mu = np.full((last - first).days + 2, 6.0 * scale[dist])
                    mu[0] = 3.0 * scale[dist]  # the eve
                    add(f"tourism-{season}-{y}-{dist}", "seasonal_onset", "景区管理", dist,
                        first - timedelta(days=1), mu, topic_writer("景区管理", dist, holiday=name),
                        start_=first, season=season, anchor=name)
            for dist in city.tourist_districts:
                onset = date(y, 7, 8) + timedelta(days=jit(0, 6))
                add(f"tourism-summer-{y}-{dist}", "seasonal_onset", "景区管理", dist, onset,
                    _ramp((date(y, 8, 28) - onset).days + 1, 2.5 * scale[dist], up=3, down=5),
                    topic_writer("景区管理", dist, holiday=None), season="summer_tourism", anchor=None)
            # Rainstorms: two days of flooding in one district.
            for _ in range(city.rainstorms_per_year):
                s, dist = date(y, 6, 1) + timedelta(days=jit(0, 80)), pick_district()
                add(f"storm-{s.isoformat()}-{dist}", "spike", "内涝积水", dist, s,
                    np.full(2, plan.uniform(8.0, 11.0) * scale[dist]), topic_writer("内涝积水", dist))

    for y in years:
        for _ in range(city.incidents_per_year):
            s, dist = date(y, 1, 20) + timedelta(days=jit(0, 320)), pick_district()
            topic = ["噪音", "大气污染", "自来水供应", "燃气供应"][jit(0, 3)]
            add(f"incident-{s.isoformat()}-{dist}", "spike", topic, dist, s,
                np.full(jit(3, 5), plan.uniform(8.0, 10.0) * scale[dist]), topic_writer(topic, dist))
        cats = sorted(cat_share)
        for _ in range(city.surges_per_year):
            s, j = date(y, 1, 10) + timedelta(days=jit(0, 340)), int(plan.choice(len(dists), p=w))
            dist = dists[j]
            cat = cats[int(plan.choice(len(cats), p=[cat_share[c] for c in cats]))]
            usual = per_district[j] * cat_share[cat]
            add(f"surge-{s.isoformat()}-{dist}-{cat}", "spike", None, dist, s,
                np.full(jit(3, 5), usual * (plan.uniform(2.5, 4.0) - 1)),
                (lambda c=cat, d=dist: writer.of_category(c, d)), category=cat)

    if city.emerging:
        m = MATTERS[jit(0, len(MATTERS) - 1)]
        place = (NEW_ESTATES if m["place"] == "estate" else NEW_ROADS)[jit(0, 5)]
        dist = pick_district()
        s = d0 + timedelta(days=int(n_days * plan.uniform(0.4, 0.75)))
        # Appears at ~0.5 a day, grows ~8% a day to 5–8 a day, holds, then fades as it is dealt with.
        cap = plan.uniform(5.0, 8.0)
        grow = int(np.ceil(np.log(cap / 0.5) / np.log(1.08)))
        hold, fade = jit(20, 40), jit(20, 30)
        mu = np.concatenate([0.5 * 1.08 ** np.arange(grow), np.full(hold, cap), np.linspace(cap, 0.5, fade)])
        add(f"emerging-{s.isoformat()}-{dist}", "emerging", None, dist, s, mu,
            (lambda m=m, d=dist, p=place: writer.matter(m, d, p)), category=m["category"],
            matter=m["matter"], place=f"{dist}{place}", followups=0.15)

    # ---------------------------------------------------------------- appeals
    day_i, dist_c, cat_c, text_c, user_c, ev_c = [], [], [], [], [], []
    users = iter(range(1, 10**9))

    def new_user():
        return f"U{next(users):07d}"

    order = draw.permutation(deck)
    ptr = 0
    for i, day in enumerate(days):
        kind = day_kind(day)
        f = city.holiday_factor if kind == "holiday" else (
            city.weekday_factor[day.weekday()] if kind != "makeup" else city.weekday_factor[0])
        f *= 1 + city.trend_per_year * i / 365
        for j, dist in enumerate(dists):
            mu = per_district[j] * f
            n = int(draw.negative_binomial(city.dispersion, city.dispersion / (city.dispersion + mu)))
            for _ in range(n):
                if ptr == len(order):
                    order, ptr = draw.permutation(deck), 0
                k = int(order[ptr])
                ptr += 1
                text = pool[k]
                if source == "shipped":
                    text = _DEMO_DISTRICT_RE.sub(dist, text)
                frequent = draw.random() < 0.03
                day_i.append(i), dist_c.append(dist), cat_c.append(pool_cats[k]), text_c.append(text)
                user_c.append(f"F{j:02d}{int(draw.integers(40)):03d}" if frequent else new_user()), ev_c.append(None)
    # Re-posters: the same sender posts the same text again over the next days.
    n_bg = len(day_i)
    for r in np.flatnonzero(draw.random(n_bg) < city.repost_rate):
        at = day_i[r]
        for _ in range(int(draw.integers(1, 5))):
            at += int(draw.integers(1, 5))
            if at >= n_days:
                break
            day_i.append(at), dist_c.append(dist_c[r]), cat_c.append(cat_c[r]), text_c.append(text_c[r])
            user_c.append(user_c[r]), ev_c.append(None)
    for ev in events:
        eid, dist, cat = ev.meta["id"], ev.meta["district"], ev.meta["category"]
        authors: list[str] = []
        for k, m in enumerate(ev.mu):
            day = ev.first + timedelta(days=k)
            if not d0 <= day <= d1 or m <= 0:
                continue
            size = max(city.dispersion, 10.0)
            for _ in range(int(draw.negative_binomial(size, size / (size + m)))):
                if authors and draw.random() < ev.followups:
                    user = authors[int(draw.integers(len(authors)))]
                else:
                    user = new_user()
                    authors.append(user)
                day_i.append((day - d0).days), dist_c.append(dist), cat_c.append(cat), text_c.append(ev.write())
                user_c.append(user), ev_c.append(eid)

    secs = draw.integers(7 * 3600, 23 * 3600, size=len(day_i))
    base = np.datetime64(d0.isoformat(), "s")
    times = base + np.asarray(day_i, dtype="timedelta64[D]").astype("timedelta64[s]") + secs.astype("timedelta64[s]")
    frame = pd.DataFrame({"time": pd.to_datetime(times).astype("datetime64[ns]"), "district": dist_c,
                          "category": cat_c, "text": text_c, "user": user_c, "_event": ev_c})
    frame = frame.sort_values("time", kind="stable").reset_index(drop=True)
    frame.insert(0, "id", [f"S{i:06d}" for i in range(1, len(frame) + 1)])
    ids_by_event = frame.dropna(subset=["_event"]).groupby("_event")["id"].apply(list).to_dict()
    truth = [{**ev.meta, "ids": ids_by_event[ev.meta["id"]]} for ev in events if ev.meta["id"] in ids_by_event]
    truth.sort(key=lambda e: (e["start"], e["id"]))
    frame = frame.drop(columns=["_event"] if city.senders else ["_event", "user"])
    return frame, truth
