"""The embedded model's vocabulary in several languages: every word the
prompt reader (worker/embedded/reading.py) looks up exactly, and the anchors
the multilingual encoder compares unknown words against.

English comes from worker/embedded/scenes.py (the words the model was
trained on); the other languages are direct translations of the same
concepts, written by hand, a few per concept. They are not meant to be
complete: a word missing here is still read when the multilingual sentence
encoder finds it close enough to one of these (`reading.ENCODER_MIN_SIMILARITY`).
"""

from __future__ import annotations

from worker.embedded import scenes

# Kinds of entry: an attribute (colour, shape, position, size), or a marker
# that tells how the attributes group ("background", "on", "and").
COLOUR, SHAPE, POSITION, SIZE = "colour", "shape", "position", "size"
BACKGROUND, ON, AND = "background", "on", "and"
ATTRIBUTE_KINDS = (COLOUR, SHAPE, POSITION, SIZE)

Entry = tuple[str, str]  # (kind, value), e.g. ("colour", "red"), ("background", "")

_TRANSLATIONS: dict[Entry, tuple[str, ...]] = {
    # Chinese (simplified, then traditional where it differs), Japanese, French, German, Spanish.
    (COLOUR, "red"): ("红色", "红", "紅色", "紅", "赤", "赤い", "rouge", "rot", "rojo", "roja"),
    (COLOUR, "green"): ("绿色", "绿", "綠色", "綠", "緑", "緑色", "vert", "verte", "grün", "verde"),
    (COLOUR, "blue"): ("蓝色", "蓝", "藍色", "藍", "青", "青い", "bleu", "bleue", "blau", "azul"),
    (COLOUR, "yellow"): ("黄色", "黄", "黃色", "黃", "jaune", "gelb", "amarillo", "amarilla"),
    (COLOUR, "purple"): ("紫色", "紫", "violet", "violette", "lila", "morado", "morada"),
    (COLOUR, "orange"): ("橙色", "橙", "橘色", "オレンジ", "orangé", "naranja"),
    (COLOUR, "white"): ("白色", "白", "白い", "blanc", "blanche", "weiß", "weiss", "blanco", "blanca"),
    (COLOUR, "black"): ("黑色", "黑", "黒", "黒い", "noir", "noire", "schwarz", "negro", "negra"),
    (SHAPE, "circle"): (
        "圆形",
        "圆",
        "圆圈",
        "圓形",
        "圓",
        "圓圈",
        "球",
        "圆球",
        "圓球",
        "圆点",
        "圓點",
        "圆盘",
        "圓盤",
        "円",
        "丸",
        "cercle",
        "kreis",
        "círculo",
        "circulo",
    ),
    (SHAPE, "square"): (
        "正方形",
        "方形",
        "方块",
        "方塊",
        "盒子",
        "方框",
        "四角",
        "四角形",
        "carré",
        "quadrat",
        "cuadrado",
    ),
    (SHAPE, "triangle"): ("三角形", "三角", "金字塔", "dreieck", "triángulo", "triangulo"),
    (SHAPE, "star"): ("星形", "星星", "星", "五角星", "étoile", "stern", "estrella"),
    (SIZE, "small"): (
        "小",
        "小的",
        "小小的",
        "小さい",
        "小さな",
        "petit",
        "petite",
        "klein",
        "kleiner",
        "pequeño",
        "pequeña",
    ),
    (SIZE, "large"): ("大", "大的", "大きい", "大きな", "grand", "grande", "groß", "gross", "großer"),
    (POSITION, "top"): ("上方", "上面", "上边", "上邊", "顶部", "頂部", "上部", "haut", "oben", "arriba"),
    (POSITION, "bottom"): ("下方", "下面", "下边", "下邊", "底部", "下部", "bas", "unten", "abajo"),
    (POSITION, "left"): ("左", "左边", "左邊", "左侧", "左側", "左方", "gauche", "links", "izquierda"),
    (POSITION, "right"): ("右", "右边", "右邊", "右侧", "右側", "右方", "droite", "rechts", "derecha"),
    (POSITION, "centre"): ("中间", "中間", "中央", "中心", "正中", "centre", "mitte", "centro"),
    (POSITION, "top left"): ("左上角", "左上", "左上方"),
    (POSITION, "top right"): ("右上角", "右上", "右上方"),
    (POSITION, "bottom left"): ("左下角", "左下", "左下方"),
    (POSITION, "bottom right"): ("右下角", "右下", "右下方"),
    (BACKGROUND, ""): ("背景", "底色", "底", "fond", "hintergrund", "fondo"),
    (ON, ""): ("上", "sur", "auf", "sobre"),
    (AND, ""): ("和", "与", "與", "跟", "以及", "及", "と", "et", "und"),
}

# English words beyond scenes.py's caption vocabulary that plainly name the same things.
_ENGLISH_EXTRA: dict[Entry, tuple[str, ...]] = {
    (POSITION, "top"): ("top", "upper", "above"),
    (POSITION, "bottom"): ("bottom", "lower", "below"),
    (POSITION, "left"): ("left",),
    (POSITION, "right"): ("right",),
    (POSITION, "centre"): ("centre", "center", "middle"),
    (SIZE, "large"): ("large", "big", "huge"),
    (BACKGROUND, ""): ("background", "backdrop"),
    (ON, ""): ("on", "over", "against"),
    (AND, ""): ("and",),
}

# Words that carry no attribute in any language: never looked up in the encoder
# (short function words are close to everything in a sentence encoder).
STOPWORDS = frozenset(
    "a an the one of with in at to is are there some near next beside by from for side edge corner shape coloured colored colour color "
    "un une le la les des de du et à au en dans ein eine einer einem der die das den dem im am mit "
    "el los las una del con".split()
    + list("的一个個是有在里裡之了")
    + ["一个", "一個", "有一个", "有一個", "の", "に", "が", "は", "を", "で"]
)


def _english() -> dict[Entry, list[str]]:
    words: dict[Entry, list[str]] = {}
    for colour, names in scenes.COLOUR_WORDS.items():
        words[(COLOUR, colour)] = list(names)
    for shape, names in scenes.SHAPE_WORDS.items():
        words[(SHAPE, shape)] = list(names)
    for size, names in scenes.SIZE_WORDS.items():
        if any(names):
            words[(SIZE, size)] = [n for n in names if n]
    for entry, names in _ENGLISH_EXTRA.items():
        words.setdefault(entry, [])
        words[entry] += [n for n in names if n not in words[entry]]
    return words


def build() -> tuple[dict[str, Entry], dict[str, bool]]:
    """Every written form → its entry, and → whether it is English (the model's own words)."""
    table: dict[str, Entry] = {}
    english: dict[str, bool] = {}
    for entry, names in _english().items():
        for name in names:
            table[name.lower()] = entry
            english[name.lower()] = True
    for entry, names in _TRANSLATIONS.items():
        for name in names:
            key = name.lower()
            if key not in table:  # "orange", "violet", "centre" are English already
                table[key] = entry
                english[key] = False
    return table, english


LEXICON, IS_ENGLISH = build()
LONGEST_ENTRY_UNITS = 3  # "five-pointed star" is two words; 小小的, 左上角 three characters
