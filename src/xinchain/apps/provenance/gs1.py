"""GS1 identifiers: check digits, EPC URIs (SGTIN, SSCC, SGLN, LGTIN) and GS1 Digital Link paths.

The rules come from GS1's Tag Data Standard (EPC URIs) and GS1 Digital Link; the research memo for
issue 4 (section 2) sums them up with worked examples, which tests/unit/test_gs1.py checks.

* **Check digit** (GTIN, SSCC, GLN): weights 3, 1, 3, … from the rightmost data digit.
* **SGTIN** `urn:epc:id:sgtin:CP.IR.SERIAL`: company prefix CP (6-12 digits), then the indicator
  digit and item reference IR (13 digits in all with CP). GTIN-14 = IR[0] + CP + IR[1:] + check
  digit; Digital Link `/01/{GTIN-14}/21/{serial}`. The company prefix length is not in the GTIN,
  so going back from a GTIN needs it from elsewhere (the brand registers it with the product).
  Example: `urn:epc:id:sgtin:0614141.107346.2018` ↔ `/01/10614141073464/21/2018`.
* **SSCC** `urn:epc:id:sscc:CP.SR` (17 digits): SSCC-18 = SR[0] + CP + SR[1:] + check digit;
  Digital Link `/00/{SSCC-18}`.
* **SGLN** `urn:epc:id:sgln:CP.LR.EXT` (CP and LR 12 digits, LR may be empty): GLN-13 = CP + LR +
  check digit, and EXT is the GLN extension (AI 254), where "0" means none.
* **LGTIN** `urn:epc:class:lgtin:CP.IR.LOT`: a GTIN as for SGTIN plus a lot (AI 10); Digital Link
  `/01/{GTIN-14}/10/{lot}`.

Serials, lots and extensions are 1-20 characters of GS1's character set 82 (`CSET 82`). Inside an
EPC URI exactly `" % & / < > ?` are escaped (`%22 %25 %26 %2F %3C %3E %3F`); inside a Digital Link
path everything but `A-Z a-z 0-9 - . _` is percent-encoded. Values are compared unescaped: they are
the identity, and GS1 keeps leading zeros ("0018" is not "18").
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from typing import NamedTuple

from xinchain.errors import XinchainError

# A Digital Link URI is at most a few hundred characters: a domain, 14 GTIN digits and three
# 20-character qualifiers, each at most 60 characters percent-encoded. 2,000 is the URL length
# browsers and proxies are known to pass; anything longer is not a URL someone scanned.
digital_link_chars_max = 2_000

_COMPANY_PREFIX = re.compile(r"[0-9]{6,12}")
_DIGITS = re.compile(r"[0-9]*")
# GS1 AI encodable character set 82: ! " % & ' ( ) * + , - . / 0-9 : ; < = > ? A-Z _ a-z.
_CSET82 = re.compile(r"[!\"%-?A-Z_a-z]+", re.ASCII)
_SGTIN = re.compile(r"urn:epc:id:sgtin:([0-9]{6,12})\.([0-9]{1,7})\.(.+)")
_SGTIN_PATTERN = re.compile(r"urn:epc:idpat:sgtin:([0-9]{6,12})\.([0-9]{1,7})\.\*")
_LGTIN = re.compile(r"urn:epc:class:lgtin:([0-9]{6,12})\.([0-9]{1,7})\.(.+)")
_SSCC = re.compile(r"urn:epc:id:sscc:([0-9]{6,12})\.([0-9]{5,11})")
_SGLN = re.compile(r"urn:epc:id:sgln:([0-9]{6,12})\.([0-9]{0,6})\.(.+)")
_GTIN_LENGTHS = (8, 12, 13, 14)
# Characters that Tag Data Standard escapes inside an EPC URI, and their escapes.
_EPC_ESCAPES = {
    '"': "%22",
    "%": "%25",
    "&": "%26",
    "/": "%2F",
    "<": "%3C",
    ">": "%3E",
    "?": "%3F",
}
_EPC_UNESCAPES = {escape: char for char, escape in _EPC_ESCAPES.items()}
_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
# GS1 Digital Link key qualifiers of a GTIN, in the only order they may appear.
_GTIN_QUALIFIERS = {"22": "consumer product variant", "10": "lot", "21": "serial"}


class InvalidIdentifier(XinchainError):
    code = "invalid_identifier"


# --- check digits and plain values ---------------------------------------------------------------


def check_digit(digits: str) -> str:
    """GS1 mod-10 check digit for the digits before it: weights 3,1,3,… from the right."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return str((10 - total % 10) % 10)


def check_key(value: str, length: int, name: str, field: str, where: str = "") -> str:
    """A GS1 key of `length` digits whose last digit is the check digit of the others.
    `where` ends the message, e.g. " in 'https://id.gs1.org/…'"."""
    if len(value) != length or not value.isascii() or not value.isdigit():
        raise InvalidIdentifier(
            f"expected a {name} of {length} digits, found {value!r}{where}", field=field
        )
    expected = check_digit(value[:-1])
    if value[-1] != expected:
        raise InvalidIdentifier(
            f"{name} {value} has check digit {value[-1]}, expected {expected}", field=field
        )
    return value


def check_gtin14(gtin: str, field: str = "gtin") -> str:
    return check_key(gtin, 14, "GTIN", field)


def normalize_gtin(gtin: str, field: str = "gtin") -> str:
    """A GTIN-8, -12, -13 or -14, check digit verified, as the GTIN-14 GS1 Digital Link uses."""
    if len(gtin) not in _GTIN_LENGTHS or not gtin.isascii() or not gtin.isdigit():
        raise InvalidIdentifier(
            f"expected a GTIN of 8, 12, 13 or 14 digits, found {gtin!r}", field=field
        )
    return check_gtin14(gtin.rjust(14, "0"), field)


def check_sscc18(sscc: str, field: str = "sscc") -> str:
    return check_key(sscc, 18, "SSCC", field)


def check_gln13(gln: str, field: str = "gln") -> str:
    return check_key(gln, 13, "GLN", field)


def check_cset82(value: str, what: str, field: str, *, most: int = 20) -> str:
    """A serial, lot, extension or reference: 1 to `most` characters of GS1's set 82."""
    if not value or len(value) > most or not _CSET82.fullmatch(value):
        raise InvalidIdentifier(
            f"expected {what} of 1-{most} GS1 characters (A-Z a-z 0-9 and "
            f"!\"%&'()*+,-./:;<=>?_), found {value!r}",
            field=field,
        )
    return value


def check_serial(serial: str, field: str = "serial") -> str:
    return check_cset82(serial, "a serial", field)


def check_lot(lot: str, field: str = "lot") -> str:
    return check_cset82(lot, "a lot", field)


def _check_prefix_and_reference(
    company_prefix: str, reference: str, total: int, reference_name: str, field: str | None
) -> None:
    if not _COMPANY_PREFIX.fullmatch(company_prefix):
        raise InvalidIdentifier(
            f"expected a company prefix of 6 to 12 digits, found {company_prefix!r}",
            field=field or "company_prefix",
        )
    expected = total - len(company_prefix)
    if len(reference) != expected or not _DIGITS.fullmatch(reference):
        raise InvalidIdentifier(
            f"with the {len(company_prefix)}-digit company prefix {company_prefix}, expected "
            f"{reference_name} of {expected} digits, found {reference!r}",
            field=field or reference_name.replace(" ", "_"),
        )


def _check_company_prefix_digits(digits: int) -> None:
    if not 6 <= digits <= 12:
        raise InvalidIdentifier(
            f"a company prefix has 6 to 12 digits, found {digits}", field="company_prefix_digits"
        )


def _gtin_of(company_prefix: str, item_reference: str) -> str:
    body = item_reference[0] + company_prefix + item_reference[1:]
    return body + check_digit(body)


def _split_gtin(gtin: str, company_prefix_digits: int) -> tuple[str, str]:
    """(company prefix, indicator + item reference) of a checked GTIN-14."""
    _check_company_prefix_digits(company_prefix_digits)
    prefix = gtin[1 : 1 + company_prefix_digits]
    return prefix, gtin[0] + gtin[1 + company_prefix_digits : 13]


# --- escaping ------------------------------------------------------------------------------------


def epc_escape(value: str) -> str:
    """A serial, lot or extension as it is written inside an EPC URI."""
    return "".join(_EPC_ESCAPES.get(char, char) for char in value)


def epc_unescape(text: str, field: str = "epc") -> str:
    """The value an EPC URI component stands for. Only the seven escapes of `_EPC_ESCAPES` are
    allowed (hex digits in either case), and the seven characters they stand for never appear
    bare: so each value has exactly one spelling (up to hex case)."""
    out: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "%":
            escape = text[index : index + 3].upper()
            if escape not in _EPC_UNESCAPES:
                raise InvalidIdentifier(
                    "expected one of the EPC URI escapes %22 %25 %26 %2F %3C %3E %3F, found "
                    f"{text[index : index + 3]!r} in {text!r}",
                    field=field,
                )
            out.append(_EPC_UNESCAPES[escape])
            index += 3
            continue
        if char in _EPC_ESCAPES:
            raise InvalidIdentifier(
                f"expected {char!r} escaped as {_EPC_ESCAPES[char]} in an EPC URI, found it bare "
                f"in {text!r}",
                field=field,
            )
        out.append(char)
        index += 1
    return "".join(out)


def digital_link_quote(value: str) -> str:
    """A value as it is written in a Digital Link path: all but A-Z a-z 0-9 - . _ encoded."""
    return urllib.parse.quote(value, safe="-._")


def digital_link_unquote(text: str, what: str, field: str) -> str:
    """A Digital Link path segment's value: every % must start a %XX escape of UTF-8."""
    if "%" in _PERCENT_ESCAPE.sub("", text):
        raise InvalidIdentifier(
            f"expected {what} whose % signs start %XX escapes (two hex digits), found {text!r}",
            field=field,
        )
    try:
        return urllib.parse.unquote(text, errors="strict")
    except UnicodeDecodeError:
        raise InvalidIdentifier(
            f"expected {what} percent-encoded as UTF-8, found {text!r}", field=field
        ) from None


# --- EPC identifiers -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Sgtin:
    """A serialised trade item: one GTIN and one serial."""

    company_prefix: str
    item_reference: str  # indicator digit first
    serial: str  # unescaped

    def __post_init__(self) -> None:
        _check_prefix_and_reference(
            self.company_prefix, self.item_reference, 13, "item reference", None
        )
        check_serial(self.serial)

    @property
    def gtin(self) -> str:
        return _gtin_of(self.company_prefix, self.item_reference)

    @property
    def uri(self) -> str:
        return (
            f"urn:epc:id:sgtin:{self.company_prefix}.{self.item_reference}."
            f"{epc_escape(self.serial)}"
        )

    @property
    def digital_link_path(self) -> str:
        return digital_link_path(self.gtin, self.serial)

    @property
    def element_string(self) -> str:
        return f"(01){self.gtin}(21){self.serial}"

    @classmethod
    def parse(cls, uri: str, field: str = "epc") -> Sgtin:
        match = _SGTIN.fullmatch(uri)
        if match is None or len(match[1]) + len(match[2]) != 13:
            raise InvalidIdentifier(
                "expected urn:epc:id:sgtin:<company prefix>.<indicator and item reference>."
                f"<serial> with 13 digits before the serial, found {uri!r}",
                field=field,
            )
        serial = check_serial(epc_unescape(match[3], field), field)
        return cls(match[1], match[2], serial)

    @classmethod
    def from_gtin(cls, gtin: str, serial: str, company_prefix_digits: int = 7) -> Sgtin:
        """The SGTIN of a GTIN-14 and serial. The company prefix length is not in the GTIN;
        GS1 assigns it, and 7 digits (the fixtures' 0614141) is the default here."""
        check_gtin14(gtin)
        check_serial(serial)
        return cls(*_split_gtin(gtin, company_prefix_digits), serial)


@dataclass(frozen=True)
class SgtinPattern:
    """`urn:epc:idpat:sgtin:CP.IR.*`: every serial of one GTIN (an EPCIS class or query)."""

    company_prefix: str
    item_reference: str  # indicator digit first

    def __post_init__(self) -> None:
        _check_prefix_and_reference(
            self.company_prefix, self.item_reference, 13, "item reference", None
        )

    @property
    def gtin(self) -> str:
        return _gtin_of(self.company_prefix, self.item_reference)

    @property
    def uri(self) -> str:
        return f"urn:epc:idpat:sgtin:{self.company_prefix}.{self.item_reference}.*"

    @classmethod
    def parse(cls, uri: str, field: str = "epc_class") -> SgtinPattern:
        match = _SGTIN_PATTERN.fullmatch(uri)
        if match is None or len(match[1]) + len(match[2]) != 13:
            raise InvalidIdentifier(
                "expected urn:epc:idpat:sgtin:<company prefix>.<indicator and item reference>.* "
                f"with 13 digits before the *, found {uri!r}",
                field=field,
            )
        return cls(match[1], match[2])


@dataclass(frozen=True)
class Lgtin:
    """A lot of a trade item: one GTIN and one lot (batch) number."""

    company_prefix: str
    item_reference: str  # indicator digit first
    lot: str  # unescaped

    def __post_init__(self) -> None:
        _check_prefix_and_reference(
            self.company_prefix, self.item_reference, 13, "item reference", None
        )
        check_lot(self.lot)

    @property
    def gtin(self) -> str:
        return _gtin_of(self.company_prefix, self.item_reference)

    @property
    def uri(self) -> str:
        return (
            f"urn:epc:class:lgtin:{self.company_prefix}.{self.item_reference}."
            f"{epc_escape(self.lot)}"
        )

    @property
    def digital_link_path(self) -> str:
        return lot_digital_link_path(self.gtin, self.lot)

    @property
    def element_string(self) -> str:
        return f"(01){self.gtin}(10){self.lot}"

    @classmethod
    def parse(cls, uri: str, field: str = "epc_class") -> Lgtin:
        match = _LGTIN.fullmatch(uri)
        if match is None or len(match[1]) + len(match[2]) != 13:
            raise InvalidIdentifier(
                "expected urn:epc:class:lgtin:<company prefix>.<indicator and item reference>."
                f"<lot> with 13 digits before the lot, found {uri!r}",
                field=field,
            )
        lot = check_lot(epc_unescape(match[3], field), field)
        return cls(match[1], match[2], lot)

    @classmethod
    def from_gtin(cls, gtin: str, lot: str, company_prefix_digits: int = 7) -> Lgtin:
        check_gtin14(gtin)
        check_lot(lot)
        return cls(*_split_gtin(gtin, company_prefix_digits), lot)


@dataclass(frozen=True)
class Sscc:
    """A logistic unit (a case or a pallet): its Serial Shipping Container Code."""

    company_prefix: str
    serial_reference: str  # extension digit first

    def __post_init__(self) -> None:
        _check_prefix_and_reference(
            self.company_prefix, self.serial_reference, 17, "serial reference", None
        )

    @property
    def sscc(self) -> str:
        body = self.serial_reference[0] + self.company_prefix + self.serial_reference[1:]
        return body + check_digit(body)

    @property
    def uri(self) -> str:
        return f"urn:epc:id:sscc:{self.company_prefix}.{self.serial_reference}"

    @property
    def digital_link_path(self) -> str:
        return f"/00/{self.sscc}"

    @property
    def element_string(self) -> str:
        return f"(00){self.sscc}"

    @classmethod
    def parse(cls, uri: str, field: str = "epc") -> Sscc:
        match = _SSCC.fullmatch(uri)
        if match is None or len(match[1]) + len(match[2]) != 17:
            raise InvalidIdentifier(
                "expected urn:epc:id:sscc:<company prefix>.<extension digit and serial "
                f"reference> with 17 digits in all, found {uri!r}",
                field=field,
            )
        return cls(match[1], match[2])

    @classmethod
    def from_sscc(cls, sscc: str, company_prefix_digits: int = 7) -> Sscc:
        check_sscc18(sscc)
        _check_company_prefix_digits(company_prefix_digits)
        prefix = sscc[1 : 1 + company_prefix_digits]
        return cls(prefix, sscc[0] + sscc[1 + company_prefix_digits : 17])


@dataclass(frozen=True)
class Sgln:
    """A location: a GLN-13 and an optional GLN extension (AI 254), "0" meaning none."""

    company_prefix: str
    location_reference: str  # may be empty, when the company prefix has 12 digits
    extension: str  # unescaped; "0" = no extension

    def __post_init__(self) -> None:
        _check_prefix_and_reference(
            self.company_prefix, self.location_reference, 12, "location reference", None
        )
        check_cset82(self.extension, "a GLN extension", "extension")

    @property
    def gln(self) -> str:
        body = self.company_prefix + self.location_reference
        return body + check_digit(body)

    @property
    def gln_extension(self) -> str | None:
        """The AI 254 value, or None for the GLN alone."""
        return None if self.extension == "0" else self.extension

    @property
    def uri(self) -> str:
        return (
            f"urn:epc:id:sgln:{self.company_prefix}.{self.location_reference}."
            f"{epc_escape(self.extension)}"
        )

    @property
    def digital_link_path(self) -> str:
        extension = self.gln_extension
        suffix = "" if extension is None else f"/254/{digital_link_quote(extension)}"
        return f"/414/{self.gln}{suffix}"

    @property
    def element_string(self) -> str:
        extension = self.gln_extension
        return f"(414){self.gln}" + ("" if extension is None else f"(254){extension}")

    @classmethod
    def parse(cls, uri: str, field: str = "location") -> Sgln:
        match = _SGLN.fullmatch(uri)
        if match is None or len(match[1]) + len(match[2]) != 12:
            raise InvalidIdentifier(
                "expected urn:epc:id:sgln:<company prefix>.<location reference>.<extension> "
                f"with 12 digits before the extension (0 for none), found {uri!r}",
                field=field,
            )
        extension = check_cset82(epc_unescape(match[3], field), "a GLN extension", field)
        return cls(match[1], match[2], extension)

    @classmethod
    def from_gln(
        cls, gln: str, extension: str | None = None, company_prefix_digits: int = 7
    ) -> Sgln:
        check_gln13(gln)
        _check_company_prefix_digits(company_prefix_digits)
        if extension == "0":
            # In the EPC URI "0" stands for "no extension", so an extension of 0 cannot be told
            # apart from none; GS1 reserves it for exactly that.
            raise InvalidIdentifier(
                "expected a GLN extension other than 0, which means none; pass None",
                field="extension",
            )
        if extension is not None:
            check_cset82(extension, "a GLN extension", "extension")
        prefix = gln[:company_prefix_digits]
        return cls(prefix, gln[company_prefix_digits:12], extension or "0")


# --- GS1 Digital Link ----------------------------------------------------------------------------


class DigitalLink(NamedTuple):
    """What a GTIN Digital Link identifies: a GTIN-14, and a serial or a lot or both."""

    gtin: str
    serial: str | None
    lot: str | None


def digital_link_path(gtin: str, serial: str) -> str:
    check_gtin14(gtin)
    check_serial(serial)
    return f"/01/{gtin}/21/{digital_link_quote(serial)}"


def lot_digital_link_path(gtin: str, lot: str) -> str:
    check_gtin14(gtin)
    check_lot(lot)
    return f"/01/{gtin}/10/{digital_link_quote(lot)}"


def digital_link_url(base_url: str, gtin: str, serial: str) -> str:
    """The URL an item's QR code carries: `base_url` (scheme, host and an optional path prefix,
    such as a node's `https://trace.example.com`) followed by `/01/{gtin}/21/{serial}`."""
    parts = urllib.parse.urlsplit(base_url)
    printable = base_url.isascii() and base_url.isprintable() and " " not in base_url
    if (
        not printable
        or parts.scheme not in ("http", "https")
        or not parts.netloc
        or parts.query
        or parts.fragment
        or "?" in base_url
        or "#" in base_url
    ):
        raise InvalidIdentifier(
            "expected an http or https URL with a host, an optional path and no query, "
            f"found {base_url!r}",
            field="base_url",
        )
    return base_url.rstrip("/") + digital_link_path(gtin, serial)


def parse_digital_link(url_or_path: str, field: str = "digital_link") -> DigitalLink:
    """The GTIN-14, serial and lot of a GS1 Digital Link URL or path.

    Accepts `[https://host[/prefix]]/01/{gtin}[/22/{variant}][/10/{lot}][/21/{serial}]`, ignoring
    any query (data attributes) and fragment: GTINs of 8, 12, 13 or 14 digits (check digit
    verified, returned as 14) and key qualifiers in GS1's order 22, 10, 21. A consumer product
    variant (22) is checked and then dropped: nothing here is keyed on it.
    """
    if len(url_or_path) > digital_link_chars_max:
        raise InvalidIdentifier(
            f"expected a Digital Link of at most {digital_link_chars_max} characters, found "
            f"{len(url_or_path)}",
            field=field,
        )
    parts = urllib.parse.urlsplit(url_or_path)
    if parts.scheme or parts.netloc:
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidIdentifier(
                f"expected an http or https Digital Link URL, found {url_or_path!r}", field=field
            )
    elif not url_or_path.startswith("/"):
        raise InvalidIdentifier(
            f"expected a Digital Link URL or a path starting with /, found {url_or_path!r}",
            field=field,
        )
    segments = parts.path.split("/")[1:]
    start = _gtin_segment(segments)
    if start is None:
        raise InvalidIdentifier(
            "expected a Digital Link path /01/{GTIN}[/22/{variant}][/10/{lot}][/21/{serial}], "
            f"found {parts.path!r}",
            field=field,
        )
    gtin = normalize_gtin(segments[start + 1], field)
    values = _gtin_qualifiers(segments[start + 2 :], field)
    return DigitalLink(gtin, values.get("21"), values.get("10"))


def _gtin_segment(segments: list[str]) -> int | None:
    """Index of the first `01` segment followed by a GTIN and by whole qualifier pairs (a path
    prefix before it is allowed by GS1 Digital Link and may contain anything)."""
    for index, segment in enumerate(segments[:-1]):
        key = segments[index + 1]
        if (
            segment == "01"
            and (len(segments) - index) % 2 == 0
            and len(key) in _GTIN_LENGTHS
            and key.isascii()
            and key.isdigit()
        ):
            return index
    return None


def _gtin_qualifiers(pairs: list[str], field: str) -> dict[str, str]:
    """The unescaped values of the key qualifiers after a GTIN, by AI, checked for order."""
    order = list(_GTIN_QUALIFIERS)
    values: dict[str, str] = {}
    for position in range(0, len(pairs), 2):
        ai, text = pairs[position], pairs[position + 1]
        if ai not in _GTIN_QUALIFIERS:
            raise InvalidIdentifier(
                f"expected a key qualifier 22, 10 or 21 after the GTIN, found {ai!r}", field=field
            )
        if values and order.index(ai) <= order.index(list(values)[-1]):
            raise InvalidIdentifier(
                "expected key qualifiers in the order 22, 10, 21, each at most once, found "
                f"{ai} after {list(values)[-1]}",
                field=field,
            )
        what = f"a {_GTIN_QUALIFIERS[ai]} (AI {ai})"
        values[ai] = check_cset82(digital_link_unquote(text, what, field), what, field)
    return values


def is_sgtin(epc: str) -> bool:
    return epc.startswith("urn:epc:id:sgtin:")
