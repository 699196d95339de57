"""One identity per GS1 key, however an EPCIS document names it.

The same item can be written as an EPC URI (`urn:epc:id:sgtin:0614141.107346.2018`) or as a
GS1 Digital Link URI on any domain (`https://example.com/01/10614141073464/21/2018`). The EPC
URI needs the GS1 company prefix length to be written, the Digital Link does not, so the one
form every node can compute from the text alone is the Digital Link's: `canonical(uri)` turns
either spelling into the Digital Link URI on GS1's resolver domain, with the key's check digit
verified, key qualifiers that do not identify (consumer product variant, lot of a serialised
item) dropped, and each value percent-encoded one way:

| key (EPC scheme) | EPC URI | canonical |
|---|---|---|
| SGTIN, an item | `urn:epc:id:sgtin:CP.IR.SER` | `https://id.gs1.org/01/{GTIN-14}/21/{serial}` |
| LGTIN, a lot (a class) | `urn:epc:class:lgtin:CP.IR.LOT` | `…/01/{GTIN-14}/10/{lot}` |
| GTIN, every item of a product | `urn:epc:idpat:sgtin:CP.IR.*` | `…/01/{GTIN-14}` |
| SSCC, a case or pallet | `urn:epc:id:sscc:CP.SR` | `…/00/{SSCC-18}` |
| SGLN, a location | `urn:epc:id:sgln:CP.LR.EXT` | `…/414/{GLN-13}[/254/{ext}]` |
| GRAI, a returnable asset | `urn:epc:id:grai:CP.AT.SER` | `…/8003/0{GRAI-13}{serial}` |
| GIAI, a fixed asset | `urn:epc:id:giai:CP.IAR` | `…/8004/{GIAI}` |
| GSRN, a service relation | `urn:epc:id:gsrn:CP.SR` / `gsrnp` | `…/8018/{GSRN}` / `…/8017/{GSRN}` |
| GDTI, a document | `urn:epc:id:gdti:CP.DT.SER` | `…/253/{GDTI-13}{serial}` |
| SGCN, a coupon | `urn:epc:id:sgcn:CP.CT.SER` | `…/255/{GCN-13}{serial}` |
| PGLN, a party | `urn:epc:id:pgln:CP.PR` | `…/417/{GLN-13}` |
| GINC, GSIN, CPI | `ginc`, `gsin`, `cpi` | `…/401/…`, `…/402/…`, `…/8010/…/8011/…` |

Any other URI (a private identifier, `urn:epc:id:gid:…`, an http URI that is no Digital Link)
is its own identity, kept exactly as written. See GS1 Tag Data Standard 2.x §6-7 (EPC URIs)
and GS1 Digital Link URI syntax 1.x (primary keys, qualifiers, their order).
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from xinchain.apps.provenance.gs1 import (
    InvalidIdentifier,
    Lgtin,
    Sgln,
    Sgtin,
    SgtinPattern,
    Sscc,
    check_cset82,
    check_digit,
    check_gtin14,
    check_key,
    digital_link_chars_max,
    digital_link_quote,
    digital_link_unquote,
    epc_unescape,
    normalize_gtin,
)

RESOLVER = "https://id.gs1.org"

# Kinds of what a key names. Instances are one physical or legal thing; classes are many.
INSTANCE_KINDS = frozenset(
    {"sgtin", "sscc", "sgln", "grai", "giai", "gsrn", "gsrnp", "gdti", "sgcn", "pgln", "ginc"}
    | {"gsin", "cpi"}
)
CLASS_KINDS = frozenset({"lgtin", "gtin"})
OTHER = "other"

_CSET39 = re.compile(r"[#\-/0-9A-Z]+", re.ASCII)
_DIGITS = re.compile(r"[0-9]+", re.ASCII)
_EPC_URN = re.compile(r"urn:epc:(id|class|idpat):([a-z0-9]+):(.*)", re.ASCII)
# Digital Link primary keys: AI → (kind, what it is).
_PRIMARY = {
    "01": "gtin",
    "00": "sscc",
    "414": "sgln",
    "8003": "grai",
    "8004": "giai",
    "8018": "gsrn",
    "8017": "gsrnp",
    "253": "gdti",
    "255": "sgcn",
    "417": "pgln",
    "401": "ginc",
    "402": "gsin",
    "8010": "cpi",
}
# Key qualifiers each primary key may carry, in the only order they may appear.
_QUALIFIERS = {"01": ("22", "10", "21"), "414": ("254",), "8010": ("8011",)}


@dataclass(frozen=True)
class Gs1Key:
    """What an identifier names: its `kind` (an EPC scheme name, "gtin" for a product, or
    "other"), its canonical `uri`, the GS1 key's own digits or characters (`key`: GTIN-14,
    SSCC-18, GLN-13, GRAI, GIAI, …) and its qualifier (`serial`, `lot` or GLN `extension`)."""

    kind: str
    uri: str
    key: str = ""
    serial: str = ""
    lot: str = ""
    extension: str = ""

    @property
    def is_gs1(self) -> bool:
        return self.kind != OTHER

    @property
    def path(self) -> str:
        """The Digital Link path (`/01/…/21/…`) of a GS1 key; "" for any other URI."""
        return self.uri[len(RESOLVER) :] if self.is_gs1 else ""


_Converter = Callable[[list[str], str, str], Gs1Key]


def canonical(text: str, field: str = "epc") -> Gs1Key:
    """The one identity of an EPC URI, a GS1 Digital Link URI, or any other URI; a malformed
    GS1 key is refused with `InvalidIdentifier` naming `field`."""
    try:
        return _canonical(text)
    except InvalidIdentifier as exc:
        raise InvalidIdentifier(exc.reason, field=field) from None


# The same few identifiers recur in every event of a journey and are read again by the view
# and the contract: a pure function, so its answers are kept (refusals are not).
@lru_cache(maxsize=16_384)
def _canonical(text: str) -> Gs1Key:
    field = "epc"
    if text[:8].lower() == "urn:epc:":
        if not text.startswith("urn:epc:"):
            raise InvalidIdentifier(f"write the EPC URI prefix in lower case: {text!r}")
        return _from_epc_uri(text, field)
    if text[:8].lower().startswith(("http://", "https://")):
        found = _from_digital_link(text, field)
        if found is not None:
            return found
    return Gs1Key(OTHER, text)


def canonical_uri(text: str, field: str = "epc") -> str:
    return canonical(text, field).uri


def item_key(gtin: str, serial: str) -> str:
    """The canonical key of the item a GTIN-14 and a serial name."""
    return _gtin_key(check_gtin14(gtin), serial=check_cset82(serial, "a serial", "serial")).uri


# --- EPC URIs ------------------------------------------------------------------------------------


def _from_epc_uri(uri: str, field: str) -> Gs1Key:
    match = _EPC_URN.fullmatch(uri)
    if match is None:
        return Gs1Key(OTHER, uri)
    form, scheme, body = match.groups()
    if (form, scheme) == ("id", "sgtin"):
        sgtin = Sgtin.parse(uri, field)
        return _gtin_key(sgtin.gtin, serial=sgtin.serial)
    if (form, scheme) == ("class", "lgtin"):
        lgtin = Lgtin.parse(uri, field)
        return _gtin_key(lgtin.gtin, lot=lgtin.lot)
    if (form, scheme) == ("idpat", "sgtin"):
        return _gtin_key(SgtinPattern.parse(uri, field).gtin)
    if form != "id":
        return Gs1Key(OTHER, uri)
    if scheme == "sscc":
        return _single("sscc", "00", Sscc.parse(uri, field).sscc)
    if scheme == "sgln":
        sgln = Sgln.parse(uri, field)
        return _location_key(sgln.gln, sgln.gln_extension or "")
    parts = body.split(".")
    converter = _EPC_SCHEMES.get(scheme)
    if converter is None:
        return Gs1Key(OTHER, uri)
    expected_parts, convert = converter
    if len(parts) != expected_parts:
        raise InvalidIdentifier(
            f"expected urn:epc:id:{scheme}: followed by {expected_parts} parts separated by "
            f"dots, found {uri!r}",
            field=field,
        )
    return convert(parts, uri, field)


def _prefix_and_digits(
    prefix: str, reference: str, total: int, what: str, uri: str, field: str
) -> str:
    """The company prefix and a reference of `total` digits together, checked."""
    if not (6 <= len(prefix) <= 12 and _DIGITS.fullmatch(prefix)):
        raise InvalidIdentifier(
            f"expected a company prefix of 6 to 12 digits in {uri!r}", field=field
        )
    if len(prefix) + len(reference) != total or (reference and not _DIGITS.fullmatch(reference)):
        raise InvalidIdentifier(
            f"expected the company prefix and {what} to have {total} digits together in {uri!r}",
            field=field,
        )
    return prefix + reference


def _grai(parts: list[str], uri: str, field: str) -> Gs1Key:
    body = _prefix_and_digits(parts[0], parts[1], 12, "asset type", uri, field)
    serial = check_cset82(epc_unescape(parts[2], field), "a GRAI serial", field, most=16)
    return _single("grai", "8003", "0" + body + check_digit(body) + serial)


def _giai(parts: list[str], uri: str, field: str) -> Gs1Key:
    _prefix_and_digits(parts[0], "", len(parts[0]), "", uri, field)
    reference = epc_unescape(parts[1], field)
    return _single("giai", "8004", check_cset82(parts[0] + reference, "a GIAI", field, most=30))


def _digits_key(kind: str, ai: str, total: int) -> _Converter:
    def convert(parts: list[str], uri: str, field: str) -> Gs1Key:
        body = _prefix_and_digits(parts[0], parts[1], total, "reference", uri, field)
        return _single(kind, ai, body + check_digit(body))

    return convert


def _serialised_key(kind: str, ai: str, what: str, most: int, digits_only: bool) -> _Converter:
    def convert(parts: list[str], uri: str, field: str) -> Gs1Key:
        body = _prefix_and_digits(parts[0], parts[1], 12, "reference", uri, field)
        serial = epc_unescape(parts[2], field)
        if digits_only and not _DIGITS.fullmatch(serial):
            raise InvalidIdentifier(f"expected {what} of digits in {uri!r}", field=field)
        return _single(
            kind, ai, body + check_digit(body) + check_cset82(serial, what, field, most=most)
        )

    return convert


def _ginc(parts: list[str], uri: str, field: str) -> Gs1Key:
    _prefix_and_digits(parts[0], "", len(parts[0]), "", uri, field)
    value = check_cset82(parts[0] + epc_unescape(parts[1], field), "a GINC", field, most=30)
    return _single("ginc", "401", value)


def _cpi(parts: list[str], uri: str, field: str) -> Gs1Key:
    _prefix_and_digits(parts[0], "", len(parts[0]), "", uri, field)
    return _cpi_key(parts[0] + epc_unescape(parts[1], field), parts[2], uri, field)


def _cpi_key(component: str, serial: str, uri: str, field: str) -> Gs1Key:
    """A component/part (AI 8010) and, for one instance, its serial (AI 8011)."""
    if len(component) > 30 or not _CSET39.fullmatch(component):
        raise InvalidIdentifier(
            f"expected a component/part reference of at most 30 characters 0-9 A-Z # - / in "
            f"{uri!r}",
            field=field,
        )
    quoted = digital_link_quote(component)
    if not serial:
        return Gs1Key("cpi", f"{RESOLVER}/8010/{quoted}", key=component)
    if not _DIGITS.fullmatch(serial) or len(serial) > 12:
        raise InvalidIdentifier(f"expected a CPI serial of 1-12 digits in {uri!r}", field=field)
    return Gs1Key("cpi", f"{RESOLVER}/8010/{quoted}/8011/{serial}", component, serial)


_EPC_SCHEMES: dict[str, tuple[int, _Converter]] = {
    "grai": (3, _grai),
    "giai": (2, _giai),
    "gsrn": (2, _digits_key("gsrn", "8018", 17)),
    "gsrnp": (2, _digits_key("gsrnp", "8017", 17)),
    "pgln": (2, _digits_key("pgln", "417", 12)),
    "gsin": (2, _digits_key("gsin", "402", 16)),
    "gdti": (3, _serialised_key("gdti", "253", "a GDTI serial", 17, digits_only=False)),
    "sgcn": (3, _serialised_key("sgcn", "255", "a coupon serial", 12, digits_only=True)),
    "ginc": (2, _ginc),
    "cpi": (3, _cpi),
}


# --- GS1 Digital Link ----------------------------------------------------------------------------


def _from_digital_link(uri: str, field: str) -> Gs1Key | None:
    """The key of a Digital Link URI; None when the URI's path holds no GS1 primary key
    followed by whole AI/value pairs (then it is no Digital Link, just a URI)."""
    if len(uri) > digital_link_chars_max:
        raise InvalidIdentifier(
            f"expected a URI of at most {digital_link_chars_max} characters, found {len(uri)}",
            field=field,
        )
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    segments = parts.path.split("/")[1:]
    for index, ai in enumerate(segments[:-1]):
        if ai in _PRIMARY and (len(segments) - index) % 2 == 0:
            pairs = segments[index + 2 :]
            qualifiers = [pairs[position] for position in range(0, len(pairs), 2)]
            if all(qualifier in _QUALIFIERS.get(ai, ()) for qualifier in qualifiers):
                return _digital_link_key(ai, segments[index + 1], pairs, uri, field)
    return None


def _digital_link_key(ai: str, value: str, pairs: list[str], uri: str, field: str) -> Gs1Key:
    allowed = _QUALIFIERS.get(ai, ())
    values: dict[str, str] = {}
    for position in range(0, len(pairs), 2):
        qualifier = pairs[position]
        if values and allowed.index(qualifier) <= allowed.index(list(values)[-1]):
            raise InvalidIdentifier(
                f"expected the key qualifiers of AI {ai} in the order {', '.join(allowed)}, each "
                f"at most once, found {qualifier} after {list(values)[-1]} in {uri!r}",
                field=field,
            )
        values[qualifier] = _unquote(pairs[position + 1], uri, field)
    key = _unquote(value, uri, field)
    if ai == "01":
        gtin = normalize_gtin(key, field)
        if "22" in values:
            check_cset82(values["22"], "a consumer product variant (AI 22)", field)
        serial = values.get("21")
        if serial is not None:
            return _gtin_key(gtin, serial=check_cset82(serial, "a serial (AI 21)", field))
        lot = values.get("10")
        if lot is not None:
            return _gtin_key(gtin, lot=check_cset82(lot, "a lot (AI 10)", field))
        return _gtin_key(gtin)
    if ai == "414":
        gln = check_key(key, 13, "GLN", field, f" in {uri!r}")
        # As in the SGLN EPC URI, extension "0" stands for none (GS1 Tag Data Standard).
        extension = values.get("254", "")
        extension = "" if extension == "0" else extension
        if extension:
            check_cset82(extension, "a GLN extension (AI 254)", field)
        return _location_key(gln, extension)
    if ai == "8010":
        return _cpi_key(key, values.get("8011", ""), uri, field)
    kind = _PRIMARY[ai]
    if kind in ("sscc", "gsrn", "gsrnp", "pgln", "gsin"):
        length = {"sscc": 18, "gsrn": 18, "gsrnp": 18, "pgln": 13, "gsin": 17}[kind]
        return _single(kind, ai, check_key(key, length, kind.upper(), field, f" in {uri!r}"))
    if kind == "grai":
        check_key(key[:14], 14, "GRAI", field, f" in {uri!r}")
        if key[0] != "0":
            raise InvalidIdentifier(f"expected a GRAI starting with 0 in {uri!r}", field=field)
        if len(key) > 14:
            check_cset82(key[14:], "a GRAI serial", field, most=16)
        return _single(kind, ai, key)
    if kind in ("gdti", "sgcn"):
        check_key(key[:13], 13, kind.upper(), field, f" in {uri!r}")
        most = 17 if kind == "gdti" else 12
        if len(key) > 13:
            check_cset82(key[13:], f"a {kind.upper()} serial", field, most=most)
        return _single(kind, ai, key)
    return _single(kind, ai, check_cset82(key, f"a {kind.upper()}", field, most=30))


def _unquote(text: str, uri: str, field: str) -> str:
    value = digital_link_unquote(text, f"each value in {uri!r}", field)
    if not value:
        raise InvalidIdentifier(f"expected a value after each AI in {uri!r}", field=field)
    return value


# --- building keys -------------------------------------------------------------------------------


def _gtin_key(gtin: str, *, serial: str = "", lot: str = "") -> Gs1Key:
    if serial:
        return Gs1Key(
            "sgtin", f"{RESOLVER}/01/{gtin}/21/{digital_link_quote(serial)}", gtin, serial
        )
    if lot:
        uri = f"{RESOLVER}/01/{gtin}/10/{digital_link_quote(lot)}"
        return Gs1Key("lgtin", uri, gtin, lot=lot)
    return Gs1Key("gtin", f"{RESOLVER}/01/{gtin}", gtin)


def _location_key(gln: str, extension: str) -> Gs1Key:
    suffix = f"/254/{digital_link_quote(extension)}" if extension else ""
    return Gs1Key("sgln", f"{RESOLVER}/414/{gln}{suffix}", gln, extension=extension)


def _single(kind: str, ai: str, key: str) -> Gs1Key:
    return Gs1Key(kind, f"{RESOLVER}/{ai}/{digital_link_quote(key)}", key)
