"""A labelled set of generated product photos and the transformed copies a search must find.

Nothing is fetched: every image is drawn here from a seed, so the set is the same on every
machine and every run (same Pillow, same bytes).

Images (`generate_images(count, seed)`): each looks like a seller's product photo, not like
noise. Image `index` is drawn from its own `random.Random(f"xinchain-image-set/{seed}/{index}")`,
so adding images never changes earlier ones.

* Size: width and height drawn independently from 300-800 px (square, portrait and landscape).
* Background (`Photo.background`): about a third are a plain studio white (the commonest real
  case, and the one that makes unrelated photos look alike to a perceptual hash); the rest are a
  plain colour, a linear or radial gradient, a texture (smoothed noise, wood grain, linen), a
  pattern (stripes, checks, dots, tiles) or a split (wall and table, or a two-tone backdrop).
* Products (`Photo.products`): one to three of bottle, box, jar, shoe, can, tube, mug and
  shopping bag, standing on a common ground line at a random height and horizontal offset,
  30-85 % of the image height, each with a soft shadow, shading and highlights, and label bands,
  brand names and sizes written in Pillow's default font. They are drawn at twice the size and
  reduced, which antialiases their edges.
* Sometimes an e-commerce overlay: a promotion banner across the top or bottom, a round price
  badge, or a faint shop watermark.
* A light sensor grain (Gaussian, sigma 2 levels), then JPEG at quality `jpeg_quality` (92).

Transforms, each taking an image file's bytes and returning JPEG bytes (quality 92 unless
stated; chroma subsampling is Pillow's default 4:2:0):

* `resize_half`: width and height halved (rounded to the nearest pixel, at least 1), Lanczos.
* `jpeg_q60`: decoded and re-encoded at JPEG quality 60, size unchanged.
* `crop_5`: keeps a window of round(95 % of the width) by round(95 % of the height) pixels,
  so 5 % of the width and 5 % of the height are removed in total; the window's left and top
  edges are drawn uniformly (whole pixels) from the positions that keep it inside the image,
  from the `random.Random` passed in, so the cut is split unevenly between opposite sides and
  is rarely centred.
* `brightness_up`: every channel of every pixel multiplied by 1.10 and clipped to 255
  (`PIL.ImageEnhance.Brightness(1.10)`); white stays white.
* `brightness_down`: every channel multiplied by 0.90 (`ImageEnhance.Brightness(0.90)`).
* `flip`: mirrored left to right (`PIL.ImageOps.mirror`).

`copies(data, seed)` applies all six; `crop_5` gets `random.Random(f"xinchain-crop/{seed}")`.
"""

from __future__ import annotations

import colorsys
import functools
import io
import math
import random
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

# Sides of generated images, in pixels: the range of photos sellers upload at small sizes.
side_px_min = 300
side_px_max = 800
# JPEG quality of generated images and of transformed copies (except `jpeg_q60`): a typical
# camera or export setting.
jpeg_quality = 92
# Products are drawn at this multiple of the final size and reduced, to antialias their edges.
supersample = 2
# Standard deviation of the sensor grain added to every image, in 8-bit levels.
grain_sigma = 2.0

crop_keep = 0.95
brightness_up_factor = 1.10
brightness_down_factor = 0.90

Color = tuple[int, int, int]
Box = tuple[float, float, float, float]

_SYLLABLES = (
    "ka",
    "lo",
    "mi",
    "ne",
    "ro",
    "su",
    "ta",
    "vi",
    "zen",
    "xi",
    "an",
    "qu",
    "li",
    "ya",
    "mo",
    "bel",
    "cor",
    "dia",
    "fe",
    "gra",
    "hu",
    "jo",
    "lux",
    "nor",
    "pu",
    "ri",
    "sol",
    "tek",
    "ve",
)
_SIZES = ("500 ml", "250 ml", "1 L", "330 ml", "75 g", "200 g", "1 kg", "50 ml", "12 oz", "30 pcs")
_CLAIMS = ("ORGANIC", "NATURAL", "FRESH", "PREMIUM", "CLASSIC", "ORIGINAL", "LIGHT", "PURE")
_PROMOTIONS = ("NEW ARRIVAL", "HOT SALE", "FREE SHIPPING", "BEST SELLER", "LIMITED", "2 FOR 1")
_BADGES = ("-30%", "-50%", "NEW", "SALE", "HOT", "$9.9", "$59", "-20%")


@dataclass(frozen=True)
class Photo:
    """One generated image: its JPEG bytes and what was drawn (the set's labels)."""

    index: int
    data: bytes
    width: int
    height: int
    background: str
    products: tuple[str, ...]


@functools.lru_cache(maxsize=64)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=max(6, size))


def _hsv(hue: float, saturation: float, value: float) -> Color:
    red, green, blue = colorsys.hsv_to_rgb(hue % 1.0, saturation, value)
    return (round(red * 255), round(green * 255), round(blue * 255))


def _random_color(rng: random.Random) -> Color:
    style = rng.random()
    if style < 0.3:  # pastel
        return _hsv(rng.random(), rng.uniform(0.1, 0.35), rng.uniform(0.85, 1.0))
    if style < 0.6:  # saturated
        return _hsv(rng.random(), rng.uniform(0.55, 1.0), rng.uniform(0.5, 0.95))
    if style < 0.8:  # dark
        return _hsv(rng.random(), rng.uniform(0.2, 0.8), rng.uniform(0.12, 0.4))
    grey = rng.randint(30, 240)  # neutral
    return (grey, grey, grey)


def _shade(color: Color, factor: float) -> Color:
    """Darker below 1, lighter (towards white) above 1."""
    if factor <= 1:
        return (round(color[0] * factor), round(color[1] * factor), round(color[2] * factor))
    mix = min(1.0, factor - 1)
    return (
        round(color[0] + (255 - color[0]) * mix),
        round(color[1] + (255 - color[1]) * mix),
        round(color[2] + (255 - color[2]) * mix),
    )


def _contrast(color: Color) -> Color:
    luma = 0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2]
    return (20, 20, 24) if luma > 140 else (245, 245, 240)


def _brand(rng: random.Random) -> str:
    word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 3)))
    return word.upper() if rng.random() < 0.6 else word.capitalize()


# Backgrounds: each returns an RGB float array (height, width, 3) in 0-255.


def _grid(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    return ys, xs


def _fill(width: int, height: int, color: Color) -> np.ndarray:
    return np.broadcast_to(np.array(color, np.float32), (height, width, 3)).copy()


def _blend(first: np.ndarray, second: np.ndarray, weight: np.ndarray) -> np.ndarray:
    blended: np.ndarray = first + (second - first) * weight[..., None]
    return blended


def _smooth_noise(np_rng: np.random.Generator, width: int, height: int, cell: int) -> np.ndarray:
    """Value noise in 0-1: random values on a coarse grid, upscaled bicubically."""
    coarse = np_rng.random((max(2, height // cell + 2), max(2, width // cell + 2)))
    image = Image.fromarray((coarse * 255).astype(np.uint8), "L")
    image = image.resize((width, height), Image.Resampling.BICUBIC)
    return np.asarray(image, np.float32) / 255


def _background_white(rng: random.Random, width: int, height: int) -> np.ndarray:
    level = rng.choice((255, 255, 255, 252, 248))
    array = _fill(width, height, (level, level, level))
    if rng.random() < 0.3:  # a studio sweep: a faint grey towards the bottom
        ys, _ = _grid(width, height)
        array -= (ys / height)[..., None] ** 2 * rng.uniform(6, 18)
    return array


def _background_plain(rng: random.Random, width: int, height: int) -> np.ndarray:
    return _fill(width, height, _random_color(rng))


def _background_gradient(rng: random.Random, width: int, height: int) -> np.ndarray:
    first, second = _random_color(rng), _random_color(rng)
    ys, xs = _grid(width, height)
    if rng.random() < 0.3:
        center_x, center_y = width * rng.uniform(0.3, 0.7), height * rng.uniform(0.3, 0.7)
        radius = math.hypot(width, height) * rng.uniform(0.4, 0.8)
        weight = np.clip(np.hypot(xs - center_x, ys - center_y) / radius, 0, 1)
    else:
        angle = rng.uniform(0, 2 * math.pi)
        projection = xs * math.cos(angle) + ys * math.sin(angle)
        weight = (projection - projection.min()) / max(1e-6, float(np.ptp(projection)))
    return _blend(_fill(width, height, first), _fill(width, height, second), weight)


def _background_texture(rng: random.Random, width: int, height: int) -> np.ndarray:
    np_rng = np.random.default_rng(rng.getrandbits(64))
    base = _random_color(rng)
    kind = rng.choice(("concrete", "wood", "linen"))
    if kind == "concrete":
        noise = _smooth_noise(np_rng, width, height, rng.randint(12, 40))
        noise = 0.7 * noise + 0.3 * _smooth_noise(np_rng, width, height, 4)
        weight = (noise - 0.5) * rng.uniform(0.4, 0.9)
    elif kind == "wood":
        base = _hsv(rng.uniform(0.05, 0.11), rng.uniform(0.35, 0.7), rng.uniform(0.45, 0.85))
        ys, xs = _grid(width, height)
        warp = _smooth_noise(np_rng, width, height, 60) * rng.uniform(20, 60)
        along = ys if rng.random() < 0.5 else xs
        weight = 0.25 * np.sin((along + warp) / rng.uniform(3, 9)) + 0.15 * (
            _smooth_noise(np_rng, width, height, 8) - 0.5
        )
    else:
        ys, xs = _grid(width, height)
        period = rng.uniform(2.5, 5)
        weight = 0.08 * (np.sin(xs / period) * np.sin(ys / period)) + 0.2 * (
            _smooth_noise(np_rng, width, height, 30) - 0.5
        )
    return _fill(width, height, base) * (1 + weight[..., None])


def _background_pattern(rng: random.Random, width: int, height: int) -> np.ndarray:
    first = _random_color(rng)
    second = (
        _shade(first, rng.choice((0.8, 0.9, 1.25, 1.5)))
        if rng.random() < 0.6
        else (_random_color(rng))
    )
    ys, xs = _grid(width, height)
    period = rng.uniform(14, 60)
    kind = rng.choice(("stripes", "checks", "dots", "tiles"))
    if kind == "stripes":
        angle = rng.choice((0, math.pi / 4, math.pi / 2, 3 * math.pi / 4))
        projection = xs * math.cos(angle) + ys * math.sin(angle)
        weight = ((projection / period) % 1 < rng.uniform(0.3, 0.6)).astype(np.float32)
    elif kind == "checks":
        weight = ((np.floor(xs / period) + np.floor(ys / period)) % 2).astype(np.float32)
    elif kind == "dots":
        radius = period * rng.uniform(0.12, 0.35)
        distance = np.hypot((xs % period) - period / 2, (ys % period) - period / 2)
        weight = (distance < radius).astype(np.float32)
    else:
        grout = max(1.5, period * 0.06)
        weight = (((xs % period) < grout) | ((ys % period) < grout)).astype(np.float32)
    return _blend(_fill(width, height, first), _fill(width, height, second), weight)


def _background_split(rng: random.Random, width: int, height: int) -> np.ndarray:
    wall = _random_color(rng)
    table = _shade(wall, rng.uniform(0.55, 0.85)) if rng.random() < 0.5 else _random_color(rng)
    ys, xs = _grid(width, height)
    if rng.random() < 0.7:  # a wall meeting a table
        edge, along, size = rng.uniform(0.5, 0.78) * height, ys, height
    else:  # a two-tone backdrop
        edge, along, size = rng.uniform(0.3, 0.7) * width, xs, width
    softness = size * rng.uniform(0.002, 0.03)
    weight = 1 / (1 + np.exp(np.clip((edge - along) / softness, -60, 60)))
    return _blend(_fill(width, height, wall), _fill(width, height, table), weight)


_BACKGROUNDS: tuple[tuple[str, float, Callable[[random.Random, int, int], np.ndarray]], ...] = (
    ("white", 0.34, _background_white),
    ("plain", 0.12, _background_plain),
    ("gradient", 0.14, _background_gradient),
    ("texture", 0.14, _background_texture),
    ("pattern", 0.12, _background_pattern),
    ("split", 0.14, _background_split),
)


# Products: each draws into `box` (left, top, right, bottom) of the supersampled layer.


def _text_centered(
    draw: ImageDraw.ImageDraw, center: tuple[float, float], text: str, size: int, fill: Color
) -> None:
    draw.text(center, text, font=_font(size), fill=fill, anchor="mm")


def _label(
    draw: ImageDraw.ImageDraw, rng: random.Random, box: Box, body: Color, brand: str
) -> None:
    """A label band across `box` with a brand, a claim and a size."""
    left, top, right, bottom = box
    color = _random_color(rng) if rng.random() < 0.7 else _shade(body, 1.6)
    draw.rectangle(box, fill=color)
    if rng.random() < 0.5:  # an accent stripe
        stripe = top + (bottom - top) * rng.uniform(0.05, 0.2)
        draw.rectangle(
            (left, stripe, right, stripe + (bottom - top) * 0.08), fill=_random_color(rng)
        )
    ink = _contrast(color)
    width, height = right - left, bottom - top
    size = int(min(height * 0.32, width / max(3, len(brand)) * 1.7))
    _text_centered(draw, ((left + right) / 2, top + height * 0.45), brand, size, ink)
    small = max(6, int(size * 0.42))
    if rng.random() < 0.7:
        _text_centered(
            draw, ((left + right) / 2, top + height * 0.78), rng.choice(_SIZES), small, ink
        )
    if rng.random() < 0.5:
        _text_centered(
            draw, ((left + right) / 2, top + height * 0.15), rng.choice(_CLAIMS), small, ink
        )


def _cylinder_shading(draw: ImageDraw.ImageDraw, rng: random.Random, box: Box, body: Color) -> None:
    """A highlight down the left of a round body and a shadow down its right."""
    left, top, right, bottom = box
    width = right - left
    position = rng.uniform(0.15, 0.35)
    draw.rectangle(
        (left + width * position, top, left + width * (position + 0.08), bottom),
        fill=(*_shade(body, 1.5), 110),
    )
    draw.rectangle((right - width * 0.14, top, right, bottom), fill=(*_shade(body, 0.7), 120))


def _draw_bottle(draw: ImageDraw.ImageDraw, rng: random.Random, box: Box) -> None:
    left, top, right, bottom = box
    width, height = right - left, bottom - top
    body = _random_color(rng)
    cap = _random_color(rng) if rng.random() < 0.7 else (30, 30, 30)
    center = (left + right) / 2
    neck_half = width * rng.uniform(0.14, 0.22)
    cap_bottom = top + height * rng.uniform(0.07, 0.13)
    neck_bottom = cap_bottom + height * rng.uniform(0.06, 0.16)
    shoulder_bottom = neck_bottom + height * rng.uniform(0.06, 0.16)
    draw.rectangle((center - neck_half * 1.1, top, center + neck_half * 1.1, cap_bottom), fill=cap)
    draw.rectangle((center - neck_half, cap_bottom, center + neck_half, neck_bottom), fill=body)
    draw.polygon(
        [
            (center - neck_half, neck_bottom),
            (center + neck_half, neck_bottom),
            (right, shoulder_bottom),
            (left, shoulder_bottom),
        ],
        fill=body,
    )
    draw.rounded_rectangle((left, shoulder_bottom - 1, right, bottom), width * 0.12, fill=body)
    _cylinder_shading(draw, rng, (left, shoulder_bottom, right, bottom), body)
    label_top = shoulder_bottom + (bottom - shoulder_bottom) * rng.uniform(0.12, 0.3)
    label_bottom = label_top + (bottom - shoulder_bottom) * rng.uniform(0.35, 0.55)
    _label(draw, rng, (left, label_top, right, label_bottom), body, _brand(rng))


def _draw_box(draw: ImageDraw.ImageDraw, rng: random.Random, box: Box) -> None:
    left, top, right, bottom = box
    width = right - left
    depth = width * rng.uniform(0.08, 0.22)
    body = _random_color(rng)
    front = (left, top + depth, right - depth, bottom)
    draw.polygon(
        [(left, top + depth), (left + depth, top), (right, top), (right - depth, top + depth)],
        fill=_shade(body, 1.3),
    )
    draw.polygon(
        [
            (right - depth, top + depth),
            (right, top),
            (right, bottom - depth),
            (right - depth, bottom),
        ],
        fill=_shade(body, 0.7),
    )
    draw.rectangle(front, fill=body)
    front_height = bottom - top - depth
    band_top = top + depth + front_height * rng.uniform(0.05, 0.45)
    band = (left, band_top, right - depth, band_top + front_height * rng.uniform(0.2, 0.4))
    _label(draw, rng, band, body, _brand(rng))
    if rng.random() < 0.6:  # a logo disc or a picture window
        radius = (right - depth - left) * rng.uniform(0.08, 0.18)
        center_x = left + (right - depth - left) * rng.uniform(0.25, 0.75)
        center_y = bottom - front_height * 0.18
        draw.ellipse(
            (center_x - radius, center_y - radius, center_x + radius, center_y + radius),
            fill=_random_color(rng),
        )


def _draw_jar(draw: ImageDraw.ImageDraw, rng: random.Random, box: Box) -> None:
    left, top, right, bottom = box
    width, height = right - left, bottom - top
    body = _random_color(rng)
    lid = _random_color(rng)
    lid_bottom = top + height * rng.uniform(0.12, 0.22)
    inset = width * rng.uniform(0.03, 0.1)
    draw.rounded_rectangle((left + inset, top, right - inset, lid_bottom), width * 0.04, fill=lid)
    for ridge in range(1, 12):  # grip ridges on the lid
        x = left + inset + (width - 2 * inset) * ridge / 12
        draw.line((x, top + 2, x, lid_bottom - 2), fill=_shade(lid, 0.75), width=2)
    draw.rounded_rectangle((left, lid_bottom - 2, right, bottom), width * 0.1, fill=body)
    _cylinder_shading(draw, rng, (left, lid_bottom, right, bottom), body)
    band_top = lid_bottom + (bottom - lid_bottom) * rng.uniform(0.15, 0.3)
    band_bottom = band_top + (bottom - lid_bottom) * rng.uniform(0.4, 0.6)
    _label(draw, rng, (left, band_top, right, band_bottom), body, _brand(rng))


def _draw_shoe(draw: ImageDraw.ImageDraw, rng: random.Random, box: Box) -> None:
    left, top, right, bottom = box
    width, height = right - left, bottom - top
    upper = _random_color(rng)
    sole = (245, 245, 245) if rng.random() < 0.6 else _random_color(rng)
    sole_top = bottom - height * rng.uniform(0.16, 0.26)
    toe_x = right - width * 0.02
    collar_y = top + height * rng.uniform(0.05, 0.2)
    tongue_x = left + width * rng.uniform(0.35, 0.5)
    outline = [
        (left + width * 0.02, sole_top),
        (left, collar_y + height * 0.1),
        (left + width * 0.06, collar_y),
        (left + width * 0.24, collar_y + height * 0.12),
        (tongue_x, top),
        (tongue_x + width * 0.08, top + height * 0.08),
        (right - width * 0.22, sole_top - height * 0.36),
        (toe_x, sole_top - height * 0.1),
        (toe_x, sole_top),
    ]
    if rng.random() < 0.5:  # facing left instead of right
        outline = [(left + right - x, y) for x, y in outline]
    draw.polygon(outline, fill=upper)
    draw.rounded_rectangle((left, sole_top, right, bottom), height * 0.08, fill=sole)
    draw.line(
        (left, sole_top + (bottom - sole_top) * 0.35, right, sole_top + (bottom - sole_top) * 0.35),
        fill=_shade(sole, 0.8),
        width=3,
    )
    accent = _random_color(rng)
    facing_right = outline[0][0] < outline[-1][0]
    sign = 1 if facing_right else -1
    start_x = left + width * 0.2 if facing_right else right - width * 0.2
    draw.polygon(
        [
            (start_x, sole_top - height * 0.06),
            (start_x + sign * width * 0.55, sole_top - height * 0.32),
            (start_x + sign * width * 0.42, sole_top - height * 0.12),
        ],
        fill=accent,
    )
    lace_color = _contrast(upper)
    for lace in range(4):  # laces along the instep
        fraction = 0.15 + lace * 0.18
        x0, y0 = outline[4]
        x1, y1 = outline[6]
        x, y = x0 + (x1 - x0) * fraction, y0 + (y1 - y0) * fraction
        draw.line(
            (x - width * 0.03, y + height * 0.02, x + width * 0.03, y - height * 0.02),
            fill=lace_color,
            width=4,
        )


def _draw_can(draw: ImageDraw.ImageDraw, rng: random.Random, box: Box) -> None:
    left, top, right, bottom = box
    width = right - left
    body = _random_color(rng)
    rim = width * 0.12
    metal = (200, 202, 206)
    draw.rectangle((left, top + rim / 2, right, bottom - rim / 2), fill=body)
    draw.ellipse((left, top, right, top + rim), fill=metal)
    draw.ellipse((left, bottom - rim, right, bottom), fill=body)
    for _stripe in range(rng.randint(0, 3)):
        y = top + (bottom - top) * rng.uniform(0.15, 0.85)
        draw.rectangle(
            (left, y, right, y + (bottom - top) * rng.uniform(0.02, 0.08)), fill=_random_color(rng)
        )
    _cylinder_shading(draw, rng, (left, top + rim, right, bottom - rim), body)
    brand = _brand(rng)
    size = int(min((bottom - top) * 0.14, width / max(3, len(brand)) * 1.6))
    _text_centered(
        draw, ((left + right) / 2, top + (bottom - top) * 0.45), brand, size, _contrast(body)
    )


def _draw_tube(draw: ImageDraw.ImageDraw, rng: random.Random, box: Box) -> None:
    left, top, right, bottom = box
    width, height = right - left, bottom - top
    body = _random_color(rng)
    cap = _random_color(rng)
    cap_top = bottom - height * rng.uniform(0.1, 0.16)
    center = (left + right) / 2
    draw.rectangle((left, top, right, top + height * 0.04), fill=_shade(body, 0.8))  # crimp
    draw.polygon(
        [
            (left, top + height * 0.04),
            (right, top + height * 0.04),
            (center + width * 0.3, cap_top),
            (center - width * 0.3, cap_top),
        ],
        fill=body,
    )
    draw.rounded_rectangle(
        (center - width * 0.3, cap_top, center + width * 0.3, bottom), width * 0.06, fill=cap
    )
    brand = _brand(rng)
    size = int(min(height * 0.1, width / max(3, len(brand)) * 1.5))
    ink = _contrast(body)
    _text_centered(draw, (center, top + height * 0.35), brand, size, ink)
    _text_centered(draw, (center, top + height * 0.5), rng.choice(_CLAIMS), max(6, size // 2), ink)


def _draw_mug(draw: ImageDraw.ImageDraw, rng: random.Random, box: Box) -> None:
    left, top, right, bottom = box
    width, height = right - left, bottom - top
    body = _random_color(rng)
    body_right = right - width * 0.22
    thickness = max(4, int(width * 0.06))
    draw.ellipse(
        (body_right - width * 0.12, top + height * 0.2, right, top + height * 0.7),
        outline=body,
        width=thickness,
    )
    draw.rounded_rectangle((left, top, body_right, bottom), width * 0.08, fill=body)
    draw.ellipse(
        (left, top - height * 0.03, body_right, top + height * 0.05), fill=_shade(body, 0.5)
    )
    _cylinder_shading(draw, rng, (left, top + height * 0.05, body_right, bottom), body)
    if rng.random() < 0.6:
        radius = (body_right - left) * rng.uniform(0.15, 0.3)
        center_x, center_y = (left + body_right) / 2, top + height * rng.uniform(0.4, 0.6)
        draw.ellipse(
            (center_x - radius, center_y - radius, center_x + radius, center_y + radius),
            fill=_random_color(rng),
        )
    else:
        brand = _brand(rng)
        size = int((body_right - left) / max(3, len(brand)) * 1.5)
        _text_centered(
            draw, ((left + body_right) / 2, top + height * 0.5), brand, size, _contrast(body)
        )


def _draw_bag(draw: ImageDraw.ImageDraw, rng: random.Random, box: Box) -> None:
    left, top, right, bottom = box
    width, height = right - left, bottom - top
    paper = _random_color(rng) if rng.random() < 0.6 else (196, 160, 118)
    bag_top = top + height * rng.uniform(0.2, 0.3)
    handle = _shade(paper, 0.6)
    thickness = max(3, int(width * 0.03))
    for handle_left in (0.2, 0.55):
        draw.arc(
            (
                left + width * handle_left,
                top,
                left + width * (handle_left + 0.25),
                bag_top + height * 0.15,
            ),
            180,
            360,
            fill=handle,
            width=thickness,
        )
    draw.polygon(
        [
            (left + width * 0.04, bag_top),
            (right - width * 0.04, bag_top),
            (right, bottom),
            (left, bottom),
        ],
        fill=paper,
    )
    draw.polygon(
        [
            (right - width * 0.18, bag_top),
            (right - width * 0.04, bag_top),
            (right, bottom),
            (right - width * 0.14, bottom),
        ],
        fill=_shade(paper, 0.8),
    )
    brand = _brand(rng)
    size = int(min(height * 0.12, width * 0.8 / max(3, len(brand)) * 1.6))
    _text_centered(
        draw, (left + width * 0.43, (bag_top + bottom) / 2), brand, size, _contrast(paper)
    )


# name, width ÷ height range, drawing function
_PRODUCTS: tuple[tuple[str, tuple[float, float], Callable[..., None]], ...] = (
    ("bottle", (0.28, 0.45), _draw_bottle),
    ("box", (0.55, 1.2), _draw_box),
    ("jar", (0.75, 1.15), _draw_jar),
    ("shoe", (1.8, 2.6), _draw_shoe),
    ("can", (0.5, 0.65), _draw_can),
    ("tube", (0.25, 0.4), _draw_tube),
    ("mug", (0.95, 1.25), _draw_mug),
    ("bag", (0.7, 1.0), _draw_bag),
)


@dataclass(frozen=True)
class _Placement:
    kind: int
    box: Box  # in final-image pixels


def _layout(rng: random.Random, width: int, height: int) -> list[_Placement]:
    """One to three products standing on a common ground line, side by side."""
    count = rng.choices((1, 2, 3), weights=(0.6, 0.25, 0.15))[0]
    ground = height * rng.uniform(0.72, 0.95)
    scale = rng.uniform(0.45, 0.85) if count == 1 else rng.uniform(0.3, 0.6)
    items = []
    for _ in range(count):
        kind = rng.randrange(len(_PRODUCTS))
        low, high = _PRODUCTS[kind][1]
        item_height = min(ground * 0.95, height * scale * rng.uniform(0.8, 1.0))
        item_width = item_height * rng.uniform(low, high)
        items.append((kind, item_width, item_height))
    gap = width * rng.uniform(0.01, 0.06)
    total = sum(item[1] for item in items) + gap * (count - 1)
    if total > width * 0.92:  # too wide: shrink the group to fit
        shrink = width * 0.92 / total
        items = [(kind, w * shrink, h * shrink) for kind, w, h in items]
        gap *= shrink
        total = width * 0.92
    left = (width - total) * rng.uniform(0.15, 0.85)
    placements = []
    for kind, item_width, item_height in items:
        placements.append(_Placement(kind, (left, ground - item_height, left + item_width, ground)))
        left += item_width + gap
    return placements


def _shadows(
    rng: random.Random, width: int, height: int, placements: list[_Placement]
) -> Image.Image:
    """A soft contact shadow under each product, as an alpha mask."""
    mask = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(mask)
    strength = rng.randint(60, 140)
    offset = rng.uniform(-0.15, 0.15)
    for placement in placements:
        left, _top, right, bottom = placement.box
        item_width = right - left
        spread = item_width * 0.08
        draw.ellipse(
            (
                left - spread + offset * item_width,
                bottom - item_width * 0.07,
                right + spread + offset * item_width,
                bottom + item_width * 0.07,
            ),
            fill=strength,
        )
    return mask.filter(ImageFilter.GaussianBlur(max(2.0, min(width, height) * 0.012)))


def _products_layer(
    rng: random.Random, width: int, height: int, placements: list[_Placement]
) -> Image.Image:
    layer = Image.new("RGBA", (width * supersample, height * supersample), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer, "RGBA")
    for placement in placements:
        box = tuple(coordinate * supersample for coordinate in placement.box)
        _PRODUCTS[placement.kind][2](draw, rng, box)
    return layer.reduce(supersample)


def _overlay(rng: random.Random, image: Image.Image) -> None:
    """E-commerce decorations some sellers add: a promotion banner, a price badge, a watermark."""
    width, height = image.size
    draw = ImageDraw.Draw(image, "RGBA")
    choice = rng.random()
    if choice < 0.15:
        band_height = height * rng.uniform(0.08, 0.14)
        band_top = 0 if rng.random() < 0.5 else height - band_height
        color = _random_color(rng)
        draw.rectangle((0, band_top, width, band_top + band_height), fill=color)
        text = rng.choice(_PROMOTIONS)
        size = int(min(band_height * 0.6, width / len(text) * 1.5))
        draw.text(
            (width / 2, band_top + band_height / 2),
            text,
            font=_font(size),
            fill=_contrast(color),
            anchor="mm",
        )
    elif choice < 0.27:
        radius = min(width, height) * rng.uniform(0.07, 0.12)
        center_x = radius * 1.3 if rng.random() < 0.5 else width - radius * 1.3
        center_y = radius * 1.3
        color = _hsv(rng.choice((0.0, 0.02, 0.08, 0.12)), 0.9, 0.95)
        draw.ellipse(
            (center_x - radius, center_y - radius, center_x + radius, center_y + radius), fill=color
        )
        draw.text(
            (center_x, center_y),
            rng.choice(_BADGES),
            font=_font(int(radius * 0.6)),
            fill=(255, 255, 255),
            anchor="mm",
        )
    elif choice < 0.35:
        text = _brand(rng) + " STORE"
        size = int(min(width, height) * rng.uniform(0.04, 0.07))
        draw.text(
            (width * rng.uniform(0.05, 0.5), height * rng.uniform(0.05, 0.9)),
            text,
            font=_font(size),
            fill=(128, 128, 128, 90),
        )


def generate_photo(index: int, seed: int) -> Photo:
    """Image `index` of the set for `seed`."""
    rng = random.Random(f"xinchain-image-set/{seed}/{index}")
    width = rng.randint(side_px_min, side_px_max)
    height = rng.randint(side_px_min, side_px_max)
    names, weights, makers = zip(*_BACKGROUNDS, strict=True)
    background_index = rng.choices(range(len(names)), weights=weights)[0]
    pixels = makers[background_index](rng, width, height)
    placements = _layout(rng, width, height)
    shadow = np.asarray(_shadows(rng, width, height, placements), np.float32) / 255
    pixels = pixels * (1 - shadow[..., None] * 0.8)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    products = _products_layer(rng, width, height, placements)
    image.paste(products, (0, 0), products)
    _overlay(rng, image)
    np_rng = np.random.default_rng(rng.getrandbits(64))
    grain = np_rng.normal(0, grain_sigma, (height, width, 1)).astype(np.float32)
    pixels = np.clip(np.asarray(image, np.float32) + grain, 0, 255).astype(np.uint8)
    return Photo(
        index=index,
        data=_jpeg(Image.fromarray(pixels, "RGB"), jpeg_quality),
        width=width,
        height=height,
        background=names[background_index],
        products=tuple(_PRODUCTS[placement.kind][0] for placement in placements),
    )


def generate_images(count: int, seed: int) -> list[Photo]:
    """`count` distinct product photos, the same for the same seed."""
    return [generate_photo(index, seed) for index in range(count)]


# Transforms.


def _jpeg(image: Image.Image, quality: int) -> bytes:
    output = io.BytesIO()
    image.save(output, "JPEG", quality=quality)
    return output.getvalue()


def _open(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGB")


def resize_half(data: bytes) -> bytes:
    image = _open(data)
    size = (max(1, round(image.width / 2)), max(1, round(image.height / 2)))
    return _jpeg(image.resize(size, Image.Resampling.LANCZOS), jpeg_quality)


def jpeg_q60(data: bytes) -> bytes:
    return _jpeg(_open(data), 60)


def crop_5(data: bytes, rng: random.Random) -> bytes:
    image = _open(data)
    keep_width, keep_height = round(image.width * crop_keep), round(image.height * crop_keep)
    left = rng.randint(0, image.width - keep_width)
    top = rng.randint(0, image.height - keep_height)
    return _jpeg(image.crop((left, top, left + keep_width, top + keep_height)), jpeg_quality)


def brightness_up(data: bytes) -> bytes:
    return _jpeg(ImageEnhance.Brightness(_open(data)).enhance(brightness_up_factor), jpeg_quality)


def brightness_down(data: bytes) -> bytes:
    return _jpeg(ImageEnhance.Brightness(_open(data)).enhance(brightness_down_factor), jpeg_quality)


def flip(data: bytes) -> bytes:
    return _jpeg(ImageOps.mirror(_open(data)), jpeg_quality)


TRANSFORMS = ("resize_half", "jpeg_q60", "crop_5", "brightness_up", "brightness_down", "flip")


def copies(data: bytes, seed: int) -> dict[str, bytes]:
    """The six transformed copies of an image, by transform name (in `TRANSFORMS` order)."""
    return {
        "resize_half": resize_half(data),
        "jpeg_q60": jpeg_q60(data),
        "crop_5": crop_5(data, random.Random(f"xinchain-crop/{seed}")),
        "brightness_up": brightness_up(data),
        "brightness_down": brightness_down(data),
        "flip": flip(data),
    }
