"""PDQ hashing of uploaded images, and the zip-level checks of evidence packages.

Scenarios:

* hashes are 32 bytes; the query has nine (eight dihedral, one of the mirrored pixels), a
  registration 25 crop hashes; the same file always gives the same hashes; the SHA-256 is the
  file's
* a PNG with transparency is laid on white: same hash as the same picture on white
* EXIF orientation is applied: a photo stored sideways with "rotate 90" in its EXIF hashes as
  the upright picture
* refused, naming `image`: bytes that are no image; a truncated JPEG; an image 1 pixel wide;
  a file over the size limit; a PNG whose header claims more pixels than allowed
* a PDQ hash given as text: 64 lowercase hex digits, else refused
* evidence packages: bytes that are no zip, a member with a path outside the package, an
  absolute path, the same member twice, too many members, a missing manifest — each refused
  before any receipt is read, naming the member
"""

from __future__ import annotations

import hashlib
import io
import struct
import warnings
import zipfile
import zlib
from pathlib import Path

import pytest
from image_set import generate_photo
from PIL import Image

from xinchain.apps.copyright import perceptual
from xinchain.apps.copyright.evidence import EvidenceInvalid, verify_package
from xinchain.errors import XinchainError


def encoded(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def picture() -> Image.Image:
    return Image.open(io.BytesIO(generate_photo(0, 1).data)).convert("RGB")


def test_hashes_have_the_documented_shape(picture: Image.Image) -> None:
    data = encoded(picture)
    work = perceptual.work_hashes(data)
    assert work.sha256 == hashlib.sha256(data).digest()
    assert len(work.pdq.hashes) == len(perceptual.DIHEDRAL) == 9
    assert all(len(h) == perceptual.HASH_BYTES for h in (*work.pdq.hashes, *work.crops))
    assert len(work.crops) == perceptual.crop_hashes_count == 25
    assert perceptual.work_hashes(data) == work
    assert perceptual.hash_image(data) == work.pdq


def test_transparency_is_laid_on_white(picture: Image.Image) -> None:
    # The left half fully transparent: it hashes as the picture with a white left half.
    rgba = picture.convert("RGBA")
    alpha = Image.new("L", picture.size, 255)
    alpha.paste(0, (0, 0, picture.width // 2, picture.height))
    rgba.putalpha(alpha)
    on_white = picture.copy()
    on_white.paste((255, 255, 255), (0, 0, picture.width // 2, picture.height))
    assert perceptual.hash_image(encoded(rgba)).pdq == perceptual.hash_image(encoded(on_white)).pdq


def test_exif_orientation_is_applied(picture: Image.Image) -> None:
    sideways = picture.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned left: shown after turning 90° clockwise
    stored = encoded(sideways, "JPEG", quality=95, exif=exif.tobytes())
    upright = encoded(picture, "JPEG", quality=95)
    distance = perceptual.distance(
        perceptual.hash_image(stored).pdq, perceptual.hash_image(upright).pdq
    )
    assert distance <= 8


def png_claiming(width: int, height: int) -> bytes:
    """A PNG header claiming `width` x `height` pixels, with no image data worth the claim."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"not an image at all", "not a readable image"),
        (encoded(Image.new("RGB", (64, 64), (1, 2, 3)), "JPEG")[:300], "not a readable image"),
        (encoded(Image.new("RGB", (1, 40), (1, 2, 3))), "smaller than 2x2"),
        (b"\xff" * (perceptual.image_bytes_max + 1), "at most"),
        (png_claiming(100_000, 100_000), "pixels"),
    ],
)
def test_unusable_images_are_refused_naming_the_image(data: bytes, reason: str) -> None:
    with pytest.raises(perceptual.ImageInvalid) as raised:
        perceptual.hash_image(data)
    assert raised.value.field == "image"
    assert reason in raised.value.reason


def test_an_image_cut_short_is_refused_though_its_rows_decode(picture: Image.Image) -> None:
    whole = encoded(picture.resize((600, 600)))
    for cut in (len(whole) - 12, len(whole) // 2):  # no IEND chunk; half the data
        with pytest.raises(perceptual.ImageInvalid, match="not a whole one"):
            perceptual.hash_image(whole[:cut])
    perceptual.hash_image(whole)


@pytest.mark.parametrize("colour", [(0, 0, 0), (255, 255, 255), (10, 200, 30)])
def test_a_flat_picture_has_no_hash_to_register_or_search(colour: tuple[int, int, int]) -> None:
    flat = encoded(Image.new("RGB", (790, 790), colour))
    with pytest.raises(perceptual.ImageInvalid, match="no detail to hash"):
        perceptual.hash_image(flat)
    with pytest.raises(perceptual.ImageInvalid, match="no detail to hash"):
        perceptual.work_hashes(flat)


@pytest.mark.parametrize("text", ["00" * 32, "ff" * 32, "01" * 32, "fe" * 32])
def test_a_degenerate_hash_is_refused_for_search(text: str) -> None:
    with pytest.raises(XinchainError, match="degenerate PDQ hash"):
        perceptual.parse_pdq(text, "pdq")


@pytest.mark.parametrize("text", ["", "ab" * 31, "AB" * 32, "zz" * 32, "ab" * 33, 7])
def test_pdq_text_must_be_64_lowercase_hex_digits(text: object) -> None:
    with pytest.raises(XinchainError, match="64 lowercase hex digits"):
        perceptual.parse_pdq(text, "pdq")
    assert perceptual.parse_pdq("ab" * 32, "pdq") == b"\xab" * 32


def a_zip(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w") as archive:
        warnings.simplefilter("ignore", UserWarning)  # a duplicate name is what some tests want
        for name, content in members:
            archive.writestr(zipfile.ZipInfo(name), content)
    return buffer.getvalue()


BASE = [
    ("manifest.json", b"{}"),
    ("receipts/work.json", b"{}"),
    ("receipts/evidence.json", b"{}"),
    ("report.html", b""),
]


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        ([*BASE, ("capture/../../etc/passwd", b"x")], "unexpected file"),
        ([*BASE, ("/abs.jpg", b"x")], "unexpected file"),
        ([*BASE, ("capture/sub/a.jpg", b"x")], "unexpected file"),
        ([*BASE, ("capture/a.jpg", b"x"), ("capture/a.jpg", b"y")], "appears twice"),
        ([*BASE, *[(f"capture/{i}.jpg", b"x") for i in range(61)]], "at most 64"),
        (BASE[1:], "no manifest.json"),
    ],
)
def test_package_structure_is_checked_before_receipts(
    members: list[tuple[str, bytes]], reason: str
) -> None:
    with pytest.raises(EvidenceInvalid, match=reason):
        verify_package(a_zip(members))


def test_bytes_that_are_no_zip_are_refused(tmp_path: Path) -> None:
    with pytest.raises(EvidenceInvalid, match="not a zip file"):
        verify_package(b"PK but not really")
