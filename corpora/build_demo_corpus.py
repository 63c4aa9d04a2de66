"""Write the project's own demo corpus: ``corpora/data/demo_appeals.csv``.

Every appeal is composed by this script from templates written by the Suqiu team in the
style of real 12345 / message-board appeals; nothing is copied from real appeals. The
fictional city 示范市 has six districts and two years of appeals with seasonal topics
(winter heating, Golden Week and Spring Festival tourism, summer heat and power cuts,
rainstorms, year-end unpaid wages). Each row carries gold ``category`` and ``urgency``.

Run ``python -m corpora.build_demo_corpus`` to regenerate (deterministic, seeded).
"""
from __future__ import annotations

import csv
import random
from datetime import datetime, timedelta
from pathlib import Path

OUT = Path(__file__).resolve().parent / "data" / "demo_appeals.csv"
DISTRICTS = ["东城区", "西城区", "南湖区", "北山区", "高新区", "临江县"]
ESTATES = ["幸福里小区", "锦绣花园", "滨江一号", "翠湖苑", "阳光新城", "金桂园", "和平小区", "书香门第",
           "东方名苑", "绿洲家园", "望江府", "丽景湾", "长青坊", "红星社区", "梧桐郡", "世纪华庭"]
ROADS = ["人民路", "解放大道", "建设北路", "滨河路", "中山东路", "学院路", "新华街", "迎宾大道", "工业园路"]
OPEN = ["尊敬的领导：", "您好！", "领导您好，", "", "", "尊敬的市长：", "各位领导好，", "我是{d}居民，"]
CLOSE = ["恳请相关部门尽快处理！", "希望领导重视，早日解决。", "请有关部门给个说法。", "谢谢！",
         "盼复。", "望尽快答复，谢谢。", "请求政府帮帮我们。", ""]
DURATION = ["已经三天了", "从上周开始", "今天早上起", "这半个月来", "已经一个多月", "最近几天", "好几年了", "去年开始"]

# Each template: category, urgency, month weights (None = all year), title, body.
# Body slots: {d} district, {e} estate, {r} road, {n} a number, {dur} duration phrase.
T = [
    # 城乡建设 — heating (north-style district heating is modelled in 北山区/高新区 only in the simulator)
    ("城乡建设", "urgent", [11, 12, 1, 2, 3], "{e}暖气不热",
     "{d}{e}{n}栋暖气不热，{dur}，室内温度只有十三四度，家里老人孩子冻得不行。多次打电话给供热公司，答复说在排查，一直没有人上门。"),
    ("城乡建设", "urgent", [11, 12, 1, 2], "{e}停暖无人管",
     "{d}{e}从{n}号开始停暖，供热站说是管道维修，但没有任何通知，{dur}还没恢复。室外零下，屋里开着空调也冷，请尽快恢复供暖。"),
    ("城乡建设", "routine", [9, 10, 11], "关于供暖费收费标准的咨询",
     "请问{d}今年的供暖费标准是多少？我家{e}房子常年空置，能否申请只交基础热费？物业说要全额交，想问问政策依据。"),
    ("城乡建设", "critical", [12, 1, 2], "独居老人家中停暖停气",
     "{d}{e}有位八十多岁的独居老人，家里暖气和燃气{dur}都停了，今天气温零下十度，老人身体虚弱已经冻病了，联系不上子女，请马上派人来看看！"),
    ("城乡建设", "critical", None, "{e}楼道有很浓的煤气味",
     "{d}{e}{n}栋楼道里现在有很浓的煤气味，怀疑燃气管道泄漏，已经打了燃气公司电话但还没人来，楼里住了很多老人孩子，非常危险，请立即处理！"),
    ("城乡建设", "critical", [5, 6, 7, 8], "{r}旁围墙开裂随时可能倒塌",
     "{d}{r}工地旁边的围墙出现很大裂缝，连续下雨后已经倾斜，下面就是人行道，每天上下学很多学生经过，随时可能倒塌砸到人，请立即处置。"),
    ("城乡建设", "urgent", None, "{e}停水{dur}",
     "{d}{e}{dur}一直停水，自来水公司没有提前通知，家里做饭洗澡都成问题，高层住户要下楼去提水，请尽快恢复供水。"),
    ("城乡建设", "routine", None, "{e}物业服务差乱收费",
     "{d}{e}物业公司服务很差，小区绿化没人管，电梯经常坏，今年还擅自把物业费从每平米{n}毛涨到更高，业主意见很大，请住建部门查一查。"),
    ("城乡建设", "routine", None, "{e}开发商迟迟不办房产证",
     "我在{d}{e}买的房子交房已经{n}年了，开发商一直拖着不给办不动产证，孩子上学要用房产证明，问了几次都说在办理中，请相关部门督促。"),
    ("城乡建设", "urgent", None, "{r}拆迁补偿款不到位",
     "{d}{r}一带拆迁，我们家{n}口人的补偿款到现在还没发，安置房也没有着落，一家人租房住，生活很困难，请政府落实补偿。"),
    ("城乡建设", "routine", None, "建议{r}增设路灯",
     "{d}{r}靠近{e}这一段晚上没有路灯，一片漆黑，居民晚上散步很不方便，建议增设几盏路灯，谢谢。"),
    ("城乡建设", "urgent", [5, 6, 7, 8], "{e}暴雨后地下室积水",
     "昨晚暴雨，{d}{e}地下车库积水有半米深，排水泵坏了，{n}辆车泡在水里，污水还在往一楼倒灌，请尽快派人抽水疏通。"),
    # 环境保护
    ("环境保护", "urgent", None, "{r}工地夜间施工噪音扰民",
     "{d}{r}的工地每天晚上十一点以后还在施工，打桩声、渣土车声音非常大，{dur}，附近{e}居民根本睡不着，孩子第二天还要上学，请环保部门夜间执法。"),
    ("环境保护", "urgent", None, "{e}旁边工厂排放刺鼻废气",
     "{d}{e}附近的化工厂{dur}一到晚上就排放刺鼻气味的废气，很多居民喉咙痛、咳嗽，窗户都不敢开，请生态环境局来检测。"),
    ("环境保护", "routine", None, "{e}楼下餐馆油烟扰民",
     "{d}{e}楼下新开的烧烤店没有安装油烟净化设备，油烟直接排到楼上住户家里，衣服都不能晾，希望相关部门督促整改。"),
    ("环境保护", "urgent", [6, 7, 8, 9], "{r}附近河道发黑发臭",
     "{d}{r}附近的小河{dur}水体发黑发臭，有企业偷偷往河里排污水，死鱼漂了一片，周边居民意见很大，请查处排污企业。"),
    ("环境保护", "routine", None, "{e}垃圾分类站建议",
     "{d}{e}的垃圾分类投放点离住户太近，夏天有异味，建议挪到小区北门空地，并增加清运次数。"),
    ("环境保护", "urgent", None, "有人在{r}偷倒建筑垃圾",
     "最近{d}{r}路边经常有人晚上偷偷倾倒建筑垃圾，越堆越多，扬尘很大，还占了半条路，请城管和环保部门查处。"),
    ("环境保护", "routine", None, "广场舞音响声音太大",
     "{d}{e}旁边广场每晚有人跳广场舞，音响开得很大，一直到九点半，家里有高三学生需要安静学习，希望能协调降低音量。"),
    # 交通运输
    ("交通运输", "routine", None, "{r}公交线路调整建议",
     "{d}{e}居民出行主要靠{n}路公交，最近线路调整后站点离小区太远，老人出行很不方便，建议恢复原来的站点。"),
    ("交通运输", "routine", None, "网约车司机绕路多收费",
     "我昨天在{d}{r}打网约车去高铁站，司机故意绕路，平时三十块的路程收了我{n}十多块，投诉平台一直不处理，请交通部门管一管。"),
    ("交通运输", "routine", None, "出租车拒载",
     "在{d}火车站排队打出租车，司机嫌路程近拒载，还态度恶劣，这种情况经常发生，希望加强管理。"),
    ("交通运输", "urgent", None, "{r}路面塌陷有大坑",
     "{d}{r}与{e}路口的路面塌陷出一个大坑，{dur}，晚上已经有电动车摔倒，请尽快修复并设置警示标志。"),
    ("交通运输", "routine", None, "{r}红绿灯时间设置不合理",
     "{d}{r}路口的红绿灯直行绿灯只有十几秒，早晚高峰堵车严重，建议交警部门优化信号灯配时。"),
    ("交通运输", "routine", None, "{e}门口乱停车严重",
     "{d}{e}门口道路两边被车辆乱停乱放，消防通道都被堵了，救护车进不来，希望交警加强巡查。"),
    ("交通运输", "urgent", None, "渣土车超载抛洒",
     "{d}{r}上的渣土车{dur}超载超速，沿路抛洒泥土，下雨天路面湿滑，已经发生多起交通事故，请交通和城管部门联合整治。"),
    # 教育文体
    ("教育文体", "routine", [3, 4, 5, 6, 7, 8], "{e}孩子入学划片问题",
     "我家住在{d}{e}，房子是{n}年买的，今年孩子上小学，按照划片应该读附近的小学，但学校说学位已满要分流到很远的学校，请教育局解释划片政策。"),
    ("教育文体", "routine", None, "学校违规收取资料费",
     "{d}某中学要求每个学生交{n}百元资料费和补课费，不交就不让参加晚自习，请教育部门查处乱收费。"),
    ("教育文体", "routine", None, "幼儿园收费过高",
     "{d}{e}旁边的普惠幼儿园每月保育费涨了很多，和民办园差不多，请问普惠园的收费标准是什么？"),
    ("教育文体", "routine", None, "乡村教师待遇问题",
     "我是{d}的一名乡村教师，工作{n}年了，乡镇工作补贴一直没有按政策发放，希望教育部门落实教师待遇。"),
    ("教育文体", "critical", None, "学校门口{r}交通安全隐患",
     "{d}{r}小学校门正对主干道，放学时学生直接冲到马路上，这学期已经发生两起学生被车撞的事故，今天又差点出事，请立即设置护栏和减速带。"),
    ("教育文体", "routine", None, "建议{d}多建体育场馆",
     "{d}人口越来越多，但公共体育场馆很少，周末打球要排很久，建议在{r}附近建设全民健身中心。"),
    ("教育文体", "routine", None, "图书馆开放时间建议",
     "建议{d}图书馆周末延长开放时间到晚上九点，方便上班族和学生使用。"),
    # 劳动和社会保障
    ("劳动和社会保障", "urgent", [11, 12, 1, 2], "农民工工资被拖欠",
     "我们{n}十多个农民工在{d}{r}的工地干了大半年，包工头拖欠工资十几万一直不给，马上要过年了，家里老人孩子等着钱用，请劳动监察帮我们讨薪！"),
    ("劳动和社会保障", "urgent", [12, 1], "年底公司拖欠工资",
     "{d}一家公司已经{n}个月没发工资了，老板说年底一起结，现在联系不上，我们几十名员工准备集体去上访，请人社部门尽快介入。"),
    ("劳动和社会保障", "routine", None, "社保转移接续咨询",
     "我以前在外省交了{n}年社保，现在回{d}工作，想问问养老保险怎么转移，需要带哪些材料？"),
    ("劳动和社会保障", "routine", None, "住房公积金提取问题",
     "想咨询一下，在{d}租房能否提取住房公积金？每年能提多少，需要什么证明？"),
    ("劳动和社会保障", "routine", None, "公司不签劳动合同",
     "我在{d}一家公司上班{n}个月了，公司一直不跟我签劳动合同，也不交社保，请问我该怎么维权？"),
    ("劳动和社会保障", "urgent", None, "工伤认定迟迟不办",
     "我在{d}工厂上班时手指被机器压伤，公司不给申报工伤，医药费都是自己垫的，家里已经揭不开锅了，请人社局帮助认定工伤。"),
    ("劳动和社会保障", "routine", None, "退休人员养老金调整咨询",
     "我是{d}退休职工，想问今年的养老金什么时候调整，调整标准是多少？"),
    # 商贸旅游
    ("商贸旅游", "routine", [9, 10], "国庆黄金周景区门票问题",
     "国庆带家人去{d}的景区游玩，门票比网上公布的贵了{n}十元，而且园中园还要另外收费，景区人多到寸步难行，希望文旅部门规范管理。"),
    ("商贸旅游", "urgent", [1, 2, 4, 5, 9, 10], "旅游团导游强制购物",
     "我们参加了旅行社组织的{d}一日游，导游把我们带到玉器店和土特产店强制购物，不买就甩脸色、不让上车，耽误了{n}个小时，请旅游部门查处。"),
    ("商贸旅游", "routine", [1, 2], "春节期间景区停车难",
     "春节期间到{d}景区游玩，停车场全满，周边道路堵了两个小时，建议节假日开通接驳车，增加临时停车位。"),
    ("商贸旅游", "routine", None, "商家虚假宣传拒不退款",
     "我在{d}{r}的一家店办了{n}千元的健身卡，店家开业不到两个月就关门跑路了，消费者都退不了款，请市场监管部门处理。"),
    ("商贸旅游", "routine", None, "菜市场缺斤短两",
     "{d}{r}菜市场有的摊贩使用作弊秤，缺斤短两，我买了两斤肉回家一称少了二两，请市场监管部门检查。"),
    ("商贸旅游", "routine", [4, 5], "五一假期景区价格欺诈",
     "五一在{d}的景区吃饭，菜单上没有标价，结账时一盘鱼收了{n}百多，明显宰客，请相关部门查处。"),
    ("商贸旅游", "routine", None, "建议在{r}建设农贸市场",
     "{d}{r}一带新建了很多小区，但附近没有农贸市场，居民买菜要走很远，建议规划建设一个标准化菜市场。"),
    # 卫生计生
    ("卫生计生", "routine", None, "独生子女奖励金未发放",
     "我是{d}的独生子女父母，已经年满六十周岁，按政策应该领取奖励扶助金，但申请了{n}个月一直没有发放，请计生部门核实。"),
    ("卫生计生", "urgent", None, "医院拒收急诊病人",
     "昨晚家里老人突发高烧，送到{d}的医院急诊，医生说床位满了让我们转院，拖了{n}个小时才安排，老人现在情况很不好，请卫健委调查。"),
    ("卫生计生", "routine", None, "医保异地报销咨询",
     "我父亲在外地住院，医保是{d}的，请问异地就医怎么备案报销，比例是多少？"),
    ("卫生计生", "routine", None, "医院挂号难",
     "{d}人民医院专家号太难挂，网上一放号就没了，医院门口还有号贩子倒卖，请卫健委加强管理。"),
    ("卫生计生", "critical", None, "学校食堂多名学生食物中毒",
     "今天中午{d}一所学校食堂吃饭后，有{n}十多名学生上吐下泻被送医，怀疑是食物中毒，学校还想压着不报，请卫生部门马上调查！"),
    ("卫生计生", "routine", None, "二孩生育登记咨询",
     "请问在{d}办理二孩生育登记需要什么材料，能否网上办理？"),
    ("卫生计生", "routine", None, "小诊所无证行医",
     "{d}{e}门口有一家小诊所，没有挂执业许可证，给人打针输液，怀疑是无证行医，请卫生监督所查处。"),
]


def _month_weighted_date(rng: random.Random, months, start: datetime, days: int) -> datetime:
    for _ in range(1000):
        d = start + timedelta(days=rng.randrange(days), seconds=rng.randrange(7 * 3600, 23 * 3600))
        if months is None or d.month in months:
            return d
    raise RuntimeError("no date found")


def build(seed: int = 20240101, per_template: int = 12) -> list[dict]:
    rng = random.Random(seed)
    start, days = datetime(2024, 1, 1), 731
    rows, seen = [], set()
    for category, urgency, months, title_t, body_t in T:
        made, tries = 0, 0
        while made < per_template and tries < 500:
            tries += 1
            d = rng.choice(DISTRICTS)
            slots = dict(d=d, e=rng.choice(ESTATES), r=rng.choice(ROADS), n=rng.randint(2, 9),
                         dur=rng.choice(DURATION))
            body = body_t.format(**slots)
            text = (rng.choice(OPEN).format(**slots) + body + rng.choice(CLOSE)).strip()
            if text in seen:
                continue
            seen.add(text)
            when = _month_weighted_date(rng, months, start, days)
            rows.append({"title": title_t.format(**slots), "text": text, "district": d,
                         "time": when.strftime("%Y-%m-%d %H:%M:%S"),
                         "channel": rng.choice(["12345热线", "市长信箱", "留言板", "微信公众号"]),
                         "category": category, "urgency": urgency})
            made += 1
    rows.sort(key=lambda r: r["time"])
    for i, r in enumerate(rows, 1):
        r["id"] = f"DEMO-{i:05d}"
    return rows


def main() -> None:
    rows = build()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with open(OUT, "w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["id", "time", "title", "text", "district", "channel", "category", "urgency"])
        w.writeheader()
        w.writerows(rows)


if __name__ == "__main__":
    main()
