"""Tests for `xinchain.apps.provenance.qr`: item QR codes and printable sheets of them.

Scenarios:

* One code: the PNG decodes back to its URL with zbarimg (Debian zbar-tools; skipped, saying so,
  where it is missing); the PNG is well formed (signature, chunk CRCs, IHDR size = modules with
  quiet zone x scale); short URLs still give a full QR code, never a Micro QR that phones cannot
  read; the SVG is an SVG document.
* PNG sheet: well formed 8-bit grayscale, laid out as a grid of equal cells; each cell cropped
  out decodes to its own URL; label bands hold ink exactly where there is a label; cells past the
  last item are blank.
* SVG sheet: one path per code and every label as text, in order, with XML special characters and
  Chinese intact.
* PDF sheet: header, every xref offset at its object, startxref at the xref table, %%EOF; pages
  split at 20 codes for 4 columns; every label drawn in a content stream, escaped; pdftoppm
  renders each page (skipped where poppler-utils is missing) and zbarimg reads every code of a
  rendered page.
* Same input, same bytes, for all three sheets.
* Refused with a typed error naming the field: more than `sheet_codes_max` items
  (`SheetTooLarge`), no items, columns outside 1..`columns_max`, URLs empty, too long, non-ASCII
  or with spaces, labels too long or with control characters, and non-ASCII labels on PNG and
  PDF sheets (which SVG sheets accept).
"""

from __future__ import annotations

import math
import re
import shutil
import struct
import subprocess
import zlib
from collections.abc import Callable
from pathlib import Path
from xml.etree import ElementTree

import pytest

from xinchain.apps.provenance import qr
from xinchain.apps.provenance.qr import QrError, SheetTooLarge

SVG = "{http://www.w3.org/2000/svg}"
BASE = "https://trace.example.com/01/10614141073464/21/"

zbar = pytest.mark.skipif(
    shutil.which("zbarimg") is None,
    reason="zbarimg is not installed (apt-get install zbar-tools): cannot decode QR codes here",
)
poppler = pytest.mark.skipif(
    shutil.which("pdftoppm") is None,
    reason="pdftoppm is not installed (apt-get install poppler-utils): cannot render PDFs here",
)


def items(count: int, prefix: str = "SN") -> list[tuple[str, str]]:
    return [(f"{prefix}{index:04d}", f"{BASE}{prefix}{index:04d}") for index in range(count)]


def decoded(*paths: Path) -> list[str]:
    """The QR payloads zbarimg finds in the images, in the order it reports them."""
    result = subprocess.run(
        ["zbarimg", "-q", "--raw", "-Sdisable", "-Sqrcode.enable", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return result.stdout.splitlines()


# --- a minimal PNG reader, independent of the writer under test ----------------------------------


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, offset = [], 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert crc == zlib.crc32(kind + body), f"bad CRC in {kind!r}"
        chunks.append((kind, body))
        offset += 12 + length
    assert chunks[0][0] == b"IHDR"
    assert chunks[-1] == (b"IEND", b"")
    return chunks


def png_size(data: bytes) -> tuple[int, int]:
    width, height = struct.unpack(">II", png_chunks(data)[0][1][:8])
    return width, height


def gray_pixels(data: bytes) -> list[bytes]:
    """Rows of an 8-bit grayscale PNG whose scanlines all use filter 0 (what qr.py writes)."""
    chunks = png_chunks(data)
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, colour, interlace) == (8, 0, 0)
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    assert len(raw) == height * (width + 1)
    rows = [raw[y * (width + 1) : (y + 1) * (width + 1)] for y in range(height)]
    assert all(row[0] == 0 for row in rows)
    return [row[1:] for row in rows]


def write_gray_png(path: Path, rows: list[bytes]) -> None:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", len(rows[0]), len(rows), 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"".join(b"\x00" + row for row in rows))
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


# --- a minimal PDF reader ------------------------------------------------------------------------


def pdf_objects(data: bytes) -> dict[int, bytes]:
    """Each object's body, found through the xref table, after checking the file's frame."""
    assert data.startswith(b"%PDF-1.4\n")
    assert data.endswith(b"%%EOF\n")
    startxref = int(re.findall(rb"startxref\n(\d+)\n%%EOF\n$", data)[0])
    assert data[startxref : startxref + 5] == b"xref\n"
    header = re.match(rb"xref\n0 (\d+)\n", data[startxref:])
    assert header is not None
    count = int(header[1])
    table = data[startxref + header.end() : startxref + header.end() + 20 * count]
    entries = [table[index * 20 : (index + 1) * 20] for index in range(count)]
    assert entries[0] == b"0000000000 65535 f \n"
    trailer = data[startxref + header.end() + 20 * count :]
    assert re.match(rb"trailer\n<< /Size %d /Root 1 0 R >>\n" % count, trailer)
    objects = {}
    for number, entry in enumerate(entries[1:], start=1):
        assert entry.endswith(b" 00000 n \n")
        offset = int(entry[:10])
        opening = b"%d 0 obj\n" % number
        assert data[offset : offset + len(opening)] == opening, f"xref of object {number}"
        end = data.index(b"\nendobj\n", offset)
        objects[number] = data[offset + len(opening) : end]
    return objects


def pdf_contents(data: bytes) -> list[bytes]:
    """The decompressed content stream of each page, in page order."""
    objects = pdf_objects(data)
    kids = re.search(rb"/Kids \[([^\]]*)\]", objects[2])
    assert kids is not None
    contents = []
    for page in map(int, re.findall(rb"(\d+) 0 R", kids[1])):
        assert b"/Type /Page " in objects[page]
        reference = re.search(rb"/Contents (\d+) 0 R", objects[page])
        assert reference is not None
        stream = objects[int(reference[1])]
        declared = re.search(rb"/Length (\d+)", stream)
        assert declared is not None
        length = int(declared[1])
        body = stream[stream.index(b"stream\n") + 7 :]
        assert body[length:] == b"\nendstream"
        contents.append(zlib.decompress(body[:length]))
    return contents


# --- one code ------------------------------------------------------------------------------------


@zbar
def test_item_png_decodes_to_its_url(tmp_path: Path) -> None:
    url = "https://trace.example.com/01/10614141073464/21/A%2FB%25C%3F1%262"
    (tmp_path / "item.png").write_bytes(qr.item_qr_png(url))
    assert decoded(tmp_path / "item.png") == [url]


def test_item_png_is_well_formed_and_sized_by_modules_and_scale() -> None:
    url = f"{BASE}2018"
    modules = 33 + 2 * qr.quiet_zone_modules  # version 4 at level M, as the memo measured
    assert png_size(qr.item_qr_png(url, scale=8)) == (modules * 8, modules * 8)
    assert png_size(qr.item_qr_png(url, scale=3)) == (modules * 3, modules * 3)


def test_short_url_gives_a_full_qr_code_not_micro_qr() -> None:
    # A Micro QR code is at most 17 modules wide; version 1 QR is 21.
    width, _ = png_size(qr.item_qr_png("a", scale=1))
    assert width == 21 + 2 * qr.quiet_zone_modules


def test_item_svg_is_an_svg_document() -> None:
    root = ElementTree.fromstring(qr.item_qr_svg(f"{BASE}2018"))
    assert root.tag == f"{SVG}svg"


@pytest.mark.parametrize("scale", [0, 33])
def test_item_png_scale_is_bounded(scale: int) -> None:
    with pytest.raises(QrError) as raised:
        qr.item_qr_png(f"{BASE}1", scale=scale)
    assert raised.value.field == "scale"


@pytest.mark.parametrize(
    "url",
    ["", "h" * (qr.url_chars_max + 1), "https://例子.com/01/1", "https://h/a b", "https://h/\x00"],
)
def test_bad_urls_are_refused(url: str) -> None:
    for make in (qr.item_qr_png, qr.item_qr_svg):
        with pytest.raises(QrError) as raised:
            make(url)
        assert raised.value.field == "url"


def test_a_url_of_the_maximum_length_is_encoded() -> None:
    assert qr.item_qr_svg("h" * qr.url_chars_max).startswith("<svg")


# --- PNG sheet -----------------------------------------------------------------------------------


def png_cells(data: bytes, count: int, columns: int) -> list[list[bytes]]:
    """The sheet cut into its grid of equal cells, row by row."""
    rows = gray_pixels(data)
    grid = min(columns, count)
    lines = math.ceil(count / grid)
    width, height = len(rows[0]), len(rows)
    assert width % grid == 0 and height % lines == 0
    cell_width, cell_height = width // grid, height // lines
    return [
        [
            row[column * cell_width : (column + 1) * cell_width]
            for row in rows[top : top + cell_height]
        ]
        for top in range(0, height, cell_height)
        for column in range(grid)
    ]


@zbar
def test_every_code_of_a_png_sheet_decodes_to_its_own_url(tmp_path: Path) -> None:
    sheet = items(6)
    cells = png_cells(qr.sheet_png(sheet, columns=4), len(sheet), 4)
    paths = []
    for index, cell in enumerate(cells[: len(sheet)]):
        paths.append(tmp_path / f"cell{index}.png")
        write_gray_png(paths[-1], cell)
    assert [decoded(path) for path in paths] == [[url] for _, url in sheet]


def test_png_sheet_cells_have_labels_and_blanks_where_expected() -> None:
    sheet = [("SN0000", f"{BASE}0"), ("", f"{BASE}1"), ("A/B%C?1&2 xyz!", f"{BASE}2")]
    cells = png_cells(qr.sheet_png(sheet, columns=2), len(sheet), 2)
    assert len(cells) == 4
    code_height = len(cells[0]) - (7 + 4) * qr.png_font_scale

    def has_ink(rows: list[bytes]) -> bool:
        return any(min(row) < 128 for row in rows)

    assert [has_ink(cell[code_height:]) for cell in cells] == [True, False, True, False]
    assert [has_ink(cell[:code_height]) for cell in cells] == [True, True, True, False]


def test_png_sheet_is_one_cell_wide_for_one_item() -> None:
    one = png_size(qr.sheet_png(items(1), columns=4))
    four = png_size(qr.sheet_png(items(4), columns=4))
    assert four == (4 * one[0], one[1])


def test_png_sheet_cell_widens_for_a_long_label() -> None:
    short = png_size(qr.sheet_png([("1", f"{BASE}1")]))[0]
    long = png_size(qr.sheet_png([("X" * qr.label_chars_max, f"{BASE}1")]))[0]
    assert long > short


# --- SVG sheet -----------------------------------------------------------------------------------


def test_svg_sheet_has_one_path_per_code_and_every_label() -> None:
    sheet = [*items(5), ("婴儿配方奶粉 <&>", f"{BASE}x"), ('A/B"%', f"{BASE}y")]
    root = ElementTree.fromstring(qr.sheet_svg(sheet, columns=3))
    assert root.tag == f"{SVG}svg"
    assert len(root.findall(f"{SVG}path")) == len(sheet)
    assert [text.text for text in root.findall(f"{SVG}text")] == [label for label, _ in sheet]


def test_svg_sheet_size_follows_the_grid() -> None:
    root = ElementTree.fromstring(qr.sheet_svg(items(5), columns=2))
    one = ElementTree.fromstring(qr.sheet_svg(items(1), columns=2))
    assert int(root.get("width", "")) == 2 * int(one.get("width", ""))
    assert int(root.get("height", "")) == 3 * int(one.get("height", ""))


# --- PDF sheet -----------------------------------------------------------------------------------


def test_pdf_sheet_is_well_formed_and_paged_at_20_codes_for_4_columns() -> None:
    data = qr.sheet_pdf(items(21), columns=4)
    objects = pdf_objects(data)
    assert b"/Count 2" in objects[2]
    assert b"/BaseFont /Helvetica" in objects[3]
    assert [content.count(b" re\n") > 0 for content in pdf_contents(data)] == [True, True]
    assert [content.count(b"f Q") for content in pdf_contents(data)] == [20, 1]


def test_pdf_sheet_draws_every_label_escaped() -> None:
    sheet = [*items(3), ("a(b)c\\", f"{BASE}z")]
    content = b"".join(pdf_contents(qr.sheet_pdf(sheet)))
    for label, _ in items(3):
        assert f"({label}) Tj".encode() in content
    assert b"(a\\(b\\)c\\\\) Tj" in content


def test_pdf_sheet_of_one_column_puts_one_code_on_a_page() -> None:
    assert b"/Count 3" in pdf_objects(qr.sheet_pdf(items(3), columns=1))[2]


@poppler
@zbar
def test_pdftoppm_renders_every_page_and_every_code_reads(tmp_path: Path) -> None:
    sheet = items(24)  # two pages: 20 codes, then 4
    (tmp_path / "sheet.pdf").write_bytes(qr.sheet_pdf(sheet, columns=4))
    subprocess.run(
        ["pdftoppm", "-r", "110", "-gray", "-png", "sheet.pdf", "page"],
        cwd=tmp_path,
        check=True,
        timeout=60,
    )
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) == 2
    found = decoded(*pages)
    assert sorted(found) == sorted(url for _, url in sheet)


# --- determinism and refusals --------------------------------------------------------------------

SHEETS: list[Callable[..., object]] = [qr.sheet_svg, qr.sheet_png, qr.sheet_pdf]


@pytest.mark.parametrize("make", SHEETS)
def test_same_items_give_the_same_bytes(make: Callable[..., object]) -> None:
    assert make(items(5)) == make(items(5))


@pytest.mark.parametrize("make", SHEETS)
def test_more_than_the_limit_is_refused_before_any_encoding(make: Callable[..., object]) -> None:
    too_many = [("x", "not a url")] * (qr.sheet_codes_max + 1)
    with pytest.raises(SheetTooLarge) as raised:
        make(too_many)
    assert raised.value.field == "items"
    assert f"at most {qr.sheet_codes_max}" in raised.value.reason
    assert raised.value.code == "sheet_too_large"


@pytest.mark.slow  # a sheet of the most codes, rendered
def test_exactly_the_limit_is_accepted() -> None:
    sheet = [(f"{index}", f"https://h/01/10614141073464/21/{index}") for index in range(500)]
    assert qr.sheet_codes_max == 500
    assert qr.sheet_pdf(sheet, columns=8).startswith(b"%PDF")


@pytest.mark.parametrize("make", SHEETS)
def test_no_items_are_refused(make: Callable[..., object]) -> None:
    with pytest.raises(QrError, match="at least one item"):
        make([])


@pytest.mark.parametrize("make", SHEETS)
@pytest.mark.parametrize("columns", [0, qr.columns_max + 1])
def test_columns_out_of_range_are_refused(make: Callable[..., object], columns: int) -> None:
    with pytest.raises(QrError) as raised:
        make(items(1), columns=columns)
    assert raised.value.field == "columns"


@pytest.mark.parametrize("make", SHEETS)
@pytest.mark.parametrize("label", ["x" * (qr.label_chars_max + 1), "a\nb", "a\x00b"])
def test_bad_labels_are_refused_naming_the_item(make: Callable[..., object], label: str) -> None:
    with pytest.raises(QrError) as raised:
        make([*items(2), (label, f"{BASE}x")])
    assert raised.value.field == "items[2].label"


@pytest.mark.parametrize("make", SHEETS)
def test_bad_url_is_refused_naming_the_item(make: Callable[..., object]) -> None:
    with pytest.raises(QrError) as raised:
        make([*items(1), ("x", "https://h/a b")])
    assert raised.value.field == "items[1].url"


@pytest.mark.parametrize("make", [qr.sheet_png, qr.sheet_pdf])
def test_non_ascii_labels_are_refused_where_fonts_lack_them(make: Callable[..., object]) -> None:
    with pytest.raises(QrError, match="use an SVG sheet") as raised:
        make([("婴儿配方奶粉", f"{BASE}x")])
    assert raised.value.field == "items[0].label"
