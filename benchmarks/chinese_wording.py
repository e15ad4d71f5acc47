"""Chinese captions of the benchmark's scenes, in simplified and traditional
characters: translations with paraphrase (several templates, synonyms per
word), written here independently of the reader's lexicon
(worker/embedded/lexicon.py), so a synonym the lexicon lacks costs the
reader. Used by benchmarks/embedded_quality.py and embedded_reading.py."""

from __future__ import annotations

import random

from worker.embedded import scenes

COLOURS = {
    "red": ["红色", "鲜红色", "红"],
    "green": ["绿色", "翠绿色"],
    "blue": ["蓝色", "深蓝色", "天蓝色"],
    "yellow": ["黄色", "金黄色"],
    "purple": ["紫色", "紫罗兰色"],
    "orange": ["橙色", "橘色"],
    "white": ["白色", "雪白色"],
    "black": ["黑色", "漆黑色"],
}
SHAPES = {
    "circle": ["圆形", "圆", "圆球", "圆盘"],
    "square": ["正方形", "方块", "方形"],
    "triangle": ["三角形", "三角"],
    "star": ["五角星", "星星", "星形"],
}
POSITIONS = {
    "centre": ["", "中间", "中央", "正中间"],
    "left": ["左边", "左侧"],
    "right": ["右边", "右侧"],
    "top": ["上方", "顶部"],
    "bottom": ["下方", "底部"],
    "top left": ["左上角", "左上方"],
    "top right": ["右上角", "右上方"],
    "bottom left": ["左下角", "左下方"],
    "bottom right": ["右下角", "右下方"],
}
SIZES = {"small": ["小", "小小的", "很小的"], "medium": [""], "large": ["大", "巨大的", "很大的"]}
# {o}: the object, {p}: its place (may be empty), {b}: the background colour.
TEMPLATES_PLACED = [
    "{b}背景上，{p}有一个{o}",
    "{p}有一个{o}，背景是{b}",
    "{o}在{p}，{b}背景",
    "在{b}的背景上{p}画一个{o}",
]
TEMPLATES_CENTRED = ["{b}背景上的{o}", "一个{o}，背景是{b}", "{o}，{b}背景", "在{b}的背景上画一个{o}"]
# Simplified → traditional for every character above that differs.
TRADITIONAL = str.maketrans(
    {
        "红": "紅", "绿": "綠", "蓝": "藍", "黄": "黃", "圆": "圓", "块": "塊", "边": "邊", "侧": "側",
        "间": "間", "个": "個", "罗": "羅", "兰": "蘭", "顶": "頂", "画": "畫", "鲜": "鮮", "盘": "盤",
    }
)  # fmt: skip


def _object(obj: scenes.SceneObject, rng: random.Random) -> str:
    size = rng.choice(SIZES[obj.size])
    colour = rng.choice(COLOURS[obj.colour])
    shape = rng.choice(SHAPES[obj.shape])
    joiner = "的" if rng.random() < 0.5 and not size.endswith("的") else ""
    return f"{size}{colour}{joiner}{shape}"


def simplified(scene: scenes.Scene, rng: random.Random) -> str:
    """A single-object scene in simplified Chinese, in one of several wordings."""
    [obj] = scene.objects
    place = rng.choice(POSITIONS[obj.position])
    background = rng.choice(COLOURS[scene.background])
    templates = TEMPLATES_PLACED if place else TEMPLATES_CENTRED
    return rng.choice(templates).format(o=_object(obj, rng), p=place, b=background)


def traditional(text: str) -> str:
    return text.translate(TRADITIONAL)


# Prompts outside the model's world, as users write them: the message must say so.
OUT_OF_WORLD = [
    "a lighthouse at dusk",
    "美丽的海洋风景",
    "光影交错的森林",
    "一只在沙发上睡觉的猫",
    "夕阳下的城市天际线",
    "a portrait of an old fisherman",
    "a cat sleeping on a sofa",
    "cyberpunk street at night, neon lights",
    "山水画",
    "un château dans la brume",
    "森林中的小木屋",
    "a bowl of ramen, studio lighting",
]
