"""Copies of a photo made the way sellers' photos are stolen, for measuring copyright search.

Each kind takes a PIL image and a `random.Random` and returns the copy as a PIL image; `make`
applies one kind by name, seeded by (kind, seed), and for the hard kinds then does what a
re-upload does: a resize to 50-100 % (seven times in ten) and a JPEG re-encode at quality
70-92. Nothing is fetched: text uses Debian's WenQuanYi Micro Hei (fonts-wqy-microhei, which
scripts/setup installs), else Pillow's own font.

Hard kinds (the ways infringers make copies):

* `crop`: 2-10 % cut off each of one to four sides (each side independently, at least one).
* `banner`: a price or promotion banner across the top or bottom, 10-20 % of the height,
  opaque or nearly, with text; sometimes a round price badge in a corner as well (together at
  most 20 % of the area).
* `watermark`: a shop's name or contact written over the photo in semi-transparent letters,
  once to three times, level or slanted (at most about 20 % of the area).
* `screenshot`: the photo inside a phone screenshot of a listing: a status bar, a title, a
  price, buttons, sometimes thumbnails, on a white, grey or dark page; the photo covers 50-85 %
  of the frame's area; saved as a phone screenshot's width (750 or 1080 px).
* `rotate`: turned by 1-5° either way, then either cut to the largest level rectangle inside
  (no corners show) or left with white or black corners.

Easy kinds: `resize` (to 30-80 %), `jpeg` (quality 30-70), `brightness` (±10-25 %), `mirror`
(left to right) and `grayscale`.
"""

from __future__ import annotations

import io
import math
import random
from collections.abc import Callable
from functools import lru_cache

from PIL import Image, ImageDraw, ImageEnhance, ImageFont, ImageOps

FONT_PATH = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
HARD_KINDS = ("crop", "banner", "watermark", "screenshot", "rotate")
EASY_KINDS = ("resize", "jpeg", "brightness", "mirror", "grayscale")
KINDS = HARD_KINDS + EASY_KINDS

crop_side_min, crop_side_max = 0.02, 0.10
banner_share_min, banner_share_max = 0.10, 0.20
screenshot_share_min, screenshot_share_max = 0.50, 0.85
rotation_deg_min, rotation_deg_max = 1.0, 5.0

_PRICES = (
    "¥199 包邮",
    "限时抢购 ¥89",
    "到手价 ¥1299",
    "双11 特价 ¥59",
    "SALE -50%",
    "Free shipping $19.99",
    "买一送一",
    "今日秒杀 ¥9.9",
)
_SHOPS = (
    "© 好物小店",
    "美美家旗舰店",
    "SHOP.EXAMPLE",
    "微信 shopgirl888",
    "正品保证",
    "@lucky_store",
)
_TITLES = ("商品详情", "Product details", "宝贝", "详情", "Item")


@lru_cache(maxsize=32)
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.truetype(FONT_PATH, size)
    except OSError:
        return ImageFont.load_default(size)


def jpeg(image: Image.Image, quality: int) -> Image.Image:
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=quality)
    out.seek(0)
    return Image.open(out).convert("RGB")


def _scaled(image: Image.Image, factor: float) -> Image.Image:
    width, height = image.size
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return image.resize(size, Image.Resampling.LANCZOS)


def crop(image: Image.Image, rng: random.Random) -> Image.Image:
    width, height = image.size
    sides = [side for side in "ltrb" if rng.random() < 0.5] or [rng.choice("ltrb")]
    cut = {
        side: rng.uniform(crop_side_min, crop_side_max) if side in sides else 0.0 for side in "ltrb"
    }
    box = (
        round(width * cut["l"]),
        round(height * cut["t"]),
        width - round(width * cut["r"]),
        height - round(height * cut["b"]),
    )
    return image.crop(box)


def _random_colour(rng: random.Random) -> tuple[int, int, int]:
    return (rng.randrange(256), rng.randrange(256), rng.randrange(256))


def banner(image: Image.Image, rng: random.Random) -> Image.Image:
    copy = image.convert("RGB")
    width, height = copy.size
    draw = ImageDraw.Draw(copy, "RGBA")
    share = rng.uniform(banner_share_min, banner_share_max)
    badge = rng.random() < 0.4
    if badge:
        share = max(banner_share_min, share - 0.05)
    band = round(height * share)
    top = 0 if rng.random() < 0.5 else height - band
    draw.rectangle((0, top, width, top + band), fill=(*_random_colour(rng), rng.choice((255, 230))))
    letters = font(max(10, int(band * 0.55)))
    text_colour = (255, 255, 255, 255) if rng.random() < 0.7 else (20, 20, 20, 255)
    draw.text(
        (width * rng.uniform(0.03, 0.2), top + band * 0.18),
        rng.choice(_PRICES),
        fill=text_colour,
        font=letters,
    )
    if badge:  # about 4 % of the area: a circle of radius r covers pi r^2
        radius = round(math.sqrt(0.04 * width * height / math.pi))
        x = radius + 4 if rng.random() < 0.5 else width - radius - 4
        y = height - radius - 4 if top == 0 else radius + 4
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=(230, 30, 30, 255))
        draw.text(
            (x - radius * 0.7, y - radius * 0.3),
            "¥" + str(rng.randrange(9, 999)),
            fill=(255, 255, 255, 255),
            font=font(max(8, radius // 2)),
        )
    return copy


def watermark(image: Image.Image, rng: random.Random) -> Image.Image:
    base = image.convert("RGBA")
    width, height = base.size
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    text = rng.choice(_SHOPS)
    letters = font(max(12, int(min(width, height) * rng.uniform(0.06, 0.10))))
    alpha = rng.randrange(90, 180)
    lines = rng.choice((1, 2, 3))
    for line in range(lines):
        x = rng.uniform(0.05, 0.4) * width
        y = (
            (line + 1) / (lines + 1) * height - letters.size / 2
            if hasattr(letters, "size")
            else height / 2
        )
        draw.text(
            (x, y),
            text,
            fill=(255, 255, 255, alpha),
            font=letters,
            stroke_width=1,
            stroke_fill=(0, 0, 0, alpha // 2),
        )
    if rng.random() < 0.5:
        layer = layer.rotate(rng.uniform(-30, 30), resample=Image.Resampling.BICUBIC)
    return Image.alpha_composite(base, layer).convert("RGB")


def screenshot(image: Image.Image, rng: random.Random) -> Image.Image:
    photo = image.convert("RGB")
    screen_width = rng.choice((750, 1080))
    share = rng.uniform(screenshot_share_min, screenshot_share_max)
    # The photo spans the screen's width less a margin, and the frame's height makes the share.
    margin = rng.choice((0, 0, 16, 32))
    photo = _scaled(photo, (screen_width - 2 * margin) / photo.width)
    frame_height = max(photo.height, round(photo.width * photo.height / share / screen_width))
    dark = rng.random() < 0.2
    page = (24, 24, 24) if dark else rng.choice(((255, 255, 255), (245, 245, 245), (250, 244, 236)))
    ink = (235, 235, 235) if dark else (30, 30, 30)
    frame = Image.new("RGB", (screen_width, frame_height), page)
    spare = frame_height - photo.height
    top = rng.randrange(0, spare + 1) if spare else 0
    frame.paste(photo, (margin, top))
    draw = ImageDraw.Draw(frame)
    letters = font(max(14, screen_width // 28))
    size = letters.size if hasattr(letters, "size") else 14
    if top >= size * 2:  # a status bar and a title above the photo
        draw.text((16, 6), "12:30", fill=ink, font=letters)
        draw.text((screen_width - size * 5, 6), "5G 87%", fill=ink, font=letters)
        draw.text(
            (screen_width // 2 - size * 2, top - size * 1.4),
            rng.choice(_TITLES),
            fill=ink,
            font=letters,
        )
    below = top + photo.height
    if frame_height - below >= size * 2:  # a price, buttons and maybe thumbnails below it
        draw.text((16, below + size * 0.4), rng.choice(_PRICES), fill=(220, 30, 30), font=letters)
        button_top = frame_height - size * 1.8
        if button_top > below + size * 1.6:
            draw.rectangle(
                (screen_width * 0.55, button_top, screen_width - 16, frame_height - 8),
                fill=(255, 80, 0),
            )
            draw.rectangle(
                (screen_width * 0.1, button_top, screen_width * 0.5, frame_height - 8),
                fill=(255, 180, 0),
            )
        thumb = round(size * 2.4)
        if frame_height - below >= size * 2 + thumb + size * 2.2:
            for index in range(4):
                x = 16 + index * (thumb + 12)
                colour = _random_colour(rng)
                draw.rectangle(
                    (x, below + size * 1.8, x + thumb, below + size * 1.8 + thumb), fill=colour
                )
    return frame


def rotate(image: Image.Image, rng: random.Random) -> Image.Image:
    angle = rng.uniform(rotation_deg_min, rotation_deg_max) * rng.choice((-1, 1))
    photo = image.convert("RGB")
    if rng.random() < 0.5:
        turned = photo.rotate(angle, resample=Image.Resampling.BICUBIC, expand=False)
        width, height = photo.size
        keep_width, keep_height = _inscribed(width, height, math.radians(abs(angle)))
        left, top = (width - keep_width) / 2, (height - keep_height) / 2
        return turned.crop(
            (round(left), round(top), round(left + keep_width), round(top + keep_height))
        )
    fill = rng.choice(((255, 255, 255), (0, 0, 0)))
    return photo.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=fill)


def _inscribed(width: int, height: int, angle: float) -> tuple[float, float]:
    """The largest level rectangle inside a width x height rectangle turned by `angle`."""
    long_side, short_side = max(width, height), min(width, height)
    sin, cos = abs(math.sin(angle)), abs(math.cos(angle))
    if short_side <= 2 * sin * cos * long_side or abs(sin - cos) < 1e-10:
        half = 0.5 * short_side
        x, y = (half / sin, half / cos) if width >= height else (half / cos, half / sin)
    else:
        cos_2a = cos * cos - sin * sin
        x, y = (width * cos - height * sin) / cos_2a, (height * cos - width * sin) / cos_2a
    return x, y


def resize(image: Image.Image, rng: random.Random) -> Image.Image:
    return _scaled(image, rng.uniform(0.3, 0.8))


def jpeg_low(image: Image.Image, rng: random.Random) -> Image.Image:
    return jpeg(image, rng.randrange(30, 71))


def brightness(image: Image.Image, rng: random.Random) -> Image.Image:
    change = rng.uniform(0.10, 0.25) * rng.choice((-1, 1))
    return ImageEnhance.Brightness(image.convert("RGB")).enhance(1 + change)


def mirror(image: Image.Image, rng: random.Random) -> Image.Image:
    return ImageOps.mirror(image.convert("RGB"))


def grayscale(image: Image.Image, rng: random.Random) -> Image.Image:
    return ImageOps.grayscale(image).convert("RGB")


MAKERS: dict[str, Callable[[Image.Image, random.Random], Image.Image]] = {
    "crop": crop,
    "banner": banner,
    "watermark": watermark,
    "screenshot": screenshot,
    "rotate": rotate,
    "resize": resize,
    "jpeg": jpeg_low,
    "brightness": brightness,
    "mirror": mirror,
    "grayscale": grayscale,
}


def make(image: Image.Image, kind: str, seed: object) -> Image.Image:
    """The copy of `kind`, the same for the same image and seed."""
    rng = random.Random(f"xinchain-copy/{kind}/{seed}")
    copy = MAKERS[kind](image.convert("RGB"), rng)
    if kind in HARD_KINDS:
        if rng.random() < 0.7:
            copy = _scaled(copy, rng.uniform(0.5, 1.0))
        return jpeg(copy, rng.randrange(70, 93))
    return copy if kind == "jpeg" else jpeg(copy, 90)
