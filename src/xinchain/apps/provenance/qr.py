"""QR codes for items and printable sheets of them (issue 4; research memo section 3).

Each item carries one QR code holding its GS1 Digital Link URL (`gs1.digital_link_url`), which
opens the scan page. `segno` computes the QR symbols; this module only lays them out:

* `item_qr_png` / `item_qr_svg`: one code, written by segno.
* `sheet_svg`, `sheet_png`, `sheet_pdf`: a grid of codes, each with a label under it (usually the
  serial), for printing a lot's labels. segno draws one code per file, so sheets are composed here
  from each symbol's module matrix: SVG as one path per code and `<text>` labels; PNG as an 8-bit
  grayscale bitmap written with zlib and struct, labels in a built-in 5x7 pixel font; PDF as our own
  minimal A4 vector file, codes as filled rectangles and labels in the PDF's built-in Helvetica,
  over as many pages as needed.

Labels on PNG and PDF sheets are printable ASCII (the built-in fonts have no other glyphs); SVG
labels may be any printable text, Chinese included. Every function is pure: same input, same bytes.
"""

from __future__ import annotations

import io
import math
import struct
import xml.sax.saxutils
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import segno

from xinchain.errors import TooLarge, XinchainError, ensure

# One sheet call is one print job for the labels of one lot. 500 codes are 25 A4 pages at 20 a
# page, about 2 s of QR encoding, and at most about 50 MB of bitmap for the PNG sheet (one byte a
# pixel, see url_chars_max); a larger lot is printed in several calls.
sheet_codes_max = 500
# An item's Digital Link URL is under 150 characters: host, 14-digit GTIN and a serial of at most
# 60 characters once percent-encoded. 256 leaves room for a longer host or path prefix and keeps
# codes at QR version 12 or less (65 modules), which a phone camera still reads on a 2 cm label.
url_chars_max = 256
# A label is a serial (at most 20 characters) or a short name: it has to fit under a code a few
# centimetres wide.
label_chars_max = 32
# At 8 columns an A4 cell is 23 mm wide, about the smallest code a phone reads from arm's length.
columns_max = 8
# QR error correction level M restores up to 15 % of a damaged code (a smudge or a crease on a
# parcel) and still fits a typical Digital Link URL in version 4 (33 modules).
error_correction = "m"
# ISO/IEC 18004 asks for 4 light modules around a QR code; readers fail on codes packed tighter.
quiet_zone_modules = 4
# Pixels per module in PNG output: 4 px is 0.34 mm a module at 300 dpi and sharp on screens.
png_module_pixels = 4
# Pixels per font pixel in PNG labels: the 5x7 font at 2x is 14 px tall, legible at 300 dpi.
png_font_scale = 2
# Pixels per module in SVG sheets (SVG scales freely; this only sets its nominal size).
svg_module_pixels = 4
svg_font_pixels = 12

# A4 in PostScript points (1/72 inch), and a half-inch margin that office printers can print in.
_A4_WIDTH_POINTS = 595.28
_A4_HEIGHT_POINTS = 841.89
_PDF_MARGIN_POINTS = 36.0
_PDF_LABEL_BAND_POINTS = 14.0
_PDF_FONT_POINTS = 8.0
_PDF_FONT_POINTS_MIN = 4.0

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_WHITE = 255
_BLACK = 0


class QrError(XinchainError):
    """A QR code or sheet that cannot be made from the input as it is."""

    code = "invalid_qr_request"


class SheetTooLarge(QrError, TooLarge):
    code = "sheet_too_large"


@dataclass(frozen=True)
class _Code:
    """One item's symbol: its module matrix with the quiet zone, 1 = dark, and its label."""

    label: str
    matrix: tuple[tuple[int, ...], ...]

    @property
    def size(self) -> int:
        return len(self.matrix)

    def runs(self) -> list[tuple[int, int, int]]:
        """(x, y, length) of each horizontal run of dark modules."""
        found: list[tuple[int, int, int]] = []
        for y, row in enumerate(self.matrix):
            x = 0
            while x < len(row):
                if row[x]:
                    start = x
                    while x < len(row) and row[x]:
                        x += 1
                    found.append((start, y, x - start))
                else:
                    x += 1
        return found


# --- single codes --------------------------------------------------------------------------------


def item_qr_png(url: str, scale: int = 8) -> bytes:
    """One code as a PNG, `scale` pixels a module (8 px is 0.68 mm at 300 dpi)."""
    if not 1 <= scale <= 32:
        raise QrError(f"expected a scale of 1 to 32 pixels a module, found {scale}", field="scale")
    out = io.BytesIO()
    _symbol(url, "url").save(out, kind="png", scale=scale, border=quiet_zone_modules)
    return out.getvalue()


def item_qr_svg(url: str) -> str:
    """One code as a standalone SVG document; it scales to any size."""
    out = io.BytesIO()
    _symbol(url, "url").save(
        out, kind="svg", scale=svg_module_pixels, border=quiet_zone_modules, xmldecl=False
    )
    return out.getvalue().decode("utf-8")


def _symbol(url: str, field: str) -> segno.QRCode:
    if not url or len(url) > url_chars_max:
        raise QrError(
            f"expected a URL of 1 to {url_chars_max} characters, found {len(url)}", field=field
        )
    if not (url.isascii() and url.isprintable()) or " " in url:
        raise QrError(
            "expected a URL of printable ASCII without spaces (percent-encode the rest), "
            f"found {url!r}",
            field=field,
        )
    # make_qr, not make: segno would pick a Micro QR code for short text, which phones cannot read.
    return segno.make_qr(url, error=error_correction)


# --- sheets: shared checks and layout ------------------------------------------------------------


def _codes(items: Sequence[tuple[str, str]], columns: int, ascii_labels: bool) -> list[_Code]:
    if len(items) > sheet_codes_max:
        raise SheetTooLarge(
            f"expected at most {sheet_codes_max} codes on one sheet, found {len(items)}; "
            "print a larger lot in several sheets",
            field="items",
        )
    if not items:
        raise QrError("expected at least one item on a sheet, found none", field="items")
    if not 1 <= columns <= columns_max:
        raise QrError(f"expected 1 to {columns_max} columns, found {columns}", field="columns")
    return [_code(index, label, url, ascii_labels) for index, (label, url) in enumerate(items)]


def _code(index: int, label: str, url: str, ascii_label: bool) -> _Code:
    field = f"items[{index}]"
    if len(label) > label_chars_max or not label.isprintable():
        raise QrError(
            f"expected a label of at most {label_chars_max} printable characters, found {label!r}",
            field=f"{field}.label",
        )
    if ascii_label and not label.isascii():
        raise QrError(
            f"expected an ASCII label, which the built-in fonts of PNG and PDF sheets can draw "
            f"(use an SVG sheet for other text), found {label!r}",
            field=f"{field}.label",
        )
    symbol = _symbol(url, f"{field}.url")
    matrix = tuple(
        tuple(int(bool(module)) for module in row)
        for row in symbol.matrix_iter(scale=1, border=quiet_zone_modules)
    )
    return _Code(label, matrix)


def _grid_columns(codes: list[_Code], columns: int) -> int:
    return min(columns, len(codes))


def _cell_modules(codes: list[_Code]) -> int:
    """Cells are as wide as the largest symbol, so every code on a sheet has one module size."""
    return max(code.size for code in codes)


# --- SVG sheet -----------------------------------------------------------------------------------


def sheet_svg(items: Sequence[tuple[str, str]], columns: int = 4) -> str:
    """A grid of `(label, url)` codes as one SVG document, labels under the codes."""
    codes = _codes(items, columns, ascii_labels=False)
    grid = _grid_columns(codes, columns)
    module = svg_module_pixels
    code_pixels = _cell_modules(codes) * module
    label_pixels = max(_svg_label_pixels(code.label) for code in codes) + 2 * module
    cell_width = max(code_pixels, label_pixels)
    cell_height = code_pixels + 2 * svg_font_pixels
    width, height = grid * cell_width, math.ceil(len(codes) / grid) * cell_height
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">',
        f'<rect width="{width}" height="{height}" fill="#fff"/>',
    ]
    for index, code in enumerate(codes):
        row, column = divmod(index, grid)
        left = column * cell_width + (cell_width - code.size * module) // 2
        top = row * cell_height + (code_pixels - code.size * module) // 2
        path = "".join(f"M{x} {y}h{n}v1h-{n}z" for x, y, n in code.runs())
        parts.append(
            f'<path transform="translate({left} {top}) scale({module})" d="{path}" '
            'fill="#000" shape-rendering="crispEdges"/>'
        )
        if code.label:
            center = column * cell_width + cell_width // 2
            baseline = row * cell_height + code_pixels + svg_font_pixels + module
            parts.append(
                f'<text x="{center}" y="{baseline}" font-size="{svg_font_pixels}" '
                'font-family="Helvetica, Arial, sans-serif" text-anchor="middle">'
                f"{xml.sax.saxutils.escape(code.label)}</text>"
            )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _svg_label_pixels(label: str) -> int:
    """A generous estimate of a label's width: 0.6 em a Latin character, 1 em a CJK one."""
    return math.ceil(sum(svg_font_pixels * (0.6 if char.isascii() else 1.0) for char in label))


# --- PNG sheet -----------------------------------------------------------------------------------


def sheet_png(items: Sequence[tuple[str, str]], columns: int = 4) -> bytes:
    """A grid of `(label, url)` codes as one 8-bit grayscale PNG, ASCII labels under the codes."""
    codes = _codes(items, columns, ascii_labels=True)
    grid = _grid_columns(codes, columns)
    code_pixels = _cell_modules(codes) * png_module_pixels
    label_pixels = max(_png_label_pixels(code.label) for code in codes) + 2 * png_module_pixels
    cell_width = max(code_pixels, label_pixels)
    band_height = (_FONT_HEIGHT + 4) * png_font_scale
    blank_cell = [bytes([_WHITE]) * cell_width] * (code_pixels + band_height)
    rows: list[bytes] = []
    for start in range(0, len(codes), grid):
        cells = [
            _png_code_rows(code, cell_width, code_pixels)
            + _png_label_rows(code.label, cell_width, band_height)
            for code in codes[start : start + grid]
        ]
        cells += [blank_cell] * (grid - len(cells))
        rows.extend(b"".join(cell[y] for cell in cells) for y in range(len(blank_cell)))
    return _png(grid * cell_width, rows)


def _png_code_rows(code: _Code, width: int, height: int) -> list[bytes]:
    scale = png_module_pixels
    modules = {0: bytes([_WHITE]) * scale, 1: bytes([_BLACK]) * scale}
    left = (width - code.size * scale) // 2
    top = (height - code.size * scale) // 2
    white = bytes([_WHITE]) * width
    rows = [white] * top
    for matrix_row in code.matrix:
        line = b"".join(modules[module] for module in matrix_row)
        rows.extend([white[:left] + line + white[left + len(line) :]] * scale)
    rows.extend([white] * (height - len(rows)))
    return rows


def _png_label_pixels(label: str) -> int:
    """Width of a label in the 5x7 font: 5 pixels a glyph and 1 between glyphs."""
    return max(0, len(label) * (_FONT_WIDTH + 1) - 1) * png_font_scale


def _png_label_rows(label: str, width: int, height: int) -> list[bytes]:
    scale = png_font_scale
    white = bytes([_WHITE]) * width
    text_width = _png_label_pixels(label)
    left = (width - text_width) // 2
    gap = bytes([_WHITE]) * scale
    rows = [white] * (2 * scale)
    for font_row in range(_FONT_HEIGHT):
        line = gap.join(_glyph_pixels(char, font_row) for char in label)
        rows.extend([white[:left] + line + white[left + len(line) :]] * scale)
    rows.extend([white] * (height - len(rows)))
    return rows


def _glyph_pixels(char: str, font_row: int) -> bytes:
    bits = _FONT[char][font_row]
    return b"".join(bytes([_BLACK if bit == "#" else _WHITE]) * png_font_scale for bit in bits)


def _png(width: int, rows: list[bytes]) -> bytes:
    """An 8-bit grayscale PNG (colour type 0), every scanline with filter type 0 (none)."""
    ensure(all(len(row) == width for row in rows), "every PNG scanline has the image's width")
    header = struct.pack(">IIBBBBB", width, len(rows), 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"".join(b"\x00" + row for row in rows), 6)
    return (
        _PNG_SIGNATURE
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", pixels)
        + _png_chunk(b"IEND", b"")
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


# --- PDF sheet -----------------------------------------------------------------------------------


def sheet_pdf(items: Sequence[tuple[str, str]], columns: int = 4) -> bytes:
    """A grid of `(label, url)` codes as an A4 vector PDF of as many pages as needed.

    Code size depends only on `columns` (4 columns give codes 46 mm wide with their quiet zone),
    so every sheet printed with the same settings has the same label size.
    """
    codes = _codes(items, columns, ascii_labels=True)
    cell_width = (_A4_WIDTH_POINTS - 2 * _PDF_MARGIN_POINTS) / columns
    cell_height = cell_width + _PDF_LABEL_BAND_POINTS
    usable_height = _A4_HEIGHT_POINTS - 2 * _PDF_MARGIN_POINTS
    per_page = max(1, int(usable_height // cell_height)) * columns
    module = cell_width / _cell_modules(codes)
    pages = [
        _pdf_page(codes[start : start + per_page], columns, cell_width, cell_height, module)
        for start in range(0, len(codes), per_page)
    ]
    return _pdf_document(pages)


def _pdf_page(
    codes: list[_Code], columns: int, cell_width: float, cell_height: float, module: float
) -> bytes:
    """The content stream of one page: each code one filled path of module rectangles, drawn in
    module units through a transform whose y axis points down like the matrix's."""
    operations = ["0 g"]
    for index, code in enumerate(codes):
        row, column = divmod(index, columns)
        left = _PDF_MARGIN_POINTS + column * cell_width
        top = _A4_HEIGHT_POINTS - _PDF_MARGIN_POINTS - row * cell_height
        inset = (cell_width - code.size * module) / 2
        operations.append(
            f"q {_pdf_number(module)} 0 0 {_pdf_number(-module)} "
            f"{_pdf_number(left + inset)} {_pdf_number(top - inset)} cm"
        )
        operations.extend(f"{x} {y} {n} 1 re" for x, y, n in code.runs())
        operations.append("f Q")
        if code.label:
            baseline = top - cell_width - _PDF_LABEL_BAND_POINTS + 4
            operations.append(_pdf_label(code.label, left + cell_width / 2, baseline, cell_width))
    return "\n".join(operations).encode("ascii")


def _pdf_label(label: str, center: float, baseline: float, width: float) -> str:
    units = sum(_HELVETICA_WIDTHS[ord(char) - 32] for char in label)
    size = min(_PDF_FONT_POINTS, (width - 4) * 1000 / units)
    size = max(size, _PDF_FONT_POINTS_MIN)
    text = label.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    left = center - units * size / 2000
    return (
        f"BT /F1 {_pdf_number(size)} Tf {_pdf_number(left)} {_pdf_number(baseline)} Td "
        f"({text}) Tj ET"
    )


def _pdf_number(value: float) -> str:
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _pdf_document(pages: list[bytes]) -> bytes:
    """A PDF 1.4 file: catalog (1), page tree (2), Helvetica (3), then each page's dictionary and
    its Flate-compressed content stream, with a cross-reference table of byte offsets."""
    kids = " ".join(f"{4 + 2 * index} 0 R" for index in range(len(pages)))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode("ascii"),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    media_box = f"[0 0 {_pdf_number(_A4_WIDTH_POINTS)} {_pdf_number(_A4_HEIGHT_POINTS)}]"
    for index, content in enumerate(pages):
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox {media_box} "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {5 + 2 * index} 0 R >>".encode(
                "ascii"
            )
        )
        stream = zlib.compress(content, 6)
        objects.append(
            f"<< /Length {len(stream)} /Filter /FlateDecode >>\nstream\n".encode("ascii")
            + stream
            + b"\nendstream"
        )
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode("ascii") + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode("ascii")
    out += "".join(f"{offset:010d} 00000 n \n" for offset in offsets).encode("ascii")
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
    ).encode("ascii")
    return bytes(out)


# --- fonts ---------------------------------------------------------------------------------------

# Advance widths of Helvetica for characters 32-126 in WinAnsiEncoding, in 1/1000 em, from Adobe's
# Helvetica font metrics (the PDF viewer brings the font; we only need widths to centre labels).
# fmt: off
_HELVETICA_WIDTHS = (
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278,  # space-/
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556,  # 0-?
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778,  # @-O
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556,  # P-_
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556,  # `-o
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,  # p-~
)
# fmt: on

# A 5x7 pixel font for PNG labels, printable ASCII (32-126), drawn for this module. Each band is a
# line naming 16 characters, then their 7 pixel rows side by side, '#' dark and '.' light.
_FONT_ART = r"""
 !"#$%&'()*+,-./
..... ..#.. .#.#. .#.#. ..#.. ##... .##.. ..#.. ...#. .#... ..... ..... ..... ..... ..... .....
..... ..#.. .#.#. .#.#. .#### ##..# #..#. ..#.. ..#.. ..#.. ..#.. ..#.. ..... ..... ..... ....#
..... ..#.. ..... ##### #.#.. ...#. #.#.. .#... .#... ...#. #.#.# ..#.. ..... ..... ..... ...#.
..... ..#.. ..... .#.#. .###. ..#.. .#... ..... .#... ...#. .###. ##### ..... ##### ..... ..#..
..... ..#.. ..... ##### ..#.# .#... #.#.# ..... .#... ...#. #.#.# ..#.. .##.. ..... ..... .#...
..... ..... ..... .#.#. ####. #..## #..#. ..... ..#.. ..#.. ..#.. ..#.. ..#.. ..... .##.. #....
..... ..#.. ..... .#.#. ..#.. ...## .##.# ..... ...#. .#... ..... ..... .#... ..... .##.. .....
0123456789:;<=>?
.###. ..#.. .###. ##### ...#. ##### ..##. ##### .###. .###. ..... ..... ...#. ..... .#... .###.
#...# .##.. #...# ...#. ..##. #.... .#... ....# #...# #...# .##.. .##.. ..#.. ..... ..#.. #...#
#..## ..#.. ....# ..#.. .#.#. ####. #.... ...#. #...# #...# .##.. .##.. .#... ##### ...#. ....#
#.#.# ..#.. ...#. ...#. #..#. ....# ####. ..#.. .###. .#### ..... ..... #.... ..... ....# ...#.
##..# ..#.. ..#.. ....# ##### ....# #...# .#... #...# ....# .##.. .##.. .#... ##### ...#. ..#..
#...# ..#.. .#... #...# ...#. #...# #...# .#... #...# ...#. .##.. ..#.. ..#.. ..... ..#.. .....
.###. .###. ##### .###. ...#. .###. .###. .#... .###. .##.. ..... .#... ...#. ..... .#... ..#..
@ABCDEFGHIJKLMNO
.###. .###. ####. .###. ###.. ##### ##### .###. #...# .###. ..### #...# #.... #...# #...# .###.
#...# #...# #...# #...# #..#. #.... #.... #...# #...# ..#.. ...#. #..#. #.... ##.## #...# #...#
....# #...# #...# #.... #...# #.... #.... #.... #...# ..#.. ...#. #.#.. #.... #.#.# ##..# #...#
.##.# ##### ####. #.... #...# ####. ####. #.### ##### ..#.. ...#. ##... #.... #.#.# #.#.# #...#
#.#.# #...# #...# #.... #...# #.... #.... #...# #...# ..#.. ...#. #.#.. #.... #...# #..## #...#
#.#.# #...# #...# #...# #..#. #.... #.... #...# #...# ..#.. #..#. #..#. #.... #...# #...# #...#
.###. #...# ####. .###. ###.. ##### #.... .#### #...# .###. .##.. #...# ##### #...# #...# .###.
PQRSTUVWXYZ[\]^_
####. .###. ####. .#### ##### #...# #...# #...# #...# #...# ##### .###. ..... .###. ..#.. .....
#...# #...# #...# #.... ..#.. #...# #...# #...# #...# #...# ....# .#... #.... ...#. .#.#. .....
#...# #...# #...# #.... ..#.. #...# #...# #...# .#.#. .#.#. ...#. .#... .#... ...#. #...# .....
####. #...# ####. .###. ..#.. #...# #...# #.#.# ..#.. ..#.. ..#.. .#... ..#.. ...#. ..... .....
#.... #.#.# #.#.. ....# ..#.. #...# #...# #.#.# .#.#. ..#.. .#... .#... ...#. ...#. ..... .....
#.... #..#. #..#. ....# ..#.. #...# .#.#. #.#.# #...# ..#.. #.... .#... ....# ...#. ..... .....
#.... .##.# #...# ####. ..#.. .###. ..#.. .#.#. #...# ..#.. ##### .###. ..... .###. ..... #####
`abcdefghijklmno
.#... ..... #.... ..... ....# ..... ..##. ..... #.... ..#.. ...#. #.... .##.. ..... ..... .....
..#.. ..... #.... ..... ....# ..... .#..# .#### #.... ..... ..... #.... ..#.. ..... ..... .....
...#. .###. #.##. .###. .##.# .###. .#... #...# #.##. .##.. ..##. #..#. ..#.. ##.#. #.##. .###.
..... ....# ##..# #.... #..## #...# ###.. #...# ##..# ..#.. ...#. #.#.. ..#.. #.#.# ##..# #...#
..... .#### #...# #.... #...# ##### .#... .#### #...# ..#.. ...#. ##... ..#.. #.#.# #...# #...#
..... #...# #...# #...# #...# #.... .#... ....# #...# ..#.. #..#. #.#.. ..#.. #...# #...# #...#
..... .#### ####. .###. .#### .###. .#... .###. #...# .###. .##.. #..#. .###. #...# #...# .###.
pqrstuvwxyz{|}~
..... ..... ..... ..... .#... ..... ..... ..... ..... ..... ..... ...#. ..#.. .#... .....
..... ..... ..... ..... .#... ..... ..... ..... ..... ..... ..... ..#.. ..#.. ..#.. .....
####. .##.# #.##. .###. ###.. #...# #...# #...# #...# #...# ##### ..#.. ..#.. ..#.. .#...
#...# #..## ##..# #.... .#... #...# #...# #...# .#.#. #...# ...#. .#... ..#.. ...#. #.#.#
####. .#### #.... .###. .#... #...# #...# #.#.# ..#.. .#### ..#.. ..#.. ..#.. ..#.. ...#.
#.... ....# #.... ....# .#..# #..## .#.#. #.#.# .#.#. ....# .#... ..#.. ..#.. ..#.. .....
#.... ....# #.... ####. ..##. .##.# ..#.. .#.#. #...# .###. ##### ...#. ..#.. .#... .....
"""

_FONT_WIDTH = 5
_FONT_HEIGHT = 7


def _parse_font(art: str) -> dict[str, tuple[str, ...]]:
    lines = art.split("\n")[1:-1]
    glyphs: dict[str, tuple[str, ...]] = {}
    for band in range(0, len(lines), _FONT_HEIGHT + 1):
        names, rows = lines[band], lines[band + 1 : band + 1 + _FONT_HEIGHT]
        for index, char in enumerate(names):
            start = index * (_FONT_WIDTH + 1)
            glyphs[char] = tuple(row[start : start + _FONT_WIDTH] for row in rows)
    ensure(
        list(glyphs) == [chr(code) for code in range(32, 127)],
        "the PNG label font has each printable ASCII character once, in order",
    )
    ensure(
        all(len(row) == _FONT_WIDTH for glyph in glyphs.values() for row in glyph),
        "every glyph of the PNG label font is 5 pixels wide",
    )
    return glyphs


_FONT = _parse_font(_FONT_ART)
