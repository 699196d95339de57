"""Tests for `xinchain.apps.provenance.gs1`: GS1 keys, EPC URIs and GS1 Digital Link.

Scenarios:

* Worked examples of the research memo (section 2), every one: the check digit of
  1061414107346; SGTIN 0614141.107346.2018 ↔ GTIN 10614141073464 ↔ /01/10614141073464/21/2018;
  SSCC 0614141.1234567890 ↔ 106141412345678908 ↔ /00/…; the five SGLN fixture locations with and
  without extension; LGTIN 4012345.012345.998877 → /01/04012345123456/10/998877; the pattern
  4012345.098765.* → 04012345987652; `A/B%C?1&2` → `A%2FB%25C%3F1%262`.
* Bad check digits are refused for GTIN, SSCC, GLN and inside a Digital Link, naming the digit
  expected; wrong lengths are refused for every key, company prefix and reference, and for
  serials and lots; digits outside ASCII are refused.
* Escaping: exactly `" % & / < > ?` are escaped in EPC URIs, other escapes and bare special
  characters are refused; Digital Link leaves only A-Z a-z 0-9 - . _ unencoded and refuses
  malformed escapes and non-UTF-8; every serial and lot of the GS1 character set round-trips
  through both forms (hypothesis).
* Digital Link parsing: URLs and paths, a path prefix, queries ignored, GTIN-8/12/13 padded to 14,
  qualifiers 22/10/21 in that order only, each once, and nothing else after the GTIN.
* `digital_link_url` joins a base URL and a path, and refuses a base that is not an http(s) URL
  without query.
* Every refusal is an `InvalidIdentifier` whose field names the input.
"""

from __future__ import annotations

import string
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xinchain.apps.provenance import gs1
from xinchain.apps.provenance.gs1 import (
    DigitalLink,
    InvalidIdentifier,
    Lgtin,
    Sgln,
    Sgtin,
    SgtinPattern,
    Sscc,
    check_digit,
    check_gln13,
    check_gtin14,
    check_lot,
    check_serial,
    check_sscc18,
    digital_link_path,
    digital_link_quote,
    digital_link_url,
    epc_escape,
    epc_unescape,
    is_sgtin,
    lot_digital_link_path,
    normalize_gtin,
    parse_digital_link,
)

CSET82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
EPC_SPECIALS = '"%&/<>?'
gs1_values = st.text(alphabet=CSET82, min_size=1, max_size=20)


# --- the memo's worked examples ------------------------------------------------------------------


def test_check_digit_of_the_memo_example() -> None:
    assert check_digit("1061414107346") == "4"


def test_cset82_has_82_characters() -> None:
    assert len(set(CSET82)) == 82


def test_sgtin_fixture_to_gtin_and_digital_link() -> None:
    sgtin = Sgtin.parse("urn:epc:id:sgtin:0614141.107346.2018")
    assert (sgtin.company_prefix, sgtin.item_reference, sgtin.serial) == (
        "0614141",
        "107346",
        "2018",
    )
    assert sgtin.gtin == "10614141073464"
    assert sgtin.digital_link_path == "/01/10614141073464/21/2018"
    assert sgtin.element_string == "(01)10614141073464(21)2018"


def test_sgtin_fixture_back_from_gtin() -> None:
    assert Sgtin.from_gtin("10614141073464", "2018").uri == "urn:epc:id:sgtin:0614141.107346.2018"


def test_sscc_fixture_both_ways() -> None:
    sscc = Sscc.parse("urn:epc:id:sscc:0614141.1234567890")
    assert sscc.sscc == "106141412345678908"
    assert sscc.digital_link_path == "/00/106141412345678908"
    assert sscc.element_string == "(00)106141412345678908"
    assert Sscc.from_sscc("106141412345678908").uri == "urn:epc:id:sscc:0614141.1234567890"


@pytest.mark.parametrize(
    ("uri", "gln", "extension", "element_string", "path"),
    [
        (
            "urn:epc:id:sgln:0614141.07346.1234",
            "0614141073467",
            "1234",
            "(414)0614141073467(254)1234",
            "/414/0614141073467/254/1234",
        ),
        (
            "urn:epc:id:sgln:0012345.11111.400",
            "0012345111112",
            "400",
            "(414)0012345111112(254)400",
            "/414/0012345111112/254/400",
        ),
        (
            "urn:epc:id:sgln:0012345.11111.0",
            "0012345111112",
            None,
            "(414)0012345111112",
            "/414/0012345111112",
        ),
        (
            "urn:epc:id:sgln:0614141.00777.0",
            "0614141007776",
            None,
            "(414)0614141007776",
            "/414/0614141007776",
        ),
        (
            "urn:epc:id:sgln:0614141.00888.0",
            "0614141008889",
            None,
            "(414)0614141008889",
            "/414/0614141008889",
        ),
    ],
)
def test_sgln_fixture_locations(
    uri: str, gln: str, extension: str | None, element_string: str, path: str
) -> None:
    sgln = Sgln.parse(uri)
    assert sgln.gln == gln
    assert sgln.gln_extension == extension
    assert sgln.element_string == element_string
    assert sgln.digital_link_path == path
    assert Sgln.from_gln(gln, extension).uri == uri


def test_lgtin_fixture_to_digital_link_and_back() -> None:
    lgtin = Lgtin.parse("urn:epc:class:lgtin:4012345.012345.998877")
    assert lgtin.gtin == "04012345123456"
    assert lgtin.lot == "998877"
    assert lgtin.digital_link_path == "/01/04012345123456/10/998877"
    assert lgtin.element_string == "(01)04012345123456(10)998877"
    assert Lgtin.from_gtin("04012345123456", "998877").uri == lgtin.uri
    assert parse_digital_link(lgtin.digital_link_path) == ("04012345123456", None, "998877")


def test_sgtin_pattern_fixture_gives_its_gtin() -> None:
    pattern = SgtinPattern.parse("urn:epc:idpat:sgtin:4012345.098765.*")
    assert pattern.gtin == "04012345987652"
    assert pattern.uri == "urn:epc:idpat:sgtin:4012345.098765.*"


def test_digital_link_quote_fixture() -> None:
    assert digital_link_quote("A/B%C?1&2") == "A%2FB%25C%3F1%262"


def test_digital_link_path_of_a_fixture_serial() -> None:
    path = digital_link_path("10614141073464", "A/B%C?1&2")
    assert path == "/01/10614141073464/21/A%2FB%25C%3F1%262"


# --- check digits and lengths --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("check", "value", "expected_digit"),
    [
        (check_gtin14, "10614141073465", "4"),
        (check_sscc18, "106141412345678907", "8"),
        (check_gln13, "0614141073460", "7"),
    ],
)
def test_bad_check_digit_is_refused_naming_the_right_one(
    check: Callable[[str], str], value: str, expected_digit: str
) -> None:
    with pytest.raises(InvalidIdentifier) as raised:
        check(value)
    assert f"check digit {value[-1]}, expected {expected_digit}" in raised.value.reason


@pytest.mark.parametrize(
    ("check", "value", "field"),
    [
        (check_gtin14, "1061414107346", "gtin"),
        (check_gtin14, "106141410734644", "gtin"),
        (check_gtin14, "", "gtin"),
        (check_gtin14, "1061414107346x", "gtin"),
        (check_gtin14, "10614141073464\n", "gtin"),
        (check_sscc18, "10614141234567890", "sscc"),
        (check_gln13, "061414107346", "gln"),
    ],
)
def test_wrong_length_or_non_digit_keys_are_refused(
    check: Callable[[str], str], value: str, field: str
) -> None:
    with pytest.raises(InvalidIdentifier) as raised:
        check(value)
    assert raised.value.field == field
    assert "digits, found" in raised.value.reason


def test_digits_outside_ascii_are_refused() -> None:
    arabic_indic = "".join(chr(0x0660 + int(digit)) for digit in "10614141073464")
    with pytest.raises(InvalidIdentifier):
        check_gtin14(arabic_indic)
    with pytest.raises(InvalidIdentifier):
        Sgtin.parse(f"urn:epc:id:sgtin:{arabic_indic[:7]}.107346.1")


@pytest.mark.parametrize(
    ("gtin", "gtin14"),
    [
        ("96385074", "00000096385074"),  # GTIN-8
        ("614141073467", "00614141073467"),  # GTIN-12 (UPC-A)
        ("4012345123456", "04012345123456"),  # GTIN-13 (EAN-13)
        ("10614141073464", "10614141073464"),
    ],
)
def test_normalize_gtin_pads_8_12_13_digits(gtin: str, gtin14: str) -> None:
    assert normalize_gtin(gtin) == gtin14


@pytest.mark.parametrize("gtin", ["9638507", "123456789", "1234567890", "12345678901", "1" * 15])
def test_normalize_gtin_refuses_other_lengths(gtin: str) -> None:
    with pytest.raises(InvalidIdentifier, match="8, 12, 13 or 14 digits"):
        normalize_gtin(gtin)


def test_normalize_gtin_checks_the_check_digit_of_short_gtins() -> None:
    with pytest.raises(InvalidIdentifier, match="expected 4"):
        normalize_gtin("96385075")


@pytest.mark.parametrize(
    "uri",
    [
        "urn:epc:id:sgtin:0614141.10734.2018",  # 12 digits before the serial
        "urn:epc:id:sgtin:0614141.1073466.2018",  # 14
        "urn:epc:id:sgtin:06141.41107346.2018",  # 5-digit company prefix
        "urn:epc:id:sgtin:0614141.107346.",  # no serial
        "urn:epc:id:sgtin:0614141.107346.123456789012345678901",  # 21-character serial
        "urn:epc:id:sgtin:0614141.107346.20 18",  # space is not a GS1 character
        "urn:epc:id:sgtin:0614141.107346.2018\n",
        "urn:epc:id:sgln:0614141.07346.0",  # another scheme
        "urn:epc:id:sgtin:0614141107346.2018",
    ],
)
def test_malformed_sgtin_uris_are_refused(uri: str) -> None:
    with pytest.raises(InvalidIdentifier) as raised:
        Sgtin.parse(uri, field="epcList")
    assert raised.value.field == "epcList"


@pytest.mark.parametrize(
    "uri",
    [
        "urn:epc:id:sscc:0614141.123456789",  # 16 digits
        "urn:epc:id:sscc:0614141.12345678901",  # 18 digits
        "urn:epc:id:sscc:0614141.123456789A",
    ],
)
def test_malformed_sscc_uris_are_refused(uri: str) -> None:
    with pytest.raises(InvalidIdentifier, match="17 digits in all"):
        Sscc.parse(uri)


@pytest.mark.parametrize(
    "uri",
    [
        "urn:epc:id:sgln:0614141.0734.0",  # 11 digits
        "urn:epc:id:sgln:0614141.073466.0",  # 13 digits
        "urn:epc:id:sgln:0614141.07346",  # no extension
        "urn:epc:id:sgln:0614141.07346.123456789012345678901",
    ],
)
def test_malformed_sgln_uris_are_refused(uri: str) -> None:
    with pytest.raises(InvalidIdentifier) as raised:
        Sgln.parse(uri)
    assert raised.value.field == "location"


def test_sgln_with_a_12_digit_company_prefix_has_an_empty_location_reference() -> None:
    sgln = Sgln.parse("urn:epc:id:sgln:061414100000..0")
    assert sgln.location_reference == ""
    assert sgln.gln == "0614141000005"


@pytest.mark.parametrize(
    "uri",
    [
        "urn:epc:class:lgtin:4012345.01234.998877",
        "urn:epc:class:lgtin:4012345.012345.",
        "urn:epc:id:lgtin:4012345.012345.998877",
    ],
)
def test_malformed_lgtin_uris_are_refused(uri: str) -> None:
    with pytest.raises(InvalidIdentifier, match="lgtin"):
        Lgtin.parse(uri)


def test_sgtin_pattern_needs_the_star() -> None:
    with pytest.raises(InvalidIdentifier):
        SgtinPattern.parse("urn:epc:idpat:sgtin:4012345.098765.1")


def test_constructors_check_their_fields() -> None:
    with pytest.raises(InvalidIdentifier) as raised:
        Sgtin("0614141", "107346", "")
    assert raised.value.field == "serial"
    with pytest.raises(InvalidIdentifier) as raised:
        Sgtin("0614141", "10734", "1")
    assert raised.value.field == "item_reference"
    with pytest.raises(InvalidIdentifier) as raised:
        Sscc("06141", "123456789012")
    assert raised.value.field == "company_prefix"
    with pytest.raises(InvalidIdentifier) as raised:
        Lgtin("4012345", "012345", "x" * 21)
    assert raised.value.field == "lot"


@pytest.mark.parametrize("digits", [5, 13])
def test_company_prefix_length_is_6_to_12(digits: int) -> None:
    with pytest.raises(InvalidIdentifier, match=f"6 to 12 digits, found {digits}"):
        Sgtin.from_gtin("10614141073464", "1", company_prefix_digits=digits)


def test_company_prefix_length_decides_the_split() -> None:
    assert Sgtin.from_gtin("10614141073464", "1", 9).uri == "urn:epc:id:sgtin:061414107.1346.1"
    assert Sscc.from_sscc("106141412345678908", 9).uri == "urn:epc:id:sscc:061414123.14567890"
    assert Sgln.from_gln("0614141073467", "1", 9).uri == "urn:epc:id:sgln:061414107.346.1"


def test_sgln_extension_zero_means_none_and_is_not_an_extension() -> None:
    assert Sgln.from_gln("0614141073467").uri == "urn:epc:id:sgln:0614141.07346.0"
    with pytest.raises(InvalidIdentifier, match="means none"):
        Sgln.from_gln("0614141073467", "0")


def test_serials_and_lots_are_1_to_20_gs1_characters() -> None:
    assert check_serial("x" * 20) == "x" * 20
    assert check_lot("0018") == "0018"
    for bad in ["", "x" * 21, "a b", "é", "a#b", "a\nb"]:
        with pytest.raises(InvalidIdentifier, match="1-20 GS1 characters"):
            check_serial(bad)
        with pytest.raises(InvalidIdentifier, match="expected a lot"):
            check_lot(bad)


def test_leading_zeros_of_a_serial_are_kept() -> None:
    assert Sgtin.parse("urn:epc:id:sgtin:0614141.107346.0018").serial == "0018"
    assert parse_digital_link("/01/10614141073464/21/0018").serial == "0018"


# --- escaping ------------------------------------------------------------------------------------


def test_exactly_seven_characters_are_escaped_in_epc_uris() -> None:
    escaped = {char for char in CSET82 if epc_escape(char) != char}
    assert escaped == set(EPC_SPECIALS)
    assert epc_escape(EPC_SPECIALS) == "%22%25%26%2F%3C%3E%3F"


def test_sgtin_uri_escapes_its_serial() -> None:
    sgtin = Sgtin("0614141", "107346", 'A/B"%')
    assert sgtin.uri == "urn:epc:id:sgtin:0614141.107346.A%2FB%22%25"
    assert Sgtin.parse(sgtin.uri) == sgtin


def test_lowercase_escapes_are_read_too() -> None:
    assert Sgtin.parse("urn:epc:id:sgtin:0614141.107346.A%2fB").serial == "A/B"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("A%41", "%41"),  # 'A' needs no escape
        ("A%2", "%2"),  # truncated
        ("A%", "%"),
        ("A/B", "'/' escaped as %2F"),
        ("A?B", "'?' escaped as %3F"),
        ('A"B', "escaped as %22"),
    ],
)
def test_other_escapes_and_bare_specials_are_refused(text: str, why: str) -> None:
    with pytest.raises(InvalidIdentifier) as raised:
        epc_unescape(text, field="epcList")
    assert why in raised.value.reason
    assert raised.value.field == "epcList"
    with pytest.raises(InvalidIdentifier):
        Sgtin.parse(f"urn:epc:id:sgtin:0614141.107346.{text}")


def test_a_serial_of_20_escaped_characters_fits() -> None:
    serial = "/" * 20
    uri = Sgtin("0614141", "107346", serial).uri
    assert len(uri) > 60
    assert Sgtin.parse(uri).serial == serial


def test_digital_link_leaves_only_unreserved_characters_unencoded() -> None:
    unencoded = {char for char in CSET82 if digital_link_quote(char) == char}
    assert unencoded == set(string.ascii_letters + string.digits + "-._")


@given(gs1_values)
def test_every_serial_round_trips_through_the_epc_uri(serial: str) -> None:
    sgtin = Sgtin("0614141", "107346", serial)
    assert Sgtin.parse(sgtin.uri) == sgtin
    assert epc_unescape(epc_escape(serial)) == serial


@given(gs1_values)
def test_every_lot_round_trips_through_the_epc_uri(lot: str) -> None:
    lgtin = Lgtin("4012345", "012345", lot)
    assert Lgtin.parse(lgtin.uri) == lgtin


@given(gs1_values, gs1_values)
def test_every_serial_and_lot_round_trip_through_the_digital_link(serial: str, lot: str) -> None:
    path = digital_link_path("10614141073464", serial)
    assert parse_digital_link(path) == ("10614141073464", serial, None)
    lot_path = lot_digital_link_path("10614141073464", lot)
    assert parse_digital_link(f"{lot_path}/21/{digital_link_quote(serial)}") == DigitalLink(
        "10614141073464", serial, lot
    )


@given(gs1_values)
def test_every_sgln_extension_round_trips(extension: str) -> None:
    sgln = Sgln("0614141", "07346", extension)
    assert Sgln.parse(sgln.uri) == sgln


# --- Digital Link parsing ------------------------------------------------------------------------


def test_parse_a_full_url_with_path_prefix_and_query() -> None:
    url = "https://id.example.com/trace/01/10614141073464/21/2018?17=261231&linkType=gs1:pip#x"
    assert parse_digital_link(url) == DigitalLink("10614141073464", "2018", None)


def test_parse_a_path() -> None:
    assert parse_digital_link("/01/10614141073464/21/2018") == ("10614141073464", "2018", None)


def test_parse_pads_short_gtins() -> None:
    assert parse_digital_link("/01/4012345123456/10/L1").gtin == "04012345123456"
    assert parse_digital_link("/01/96385074").gtin == "00000096385074"


def test_parse_all_qualifiers_in_order_and_drops_the_variant() -> None:
    link = parse_digital_link("http://h/01/10614141073464/22/V1/10/L%2F1/21/S%261")
    assert link == DigitalLink("10614141073464", "S&1", "L/1")


def test_parse_a_prefix_that_itself_contains_01() -> None:
    link = parse_digital_link("https://h/01/x/01/10614141073464/21/01")
    assert link == DigitalLink("10614141073464", "01", None)


@pytest.mark.parametrize(
    ("link", "why"),
    [
        ("/01/10614141073465/21/2018", "check digit 5, expected 4"),
        ("/01/1061414107346/21/2018", "check digit"),  # a 13-digit GTIN with a wrong check digit
        ("/01/106141410734/21/2018", "check digit"),  # 12 digits, wrong check digit
        ("/01/10614141073464/21/2018/10/L1", "order 22, 10, 21"),
        ("/01/10614141073464/21/1/21/2", "order 22, 10, 21"),
        ("/01/10614141073464/17/261231", "key qualifier 22, 10 or 21"),
        ("/01/10614141073464/21", "expected a Digital Link path"),
        ("/01/10614141073464/21/", "expected a serial"),
        ("/01/10614141073464/21/a%zz", "%XX escapes"),
        ("/01/10614141073464/21/%FF", "UTF-8"),
        ("/01/10614141073464/21/%C3%A9", "expected a serial"),  # é is not a GS1 character
        ("/01/10614141073464/21/" + "x" * 21, "1-20 GS1 characters"),
        ("/00/106141412345678908", "expected a Digital Link path"),
        ("01/10614141073464/21/2018", "starting with /"),
        ("ftp://h/01/10614141073464/21/2018", "http or https"),
        ("https:///01/10614141073464/21/2018", "http or https"),
        ("/01/" + "1" * gs1.digital_link_chars_max, "at most"),
    ],
)
def test_malformed_digital_links_are_refused(link: str, why: str) -> None:
    with pytest.raises(InvalidIdentifier) as raised:
        parse_digital_link(link, field="scan")
    assert why in raised.value.reason
    assert raised.value.field == "scan"


# --- building URLs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "url"),
    [
        ("https://trace.example.com", "https://trace.example.com/01/10614141073464/21/A%2FB"),
        ("https://trace.example.com/", "https://trace.example.com/01/10614141073464/21/A%2FB"),
        ("http://127.0.0.1:8080/scan", "http://127.0.0.1:8080/scan/01/10614141073464/21/A%2FB"),
    ],
)
def test_digital_link_url_joins_base_and_path(base: str, url: str) -> None:
    assert digital_link_url(base, "10614141073464", "A/B") == url
    assert parse_digital_link(url) == ("10614141073464", "A/B", None)


@pytest.mark.parametrize(
    "base",
    [
        "trace.example.com",
        "ftp://trace.example.com",
        "https://",
        "https://trace.example.com/?x=1",
        "https://trace.example.com/#top",
        "https://trace example.com",
        "https://例子.com",
    ],
)
def test_digital_link_url_refuses_bad_bases(base: str) -> None:
    with pytest.raises(InvalidIdentifier) as raised:
        digital_link_url(base, "10614141073464", "1")
    assert raised.value.field == "base_url"


def test_digital_link_url_checks_gtin_and_serial() -> None:
    with pytest.raises(InvalidIdentifier) as raised:
        digital_link_url("https://h", "10614141073465", "1")
    assert raised.value.field == "gtin"
    with pytest.raises(InvalidIdentifier) as raised:
        digital_link_url("https://h", "10614141073464", "a b")
    assert raised.value.field == "serial"


def test_is_sgtin() -> None:
    assert is_sgtin("urn:epc:id:sgtin:0614141.107346.2018")
    assert not is_sgtin("urn:epc:id:sscc:0614141.1234567890")
