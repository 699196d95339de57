"""One identity per GS1 key (provenance/keys.py), checked against GS1's worked examples.

Scenarios:
- each EPC URI scheme and its Digital Link spelling give one canonical key (GS1 Tag Data
  Standard's examples: SGTIN, SSCC, SGLN, GRAI, GIAI, GSRN, GDTI, SGCN, LGTIN, GTIN class)
- a Digital Link on any domain, with a path prefix, a consumer product variant, a lot before the
  serial, or a query, names the same item as the bare EPC URI
- values are compared unescaped: an EPC escape and a percent-encoding of one serial agree
- refused, naming the field: a wrong check digit, qualifiers out of order, an EPC URI of the
  wrong digit count, an upper-case EPC prefix
- a URI that is no GS1 key is its own identity, kept as written
"""

from __future__ import annotations

import pytest

from xinchain.apps.provenance.gs1 import InvalidIdentifier
from xinchain.apps.provenance.keys import canonical

R = "https://id.gs1.org"


@pytest.mark.parametrize(
    ("epc_uri", "digital_link", "kind"),
    [
        ("urn:epc:id:sgtin:0614141.107346.2018", f"{R}/01/10614141073464/21/2018", "sgtin"),
        ("urn:epc:id:sscc:0614141.1234567890", f"{R}/00/106141412345678908", "sscc"),
        ("urn:epc:id:sgln:0614141.12345.400", f"{R}/414/0614141123452/254/400", "sgln"),
        ("urn:epc:id:sgln:0614141.12345.0", f"{R}/414/0614141123452", "sgln"),
        ("urn:epc:id:grai:0614141.12345.400", f"{R}/8003/00614141123452400", "grai"),
        ("urn:epc:id:giai:0614141.12345400", f"{R}/8004/061414112345400", "giai"),
        ("urn:epc:id:gsrn:0614141.1234567890", f"{R}/8018/061414112345678902", "gsrn"),
        ("urn:epc:id:gdti:0614141.12345.400", f"{R}/253/0614141123452400", "gdti"),
        ("urn:epc:id:sgcn:4012345.67890.04711", f"{R}/255/401234567890104711", "sgcn"),
        ("urn:epc:class:lgtin:4012345.012345.998877", f"{R}/01/04012345123456/10/998877", "lgtin"),
        ("urn:epc:idpat:sgtin:4012345.012345.*", f"{R}/01/04012345123456", "gtin"),
    ],
)
def test_an_epc_uri_and_its_digital_link_are_one_key(
    epc_uri: str, digital_link: str, kind: str
) -> None:
    assert canonical(epc_uri) == canonical(digital_link)
    assert canonical(epc_uri).uri == digital_link
    assert canonical(epc_uri).kind == kind


@pytest.mark.parametrize(
    "spelling",
    [
        "https://brand.example.com/01/10614141073464/21/2018",
        "http://example.org/shop/path/01/10614141073464/21/2018",
        "https://id.gs1.org/01/10614141073464/22/2A/10/LOT9/21/2018?17=261231",
    ],
)
def test_every_digital_link_spelling_of_an_item_is_its_key(spelling: str) -> None:
    assert canonical(spelling).uri == f"{R}/01/10614141073464/21/2018"


def test_a_short_gtin_is_its_gtin_14() -> None:
    gtin_13 = canonical("https://id.gs1.org/01/0614141073467/21/2018")
    assert gtin_13.uri == f"{R}/01/00614141073467/21/2018"


def test_escaped_and_percent_encoded_serials_agree() -> None:
    from_epc = canonical("urn:epc:id:sgtin:0614141.107346.A%2FB")
    from_link = canonical("https://id.gs1.org/01/10614141073464/21/A%2FB")
    assert from_epc == from_link and from_epc.serial == "A/B"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("https://id.gs1.org/00/106141412345678909", "check digit 9, expected 8"),
        ("https://id.gs1.org/01/10614141073464/21/1/10/L", "in the order 22, 10, 21"),
        ("urn:epc:id:sscc:0614141.123456789", "17 digits in all"),
        ("urn:epc:id:grai:0614141.1234.400", "12 digits together"),
        ("URN:EPC:id:sgtin:0614141.107346.1", "lower case"),
        ("https://id.gs1.org/414/0614141123453", "check digit 3, expected 2"),
    ],
)
def test_a_malformed_key_is_refused_naming_why(text: str, words: str) -> None:
    with pytest.raises(InvalidIdentifier) as caught:
        canonical(text, "epcList[0]")
    assert words in caught.value.reason and caught.value.field == "epcList[0]"


@pytest.mark.parametrize(
    "uri",
    ["urn:epc:id:gid:95100000.12345.400", "https://example.com/assets/77", "urn:uuid:1-2-3"],
)
def test_a_uri_that_is_no_gs1_key_is_its_own_identity(uri: str) -> None:
    key = canonical(uri)
    assert (key.kind, key.uri, key.is_gs1) == ("other", uri, False)
