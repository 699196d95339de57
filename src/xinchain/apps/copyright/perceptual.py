"""PDQ perceptual hashes of images (Meta's PDQ, through the `pdqhash` package).

A PDQ hash is 256 bits, written as 64 lowercase hex digits in ThreatExchange's order. Two
hashes of the same picture after resizing, recompression, a small crop or a brightness shift
lie within a small Hamming distance; hashes of unrelated pictures lie near 128 apart.
`match_distance_max` is the threshold ThreatExchange uses for a match.

PDQ also gives a quality score, 0-100: below `quality_min` the image has too little structure
(a flat colour, a blank page) for its hash to mean much, and a search says so.

PDQ is fragile to cropping: cutting 5 % off a picture moves its hash about 50 bits. So a
registration also carries `crop_hashes`: the hashes of 25 crops of the original, each keeping
95 % of its width and height, at a 5x5 grid of positions. A copy cropped by up to about 5 %
lies within the match distance of one of them (tests/unit/test_copyright_matching.py measures
it: 99 % of 5 % crops are found with this grid, 93 % with a 4x4 one); the index holds all 26
hashes of each work.

The eight dihedral hashes (rotations by 90°, mirror images) are computed from one pass over the
image, and a ninth from the mirrored pixels: a search by hash alone with all nine finds a copy
that was flipped or rotated (a search with local features skips the ninth: query_pdq).
"""

from __future__ import annotations

import hashlib
import io
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pdqhash
from PIL import Image, ImageOps, UnidentifiedImageError

from xinchain.apps.copyright.features import (
    LocalFeatures,
    frame_area,
    query_features,
    registered_features,
)
from xinchain.errors import XinchainError

# ThreatExchange treats a PDQ Hamming distance of at most 31 as a match.
match_distance_max = 31
# Below this PDQ quality a hash is unreliable (ThreatExchange's guidance is 50).
quality_min = 50
# A hash with fewer bits set than this (or more than 256 less this) is degenerate: no real
# picture's PDQ hash is that far from half its bits.
degenerate_ones_min = 64
# Largest image file accepted for hashing, and the most pixels decoded from one.
image_bytes_max = 32 * 1024 * 1024
image_pixels_max = 64_000_000
# Images are reduced to at most this many pixels on a side before hashing, to bound the work
# on a phone photo. The reduction moves hashes a little (PDQ's own downsampling filter sees
# other pixels): at 512 px by up to 30 bits on product photos, so the bound sits higher.
hash_side_max = 1024
# Names of the query hashes: the eight dihedral hashes in `pdqhash.compute_dihedral`'s order
# (its "flip x" turns the picture upside down, its "flip y" mirrors it left to right), then
# the hash of the pixels mirrored left to right. PDQ derives the dihedral hashes from one
# transform of the image; for the most common edit of all, a mirrored copy, hashing the
# mirrored pixels themselves lands closer (up to 46 bits closer on product photos).
DIHEDRAL = (
    "original",
    "rotate90",
    "rotate180",
    "rotate270",
    "upside_down",
    "mirror",
    "transpose",
    "transverse",
    "mirror_pixels",
)
HASH_BYTES = 32
# Crops registered with each work: a `crop_grid`x`crop_grid` grid of windows keeping
# `crop_keep` of each side.
crop_keep = 0.95
crop_grid = 5
crop_hashes_count = crop_grid * crop_grid


class ImageInvalid(XinchainError):
    code = "image_invalid"


@dataclass(frozen=True)
class PdqHashes:
    """The PDQ hash of an image, its quality, and the hashes of its seven dihedral variants."""

    # nine, in DIHEDRAL order (or the first eight); hashes[0] is the image as given
    hashes: tuple[bytes, ...]
    quality: int

    @property
    def pdq(self) -> bytes:
        return self.hashes[0]

    @property
    def pdq_hex(self) -> str:
        return self.hashes[0].hex()


def load_rgb(data: bytes) -> np.ndarray:
    """Decode an image file into an RGB array (height x width x 3, uint8); transparency is
    laid on white, the EXIF orientation is applied, and large images are reduced to
    `hash_side_max` a side."""
    image = load_image(data)
    if max(image.size) > hash_side_max:
        image.thumbnail((hash_side_max, hash_side_max), Image.Resampling.BILINEAR)
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))


def load_image(data: bytes, area_least: int | None = None) -> Image.Image:
    """Decode an image file into an RGB image, transparency laid on white and the EXIF
    orientation applied. With `area_least`, a JPEG may be decoded at a half, a quarter or an
    eighth of its size (its DCT scaled: a few times faster) as long as it keeps that many
    pixels."""
    if len(data) > image_bytes_max:
        raise ImageInvalid(
            f"image of {len(data)} bytes; at most {image_bytes_max} are accepted", field="image"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # The file's own structure first (a PNG's chunks and checksums through IEND): a
            # file cut short must not pass for an image because its first rows decode.
            Image.open(io.BytesIO(data)).verify()
            image: Image.Image = Image.open(io.BytesIO(data))
            if image.width * image.height > image_pixels_max:
                raise ImageInvalid(
                    f"image of {image.width}x{image.height} pixels; at most {image_pixels_max} "
                    "pixels are accepted",
                    field="image",
                )
            if area_least is not None and image.format == "JPEG":
                scale = (area_least / (image.width * image.height)) ** 0.5
                if scale < 1:
                    size = (math.ceil(image.width * scale), math.ceil(image.height * scale))
                    image.draft(None, size)
            image.load()
            image = ImageOps.exif_transpose(image) or image
    except (
        UnidentifiedImageError,
        Image.DecompressionBombWarning,
        Image.DecompressionBombError,
        OSError,
        SyntaxError,  # Pillow's verify() for a broken chunk
        ValueError,
    ) as exc:
        raise ImageInvalid(
            f"not a readable image, or not a whole one ({exc}); expected a JPEG, PNG, WebP, "
            "GIF or BMP file",
            field="image",
        ) from exc
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB")


def hash_pixels(rgb: np.ndarray, mirror_pixels: bool = True) -> PdqHashes:
    """PDQ hashes of an RGB array: the eight dihedral ones and, with `mirror_pixels`, the hash
    of the mirrored pixels (a second pass over the image)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ImageInvalid("expected an RGB image", field="image")
    if min(rgb.shape[0], rgb.shape[1]) < 2:
        raise ImageInvalid("image is smaller than 2x2 pixels", field="image")
    vectors, quality = pdqhash.compute_dihedral(np.ascontiguousarray(rgb))
    if mirror_pixels:
        mirrored, _quality = pdqhash.compute(np.ascontiguousarray(rgb[:, ::-1]))
        vectors = [*vectors, mirrored]
    hashes = tuple(_packed(vector) for vector in vectors)
    if int(quality) == 0 or degenerate(hashes[0]):
        raise ImageInvalid(
            "the image has no detail to hash (a flat or blank picture, PDQ quality "
            f"{int(quality)}): its hash would match every other such image",
            field="image",
        )
    return PdqHashes(hashes=hashes, quality=int(quality))


def degenerate(pdq: bytes) -> bool:
    """A hash no real picture has. PDQ sets a bit where the image's frequency component is
    above their median, so a hash of a picture has about half its 256 bits set; a flat image
    gives (nearly) none, and a made-up hash may give (nearly) all."""
    ones = int.from_bytes(pdq, "big").bit_count()
    return not degenerate_ones_min <= ones <= HASH_BYTES * 8 - degenerate_ones_min


def _packed(vector: object) -> bytes:
    return np.packbits(np.asarray(vector, dtype=np.uint8)).tobytes()


def hash_image(data: bytes) -> PdqHashes:
    """PDQ hashes of an image file's bytes."""
    return hash_pixels(load_rgb(data))


def crop_hashes(rgb: np.ndarray) -> tuple[bytes, ...]:
    """PDQ hashes of the registered crops of an RGB array (row by row of the grid)."""
    height, width = rgb.shape[0], rgb.shape[1]
    keep_h, keep_w = round(height * crop_keep), round(width * crop_keep)
    hashes = []
    for row in range(crop_grid):
        top = round((height - keep_h) * row / (crop_grid - 1))
        for column in range(crop_grid):
            left = round((width - keep_w) * column / (crop_grid - 1))
            window = np.ascontiguousarray(rgb[top : top + keep_h, left : left + keep_w])
            vector, _quality = pdqhash.compute(window)
            hashes.append(_packed(vector))
    return tuple(hashes)


@dataclass(frozen=True)
class WorkHashes:
    """What a registration carries about an image: SHA-256 of the file, PDQ hash, quality,
    the crop hashes and its local features; the dihedral hashes serve searches for mirrored or
    rotated copies."""

    sha256: bytes
    pdq: PdqHashes
    crops: tuple[bytes, ...]
    features: LocalFeatures

    def work_args(self, title: str, seller: str) -> dict[str, Any]:
        """The work as `copyright.register` takes it."""
        described = {"features": self.features.encode()} if len(self.features) else {}
        return {
            "sha256": self.sha256.hex(),
            "pdq": self.pdq.pdq_hex,
            "quality": self.pdq.quality,
            "crops": [crop.hex() for crop in self.crops],
            **described,
            "title": title,
            "seller": seller,
        }


def work_hashes(data: bytes) -> WorkHashes:
    rgb = load_rgb(data)
    return WorkHashes(
        sha256=hashlib.sha256(data).digest(),
        pdq=hash_pixels(rgb),
        crops=crop_hashes(rgb),
        features=registered_features(Image.fromarray(rgb)),
    )


def query_hashes(data: bytes) -> tuple[PdqHashes, tuple[LocalFeatures, ...]]:
    """What a search by hashes and local features looks for, as the node's search finds them
    (query_pdq and query_points). An image too flat to hash is refused, as by hash_image."""
    return query_pdq(data), query_points(data)


def query_pdq(data: bytes) -> PdqHashes:
    """The hashes a search by hashes and local features looks up: the eight dihedral ones.
    Not the mirrored pixels' (a second pass over the image, a third of a search's time): a
    mirrored copy is found by its local features in the mirror orientation, and by PDQ's
    derived mirror hash."""
    return hash_pixels(load_rgb(data), mirror_pixels=False)


def query_points(data: bytes) -> tuple[LocalFeatures, ...]:
    """What a search by local features looks for: the image's points as it is and mirrored
    (query_hashes without the hashes; a search computes both at once, in two processes). The
    image is described from its own pixels, not reduced for hashing first: a JPEG is decoded
    only as large as its frame needs (features.frame_area), which takes a quarter of the time."""
    return query_features(load_image(data, area_least=frame_area))


def parse_pdq(value: object, field: str) -> bytes:
    """A PDQ hash given as 64 lowercase hex digits, not a degenerate one."""
    if not isinstance(value, str) or len(value) != 2 * HASH_BYTES:
        raise XinchainError("expected a PDQ hash: 64 lowercase hex digits", field=field)
    try:
        if value != value.lower():
            raise ValueError
        parsed = bytes.fromhex(value)
    except ValueError as exc:
        raise XinchainError("expected a PDQ hash: 64 lowercase hex digits", field=field) from exc
    if degenerate(parsed):
        raise XinchainError(
            f"a degenerate PDQ hash ({int.from_bytes(parsed, 'big').bit_count()} of 256 bits "
            "set; a picture's hash has about half): it would match nothing or everything",
            field=field,
        )
    return parsed


def distance(a: bytes, b: bytes) -> int:
    """Hamming distance between two 256-bit hashes."""
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_count()
