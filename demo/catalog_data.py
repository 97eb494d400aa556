"""Static definitions of the demo shop: category tree, brands, tags and per-leaf product templates.

Everything here is plain immutable data (tuples, frozen dataclasses) so the generator in `demo.seed`
walks it in one fixed order; randomness lives only in the generator.
"""

from __future__ import annotations

from dataclasses import dataclass

SHOP_NAME = "链猫优选"
IMAGE_HOST = "https://img.lianmall.cn/demo"


@dataclass(frozen=True)
class SpecDim:
    """One axis of variation offered by a leaf's products."""

    name: str
    values: tuple[str, ...]
    # How many values a product offers, drawn per product; None offers all of them (e.g. every size).
    pick: tuple[int, int] | None = None
    # Each later value of a product costs (and weighs) this fraction of the base more: 50ml -> 100ml.
    step: float = 0.0


@dataclass(frozen=True)
class Leaf:
    """A level-3 category and the template its products are generated from."""

    name: str
    # Titles are "{style}{noun} {suffix}"; the noun is the everyday word shoppers search for.
    nouns: tuple[str, ...]
    styles: tuple[str, ...]
    suffixes: tuple[str, ...]
    price_yuan: tuple[int, int]
    weight_grams: tuple[int, int]
    dims: tuple[SpecDim, ...]
    brands: tuple[str, ...]
    points: tuple[str, ...]
    # Consumables get quantity (tier) prices.
    tiered: bool = False
    count: tuple[int, int] = (5, 9)


@dataclass(frozen=True)
class Branch:
    name: str
    leaves: tuple[Leaf, ...]


@dataclass(frozen=True)
class Root:
    name: str
    branches: tuple[Branch, ...]


@dataclass(frozen=True)
class BrandDef:
    name: str
    # Only domestic brands may carry the 国货 tag.
    domestic: bool


BRANDS: tuple[BrandDef, ...] = (
    BrandDef("拾光里", True),
    BrandDef("棉麻记", True),
    BrandDef("MOCO LAB", False),
    BrandDef("Urban Fox", False),
    BrandDef("疾风", True),
    BrandDef("StrideX", False),
    BrandDef("步履", True),
    BrandDef("花漾", True),
    BrandDef("Aurora Skin", False),
    BrandDef("植研", True),
    BrandDef("LUMI", False),
    BrandDef("极客派", True),
    BrandDef("Voltra", False),
    BrandDef("声浪", True),
    BrandDef("MagCase", False),
    BrandDef("山野集", True),
    BrandDef("茶语", True),
    BrandDef("Daily Nuts", False),
    BrandDef("棉眠", True),
    BrandDef("木作", True),
    BrandDef("KitchenPro", False),
    BrandDef("贝乐", True),
    BrandDef("BabyCloud", False),
    BrandDef("山行者", True),
    BrandDef("FitLab", False),
)

TAGS: tuple[str, ...] = (
    "新品",
    "热卖",
    "包邮",
    "限时折扣",
    "国货",
    "爆款",
    "会员专享",
    "七天无理由",
    "满减",
    "直播同款",
    "官方正品",
    "秒杀",
    "品质优选",
    "换季清仓",
    "好评如潮",
    "赠运费险",
)
NEW_TAG = "新品"
DOMESTIC_TAG = "国货"

# The single SKU of a product without variations.
DEFAULT_DIMS: tuple[SpecDim, ...] = (SpecDim("规格", ("默认",)),)

_CLOTHING_SIZES = SpecDim("尺码", ("S", "M", "L", "XL"))
_KIDS_SIZES = SpecDim("尺码", ("90", "100", "110", "120", "130"))
_WOMEN_COLOURS = SpecDim(
    "颜色", ("黑色", "白色", "杏色", "雾霾蓝", "碎花粉", "酒红色", "墨绿色", "燕麦色"), pick=(2, 4)
)
_MEN_COLOURS = SpecDim("颜色", ("黑色", "白色", "藏青色", "灰色", "卡其色", "军绿色"), pick=(2, 4))
_KIDS_COLOURS = SpecDim("颜色", ("粉色", "天蓝", "奶黄", "浅灰"), pick=(2, 3))
_SHOE_COLOURS = SpecDim("颜色", ("黑白", "全黑", "灰蓝", "米白", "荧光绿"), pick=(2, 3))
_MEN_SHOE_SIZES = SpecDim("尺码", ("39", "40", "41", "42", "43", "44"))
_WOMEN_SHOE_SIZES = SpecDim("尺码", ("36", "37", "38", "39", "40"))
_PHONE_MODELS = (
    "iPhone 16",
    "iPhone 16 Pro",
    "iPhone 16 Pro Max",
    "华为 Mate 70",
    "小米 15",
    "OPPO Find X8",
)
_CLOTHING_BRANDS = ("拾光里", "棉麻记", "MOCO LAB", "Urban Fox")
_SHOE_BRANDS = ("疾风", "StrideX", "步履")
_BEAUTY_BRANDS = ("花漾", "Aurora Skin", "植研", "LUMI")
_DIGITAL_BRANDS = ("极客派", "Voltra", "声浪", "MagCase")
_FOOD_BRANDS = ("山野集", "茶语", "Daily Nuts")
_HOME_BRANDS = ("棉眠", "木作", "KitchenPro")
_BABY_BRANDS = ("贝乐", "BabyCloud")
_SPORT_BRANDS = ("山行者", "FitLab")


def _women(
    name: str,
    styles: tuple[str, ...],
    price: tuple[int, int],
    points: tuple[str, ...],
    count: tuple[int, int] = (5, 9),
) -> Leaf:
    return Leaf(
        name=name,
        nouns=(name,),
        styles=styles,
        suffixes=("夏季新款", "2026秋冬新款", "显瘦百搭", "通勤"),
        price_yuan=price,
        weight_grams=(180, 450),
        dims=(_WOMEN_COLOURS, _CLOTHING_SIZES),
        brands=_CLOTHING_BRANDS,
        points=points,
        count=count,
    )


def _men(
    name: str, styles: tuple[str, ...], price: tuple[int, int], sizes: SpecDim = _CLOTHING_SIZES
) -> Leaf:
    return Leaf(
        name=name,
        nouns=(name,),
        styles=styles,
        suffixes=("男款", "宽松版", "商务休闲", "2026新款"),
        price_yuan=price,
        weight_grams=(200, 700),
        dims=(_MEN_COLOURS, sizes),
        brands=_CLOTHING_BRANDS,
        points=("舒适透气", "不易起球", "修身剪裁", "机洗不变形"),
    )


def _shoes(
    name: str,
    styles: tuple[str, ...],
    suffix: str,
    price: tuple[int, int],
    sizes: SpecDim,
    count: tuple[int, int] = (5, 9),
) -> Leaf:
    return Leaf(
        name=name,
        nouns=(name,),
        styles=styles,
        suffixes=(suffix, f"{suffix} 百搭", f"{suffix} 2026新款"),
        price_yuan=price,
        weight_grams=(600, 1100),
        dims=(_SHOE_COLOURS, sizes),
        brands=_SHOE_BRANDS,
        points=("轻便缓震", "透气网面", "防滑耐磨", "久走不累"),
        count=count,
    )


CATALOG: tuple[Root, ...] = (
    Root(
        "服饰",
        (
            Branch(
                "女装",
                (
                    _women(
                        "连衣裙",
                        ("法式碎花", "收腰显瘦", "雪纺", "针织", "复古方领", "气质长款"),
                        (129, 599),
                        ("垂感面料", "收腰显瘦", "不挑身材", "约会通勤两相宜"),
                        count=(9, 12),
                    ),
                    _women(
                        "半身裙",
                        ("高腰A字", "百褶", "包臀", "牛仔", "缎面"),
                        (99, 299),
                        ("高腰显腿长", "垂坠感好", "四季可穿"),
                    ),
                    _women(
                        "T恤",
                        ("纯棉短袖", "宽松印花", "修身圆领", "冰丝"),
                        (49, 159),
                        ("纯棉亲肤", "不易变形", "百搭基础款"),
                    ),
                    _women(
                        "衬衫",
                        ("真丝", "法式泡泡袖", "条纹", "职业白"),
                        (99, 299),
                        ("抗皱免烫", "垂感面料", "通勤必备"),
                    ),
                ),
            ),
            Branch(
                "男装",
                (
                    _men("T恤", ("纯棉短袖", "重磅", "速干", "印花潮牌"), (59, 199)),
                    _men("衬衫", ("免烫商务", "牛津纺", "亚麻", "格纹"), (99, 329)),
                    _men("夹克", ("工装", "飞行员", "连帽防风", "立领"), (199, 699)),
                    _men(
                        "休闲裤",
                        ("直筒", "束脚", "弹力修身", "冰丝"),
                        (129, 399),
                        SpecDim("尺码", ("29", "30", "31", "32", "33", "34")),
                    ),
                ),
            ),
        ),
    ),
    Root(
        "鞋靴",
        (
            Branch(
                "男鞋",
                (
                    _shoes(
                        "运动鞋",
                        ("轻便透气", "缓震跑步", "网面减震", "复古老爹"),
                        "男款",
                        (199, 899),
                        _MEN_SHOE_SIZES,
                        count=(8, 12),
                    ),
                    _shoes("休闲鞋", ("帆布", "板鞋", "一脚蹬"), "男款", (159, 499), _MEN_SHOE_SIZES),
                    _shoes("皮鞋", ("真皮商务", "德比", "切尔西"), "男款", (299, 999), _MEN_SHOE_SIZES),
                ),
            ),
            Branch(
                "女鞋",
                (
                    _shoes(
                        "运动鞋",
                        ("轻便透气", "厚底增高", "小白", "飞织"),
                        "女款",
                        (199, 799),
                        _WOMEN_SHOE_SIZES,
                        count=(8, 12),
                    ),
                    _shoes("单鞋", ("玛丽珍", "尖头", "乐福"), "女款", (129, 459), _WOMEN_SHOE_SIZES),
                    _shoes("凉鞋", ("一字带", "坡跟", "平底罗马"), "女款", (89, 299), _WOMEN_SHOE_SIZES),
                ),
            ),
        ),
    ),
    Root(
        "美妆个护",
        (
            Branch(
                "护肤",
                (
                    Leaf(
                        "面霜",
                        ("面霜",),
                        ("保湿修护", "玻尿酸补水", "烟酰胺亮肤", "抗皱紧致", "积雪草舒缓"),
                        ("", "敏感肌可用", "秋冬必备"),
                        (89, 680),
                        (120, 220),
                        (SpecDim("规格", ("50ml", "100ml"), step=0.7),),
                        _BEAUTY_BRANDS,
                        ("深层补水", "清爽不油腻", "修护屏障", "温和无刺激"),
                        count=(8, 12),
                    ),
                    Leaf(
                        "精华",
                        ("精华液",),
                        ("小棕瓶", "烟酰胺", "玻色因", "维C"),
                        ("", "提亮肤色", "淡纹"),
                        (129, 899),
                        (80, 160),
                        (SpecDim("规格", ("30ml", "50ml"), step=0.5),),
                        _BEAUTY_BRANDS,
                        ("高浓度", "吸收快", "淡化细纹"),
                    ),
                    Leaf(
                        "洁面",
                        ("洗面奶",),
                        ("氨基酸", "控油", "泡沫", "温和"),
                        ("", "男女通用"),
                        (39, 159),
                        (120, 220),
                        (SpecDim("规格", ("100g", "150g"), step=0.3),),
                        _BEAUTY_BRANDS,
                        ("绵密泡沫", "洗后不紧绷", "深层清洁"),
                        tiered=True,
                    ),
                    Leaf(
                        "面膜",
                        ("面膜",),
                        ("补水", "清洁泥", "睡眠", "修护"),
                        ("", "熬夜急救"),
                        (49, 199),
                        (150, 400),
                        (SpecDim("规格", ("5片装", "10片装", "20片装"), pick=(2, 2), step=0.8),),
                        _BEAUTY_BRANDS,
                        ("精华满满", "服帖不滴", "一周三次"),
                        tiered=True,
                    ),
                ),
            ),
            Branch(
                "彩妆",
                (
                    Leaf(
                        "口红",
                        ("口红",),
                        ("丝绒哑光", "滋润", "镜面水光", "小金条"),
                        ("", "显白不挑皮"),
                        (79, 329),
                        (30, 60),
                        (
                            SpecDim(
                                "色号",
                                ("#01 正红", "#02 豆沙", "#03 枫叶红", "#04 奶茶", "#05 珊瑚橘"),
                                pick=(3, 5),
                            ),
                        ),
                        _BEAUTY_BRANDS,
                        ("持久不脱色", "不拔干", "黄皮友好"),
                    ),
                    Leaf(
                        "粉底",
                        ("粉底液",),
                        ("持妆", "水润", "遮瑕"),
                        ("", "油皮亲妈", "干皮友好"),
                        (129, 459),
                        (60, 120),
                        (SpecDim("色号", ("象牙白", "自然色", "小麦色"), pick=(2, 3)),),
                        _BEAUTY_BRANDS,
                        ("轻薄服帖", "长效持妆", "不卡粉"),
                    ),
                    Leaf(
                        "眼影",
                        ("眼影盘",),
                        ("大地色", "九色", "珠光", "哑光"),
                        ("", "新手友好"),
                        (59, 299),
                        (60, 150),
                        (),
                        _BEAUTY_BRANDS,
                        ("显色度高", "不飞粉", "日常百搭"),
                    ),
                ),
            ),
            Branch(
                "个人护理",
                (
                    Leaf(
                        "洗发水",
                        ("洗发水",),
                        ("控油蓬松", "去屑止痒", "无硅油", "生姜防脱"),
                        ("", "家庭装"),
                        (29, 99),
                        (450, 800),
                        (SpecDim("规格", ("400ml", "750ml"), step=0.6),),
                        _BEAUTY_BRANDS,
                        ("持久留香", "清爽蓬松", "温和配方"),
                        tiered=True,
                    ),
                    Leaf(
                        "沐浴露",
                        ("沐浴露",),
                        ("香氛", "氨基酸", "牛奶", "樱花"),
                        ("", "家庭装"),
                        (25, 89),
                        (450, 800),
                        (SpecDim("规格", ("400ml", "750ml"), step=0.6),),
                        _BEAUTY_BRANDS,
                        ("留香持久", "滋润不假滑", "泡沫丰富"),
                        tiered=True,
                    ),
                    Leaf(
                        "牙膏",
                        ("牙膏",),
                        ("美白", "清新口气", "抗敏", "益生菌"),
                        ("", "全家可用"),
                        (9, 39),
                        (120, 200),
                        (SpecDim("规格", ("120g", "3支装"), step=1.6),),
                        _BEAUTY_BRANDS,
                        ("清新持久", "温和护龈", "低泡配方"),
                        tiered=True,
                    ),
                ),
            ),
        ),
    ),
    Root(
        "数码",
        (
            Branch(
                "手机配件",
                (
                    Leaf(
                        "手机壳",
                        ("手机壳",),
                        ("磁吸透明", "液态硅胶", "全包防摔", "磨砂肤感", "卡通"),
                        ("", "防摔", "超薄"),
                        (19, 89),
                        (30, 60),
                        (
                            SpecDim("颜色", ("透明", "磨砂黑", "冰川蓝", "樱花粉", "午夜绿"), pick=(2, 3)),
                            SpecDim("适用机型", _PHONE_MODELS, pick=(3, 4)),
                        ),
                        _DIGITAL_BRANDS,
                        ("精准开孔", "不发黄", "支持无线充电"),
                        count=(8, 12),
                    ),
                    Leaf(
                        "充电器",
                        ("充电器",),
                        ("氮化镓快充", "多口", "折叠插脚"),
                        ("", "苹果安卓通用"),
                        (39, 199),
                        (60, 180),
                        (SpecDim("功率", ("20W", "35W", "65W"), pick=(2, 3), step=0.5),),
                        _DIGITAL_BRANDS,
                        ("小巧便携", "智能温控", "多重保护"),
                    ),
                    Leaf(
                        "数据线",
                        ("数据线",),
                        ("编织快充", "Type-C", "三合一"),
                        ("", "耐弯折"),
                        (15, 59),
                        (30, 80),
                        (SpecDim("长度", ("1m", "2m"), step=0.3),),
                        _DIGITAL_BRANDS,
                        ("耐弯折", "高速传输", "快充不发烫"),
                        tiered=True,
                    ),
                    Leaf(
                        "钢化膜",
                        ("钢化膜",),
                        ("高清", "防窥", "抗蓝光"),
                        ("", "2片装"),
                        (9, 39),
                        (20, 50),
                        (SpecDim("适用机型", _PHONE_MODELS, pick=(3, 5)),),
                        _DIGITAL_BRANDS,
                        ("秒贴无气泡", "防指纹", "高透光"),
                        tiered=True,
                    ),
                ),
            ),
            Branch(
                "影音",
                (
                    Leaf(
                        "蓝牙耳机",
                        ("蓝牙耳机",),
                        ("主动降噪", "半入耳", "运动", "开放式"),
                        ("", "长续航"),
                        (99, 1299),
                        (40, 90),
                        (SpecDim("颜色", ("曜石黑", "云母白", "薄荷绿"), pick=(2, 3)),),
                        _DIGITAL_BRANDS,
                        ("通透模式", "低延迟", "佩戴舒适"),
                    ),
                    Leaf(
                        "音箱",
                        ("蓝牙音箱",),
                        ("便携", "重低音", "户外防水"),
                        ("", "桌面"),
                        (129, 999),
                        (300, 1500),
                        (),
                        _DIGITAL_BRANDS,
                        ("360°环绕", "续航持久", "一键配对"),
                    ),
                ),
            ),
            Branch(
                "电脑周边",
                (
                    Leaf(
                        "键盘",
                        ("机械键盘",),
                        ("无线三模", "热插拔", "RGB背光"),
                        ("", "办公游戏"),
                        (99, 699),
                        (700, 1200),
                        (SpecDim("轴体", ("青轴", "红轴", "茶轴"), pick=(2, 3)),),
                        _DIGITAL_BRANDS,
                        ("手感清脆", "长续航", "多设备切换"),
                    ),
                    Leaf(
                        "鼠标",
                        ("鼠标",),
                        ("静音无线", "人体工学", "电竞"),
                        ("", "办公"),
                        (39, 399),
                        (60, 130),
                        (),
                        _DIGITAL_BRANDS,
                        ("精准定位", "轻量化", "静音按键"),
                    ),
                ),
            ),
        ),
    ),
    Root(
        "食品",
        (
            Branch(
                "休闲零食",
                (
                    Leaf(
                        "坚果",
                        ("每日坚果", "夏威夷果", "碧根果"),
                        ("混合", "奶香", "手剥"),
                        ("", "办公室零食"),
                        (29, 99),
                        (250, 600),
                        (
                            SpecDim("口味", ("原味", "盐焗", "蜂蜜", "炭烧"), pick=(2, 3)),
                            SpecDim("规格", ("250g", "500g", "1kg"), pick=(2, 2), step=0.85),
                        ),
                        _FOOD_BRANDS,
                        ("颗粒饱满", "新鲜烘焙", "独立小包装"),
                        tiered=True,
                    ),
                    Leaf(
                        "饼干",
                        ("饼干", "曲奇"),
                        ("黄油", "全麦", "夹心", "苏打"),
                        ("", "休闲零食"),
                        (12, 49),
                        (200, 550),
                        (
                            SpecDim("口味", ("原味", "巧克力", "海盐芝士", "抹茶"), pick=(2, 3)),
                            SpecDim("规格", ("200g", "500g"), step=1.2),
                        ),
                        _FOOD_BRANDS,
                        ("酥脆可口", "低糖配方", "独立包装"),
                        tiered=True,
                    ),
                    Leaf(
                        "肉干",
                        ("牛肉干", "猪肉脯"),
                        ("手撕", "风干", "内蒙古"),
                        ("", "追剧零食"),
                        (19, 79),
                        (100, 300),
                        (
                            SpecDim("口味", ("原味", "香辣", "五香", "黑胡椒"), pick=(2, 3)),
                            SpecDim("规格", ("100g", "250g"), step=1.3),
                        ),
                        _FOOD_BRANDS,
                        ("肉质紧实", "越嚼越香", "高蛋白"),
                        tiered=True,
                    ),
                ),
            ),
            Branch(
                "茶饮冲调",
                (
                    Leaf(
                        "茶叶",
                        ("龙井", "普洱", "大红袍", "茉莉花茶"),
                        ("明前", "特级", "原叶"),
                        ("", "礼盒装"),
                        (59, 599),
                        (120, 300),
                        (SpecDim("规格", ("100g", "250g"), step=1.3),),
                        _FOOD_BRANDS,
                        ("产地直发", "香气高扬", "回甘持久"),
                    ),
                    Leaf(
                        "咖啡",
                        ("挂耳咖啡", "冻干咖啡"),
                        ("精品", "速溶", "深烘"),
                        ("", "0糖0脂"),
                        (29, 129),
                        (100, 300),
                        (
                            SpecDim("口味", ("经典美式", "拿铁", "冷萃"), pick=(2, 3)),
                            SpecDim("规格", ("10杯", "20杯"), step=0.9),
                        ),
                        _FOOD_BRANDS,
                        ("3秒速溶", "香醇浓郁", "冷热皆宜"),
                        tiered=True,
                    ),
                ),
            ),
            Branch(
                "粮油调味",
                (
                    Leaf(
                        "大米",
                        ("大米",),
                        ("五常稻花香", "东北", "泰国香米"),
                        ("", "当季新米"),
                        (39, 129),
                        (5000, 5200),
                        (SpecDim("规格", ("5kg", "10kg"), step=0.9),),
                        _FOOD_BRANDS,
                        ("软糯香甜", "真空包装", "产地直发"),
                        tiered=True,
                    ),
                    Leaf(
                        "食用油",
                        ("花生油", "菜籽油", "玉米油"),
                        ("压榨一级", "非转基因", "古法小榨"),
                        ("5L", "家庭装"),
                        (49, 159),
                        (4600, 4800),
                        (),
                        _FOOD_BRANDS,
                        ("物理压榨", "香味浓郁", "产地直供"),
                        tiered=True,
                    ),
                ),
            ),
        ),
    ),
    Root(
        "家居",
        (
            Branch(
                "家纺",
                (
                    Leaf(
                        "四件套",
                        ("四件套",),
                        ("全棉", "天丝", "水洗棉", "磨毛"),
                        ("", "亲肤裸睡"),
                        (199, 899),
                        (1800, 2600),
                        (
                            SpecDim("颜色", ("奶油白", "雾霾蓝", "燕麦色", "浅灰"), pick=(2, 3)),
                            SpecDim("尺寸", ("1.5m床", "1.8m床"), step=0.15),
                        ),
                        _HOME_BRANDS,
                        ("亲肤透气", "不起球", "可机洗"),
                    ),
                    Leaf(
                        "枕头",
                        ("枕头", "枕芯"),
                        ("乳胶", "记忆棉", "羽丝绒"),
                        ("", "护颈"),
                        (59, 299),
                        (800, 1500),
                        (SpecDim("规格", ("单只装", "一对装"), step=0.9),),
                        _HOME_BRANDS,
                        ("回弹好", "不塌陷", "透气防螨"),
                    ),
                    Leaf(
                        "毛巾",
                        ("毛巾", "浴巾"),
                        ("纯棉", "A类", "加厚"),
                        ("", "吸水不掉毛"),
                        (19, 69),
                        (100, 500),
                        (SpecDim("颜色", ("白色", "浅灰", "粉色", "蓝色"), pick=(2, 4)),),
                        _HOME_BRANDS,
                        ("柔软吸水", "不掉毛", "A类标准"),
                        tiered=True,
                    ),
                ),
            ),
            Branch(
                "收纳",
                (
                    Leaf(
                        "收纳箱",
                        ("收纳箱",),
                        ("可折叠", "透明", "带轮"),
                        ("", "衣物整理"),
                        (29, 129),
                        (800, 2000),
                        (SpecDim("规格", ("小号", "中号", "大号"), pick=(2, 3), step=0.3),),
                        _HOME_BRANDS,
                        ("可叠放", "防尘防潮", "大容量"),
                    ),
                    Leaf(
                        "衣架",
                        ("衣架",),
                        ("防滑", "无痕", "实木"),
                        ("", "家用"),
                        (15, 59),
                        (300, 900),
                        (SpecDim("规格", ("10只装", "20只装"), step=0.8),),
                        _HOME_BRANDS,
                        ("不鼓包", "承重强", "防滑不掉衣"),
                        tiered=True,
                    ),
                ),
            ),
            Branch(
                "厨具",
                (
                    Leaf(
                        "锅具",
                        ("炒锅", "不粘锅", "汤锅"),
                        ("麦饭石", "铸铁", "不锈钢"),
                        ("28cm", "30cm", "燃气电磁炉通用"),
                        (129, 699),
                        (1500, 3200),
                        (),
                        _HOME_BRANDS,
                        ("少油烟", "受热均匀", "不粘易洗"),
                    ),
                    Leaf(
                        "保温杯",
                        ("保温杯",),
                        ("316不锈钢", "大容量", "便携"),
                        ("", "长效保温"),
                        (59, 299),
                        (250, 450),
                        (
                            SpecDim("颜色", ("象牙白", "雾蓝", "墨黑", "樱粉"), pick=(2, 3)),
                            SpecDim("容量", ("350ml", "500ml"), step=0.15),
                        ),
                        _HOME_BRANDS,
                        ("12小时保温", "一键开盖", "防漏设计"),
                    ),
                ),
            ),
        ),
    ),
    Root(
        "母婴",
        (
            Branch(
                "喂养",
                (
                    Leaf(
                        "奶瓶",
                        ("奶瓶",),
                        ("宽口径", "PPSU", "玻璃", "防胀气"),
                        ("", "新生儿"),
                        (49, 199),
                        (100, 250),
                        (SpecDim("容量", ("160ml", "240ml"), step=0.1),),
                        _BABY_BRANDS,
                        ("防胀气", "耐高温", "仿母乳奶嘴"),
                    ),
                    Leaf(
                        "辅食",
                        ("米粉", "果泥"),
                        ("高铁", "有机", "无添加"),
                        ("", "6月+"),
                        (19, 69),
                        (150, 300),
                        (SpecDim("口味", ("原味", "南瓜", "胡萝卜", "苹果"), pick=(2, 4)),),
                        _BABY_BRANDS,
                        ("营养均衡", "易冲调", "无添加蔗糖"),
                        tiered=True,
                    ),
                ),
            ),
            Branch(
                "洗护",
                (
                    Leaf(
                        "纸尿裤",
                        ("纸尿裤", "拉拉裤"),
                        ("超薄透气", "夜用", "柔软"),
                        ("", "整箱装"),
                        (89, 199),
                        (1500, 2500),
                        (SpecDim("尺码", ("NB", "S", "M", "L", "XL"), pick=(3, 5)),),
                        _BABY_BRANDS,
                        ("干爽透气", "防侧漏", "柔软亲肤"),
                        tiered=True,
                    ),
                    Leaf(
                        "湿巾",
                        ("湿巾",),
                        ("手口", "无香", "加厚"),
                        ("", "婴儿可用"),
                        (19, 59),
                        (400, 1200),
                        (SpecDim("规格", ("80抽×3包", "80抽×10包"), step=2.5),),
                        _BABY_BRANDS,
                        ("EDI纯水", "加厚不易破", "温和无刺激"),
                        tiered=True,
                    ),
                    Leaf(
                        "婴儿洗护",
                        ("洗发沐浴露", "润肤乳"),
                        ("二合一", "温和", "植物"),
                        ("", "新生儿可用"),
                        (39, 159),
                        (250, 500),
                        (),
                        _BABY_BRANDS,
                        ("无泪配方", "温和低敏", "淡淡奶香"),
                    ),
                ),
            ),
            Branch(
                "童装",
                (
                    Leaf(
                        "儿童套装",
                        ("套装",),
                        ("纯棉儿童", "卡通", "运动"),
                        ("", "男童女童"),
                        (79, 259),
                        (250, 500),
                        (_KIDS_COLOURS, _KIDS_SIZES),
                        _BABY_BRANDS,
                        ("A类面料", "亲肤透气", "宽松不勒"),
                    ),
                    Leaf(
                        "儿童外套",
                        ("外套",),
                        ("儿童防风", "加绒", "连帽"),
                        ("", "秋冬"),
                        (129, 399),
                        (350, 800),
                        (_KIDS_COLOURS, _KIDS_SIZES),
                        _BABY_BRANDS,
                        ("保暖不臃肿", "防风面料", "耐脏"),
                    ),
                ),
            ),
        ),
    ),
    Root(
        "运动户外",
        (
            Branch(
                "健身",
                (
                    Leaf(
                        "瑜伽垫",
                        ("瑜伽垫",),
                        ("加厚防滑", "TPE", "天然橡胶"),
                        ("", "初学者"),
                        (49, 199),
                        (900, 2200),
                        (SpecDim("颜色", ("紫色", "灰色", "墨绿", "粉色"), pick=(2, 4)),),
                        _SPORT_BRANDS,
                        ("防滑回弹", "无异味", "附收纳带"),
                    ),
                    Leaf(
                        "哑铃",
                        ("哑铃",),
                        ("包胶", "可调节", "六角"),
                        ("", "家用健身"),
                        (59, 299),
                        (5000, 5600),
                        (SpecDim("重量", ("5kg", "10kg", "15kg"), pick=(2, 3), step=0.8),),
                        _SPORT_BRANDS,
                        ("防滑手柄", "静音包胶", "不伤地板"),
                    ),
                ),
            ),
            Branch(
                "户外",
                (
                    Leaf(
                        "帐篷",
                        ("帐篷",),
                        ("全自动速开", "露营", "防暴雨"),
                        ("3-4人", "2人"),
                        (199, 1299),
                        (2500, 4800),
                        (),
                        _SPORT_BRANDS,
                        ("一秒速开", "防晒防雨", "通风透气"),
                    ),
                    Leaf(
                        "登山包",
                        ("登山包", "双肩包"),
                        ("轻量", "大容量", "防泼水"),
                        ("", "徒步旅行"),
                        (159, 699),
                        (800, 1500),
                        (
                            SpecDim("颜色", ("黑色", "军绿", "橙色"), pick=(2, 3)),
                            SpecDim("容量", ("30L", "45L"), step=0.25),
                        ),
                        _SPORT_BRANDS,
                        ("背负透气", "多隔层", "防泼水面料"),
                    ),
                ),
            ),
        ),
    ),
)
