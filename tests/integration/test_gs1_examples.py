"""GS1's own EPCIS 2.0 examples, every one, on a real node.

The 47 documents of the `JSON/` folder of github.com/gs1/EPCIS (tests/data/gs1-epcis, with
their source and licence) are imported one after another into one chain started by
`xinchain up`, each by a member whose roles allow its steps, after only what a brand really does
first: register the products and commission the serialised items that a document names but does
not itself create (and, for an error declaration, the event it retracts is recorded first by the
same member, as it would have been). No governance vote is cast.

Scenarios:
- every document imports, except two that GS1 would refuse too: a query answer (not a capture
  document) and a document naming one key twice in one JSON object;
- the error declaration of Example 9.6.1's shipping event retracts that event on chain, and the
  item's page shows it retracted, linking its corrective events;
- every key an imported document names (items, cases, lots, assets, locations) exports as an
  EPCIS 2.0 document that validates against GS1's schema, keeps every field of every event, and
  declares every prefix its events use: expanded as JSON-LD with pyld against GS1's context held
  offline, no extension field is dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import RunningNode, running_node
from pyld import jsonld  # type: ignore[import-untyped]

from xinchain.apps.provenance.contract import DEFAULT_STEP_ROLES, EXTENSION_STEPS
from xinchain.apps.provenance.epcis import (
    CONTEXT_URL,
    GS1_DATA,
    canonical_json,
    context_terms,
    document_events_to_chain,
    event_parts,
    from_chain_event,
    to_chain_event,
)
from xinchain.apps.provenance.keys import canonical
from xinchain.client.member import Member
from xinchain.client.sdk import Client
from xinchain.node.home import DEMO_ORGS, Home

pytestmark = pytest.mark.slow  # a real node

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "gs1-epcis"
# The refusals GS1 would make as well, and the words each refusal must say.
REFUSED = {
    # A query answer (EPCISQueryDocument) is not a capture document.
    "EPCISQueryDocument.jsonld": "expected type 'EPCISDocument', found 'EPCISQueryDocument'",
    # Its event names "eventID" twice: JSON-LD and EPCIS read one value per key.
    "AssociationEvent/AssociationEvent-h.jsonld": "the key 'eventID' appears twice",
}
# Members tried in this order for a document; the first whose roles allow all its steps records.
RECORDERS = ("forwarder", "warehouse", "brand", "platform", "customs")
ROLES = {org: set(roles) for org, _, roles in DEMO_ORGS}
DIGITAL_LINK_COPIES = "WithDigitalLinkID/"
# GS1's examples commission some serials in more than one document (Example 9.6.4 again in
# Digital Link spelling, and again in "all possible fields"); an item is commissioned once, so
# each such document goes to a chain of its own, where the brand's preconditions hold for it.
OWN_CHAIN = (
    DIGITAL_LINK_COPIES,
    "WithFullCombinationOfFields/transformation_event_all_possible_fields.jsonld",
)


def documents() -> list[str]:
    return sorted(str(path.relative_to(EXAMPLES)) for path in EXAMPLES.rglob("*.jsonld"))


def recorder_for(steps: set[str]) -> str:
    for org in RECORDERS:
        allowed = [
            DEFAULT_STEP_ROLES.get(step) or DEFAULT_STEP_ROLES[EXTENSION_STEPS] for step in steps
        ]
        if all(ROLES[org] & set(roles) for roles in allowed):
            return org
    raise AssertionError(f"no member may record all of {sorted(steps)}")


class Brand:
    """What a brand does before others record events about its goods."""

    def __init__(self, client: Client, member: Member) -> None:
        self.client, self.member = client, member
        self.products: set[str] = set()
        self.items: set[str] = set()

    def register(self, gtin: str) -> None:
        if gtin not in self.products:
            args = {
                "gtin": gtin,
                "name": "GS1 example",
                "origin": "GS1",
                "company_prefix_digits": 7,
            }
            self.client.member_call(self.member, "provenance", "register_product", args)
            self.products.add(gtin)

    def commission(self, uris: list[str]) -> None:
        fresh = [uri for uri in uris if uri not in self.items]
        if not fresh:
            return
        event = {
            "type": "ObjectEvent",
            "action": "ADD",
            "bizStep": "commissioning",
            "epcList": fresh,
            "eventTime": "2000-01-01T00:00:00Z",
            "eventTimeZoneOffset": "+00:00",
        }
        chain_events = document_events_to_chain(_document([event]))
        self.client.member_call(
            self.member, "provenance", "record_events", {"events": chain_events}
        )
        self.items.update(fresh)

    def prepare(self, chain_events: list[dict[str, Any]]) -> None:
        """Register every GTIN of a serialised item the events name; commission those items
        that no commissioning event among them creates (an error declaration names items it
        does not vouch for, so it needs none)."""
        needed: list[str] = []
        created: set[str] = set()
        for chain_event in chain_events:
            parts = event_parts(from_chain_event(chain_event))
            created.update(parts.created)
            if parts.declaration is not None:
                continue
            named = [*chain_event["epcs"], chain_event["parent_id"]]
            needed += [uri for uri in named if uri and canonical(uri).kind == "sgtin"]
        for uri in [*needed, *created]:
            self.register(canonical(uri).key)
        self.commission([uri for uri in dict.fromkeys(needed) if uri not in created])
        self.items.update(created)


def _document(events: list[dict[str, Any]]) -> str:
    return json.dumps(
        {
            "@context": [CONTEXT_URL],
            "type": "EPCISDocument",
            "schemaVersion": "2.0",
            "creationDate": "2000-01-01T00:00:00Z",
            "epcisBody": {"eventList": events},
        }
    )


def _import_all(node: RunningNode, names: list[str]) -> dict[str, str]:
    """Each document's outcome: "" when it imported, else why it was refused."""
    home = Home(node.home)
    genesis = home.genesis()
    members = {org: Member(genesis, org, home.org_key(genesis.suite, org)) for org in ROLES}
    outcomes: dict[str, str] = {}
    with Client(node.api) as client:
        brand = Brand(client, members["brand"])
        for name in names:
            text = (EXAMPLES / name).read_text(encoding="utf-8")
            try:
                chain_events = document_events_to_chain(text)
                originals = _originals(chain_events)
                brand.prepare([*originals, *chain_events])
                org = recorder_for({event["biz_step"] for event in chain_events})
                if originals:
                    args = {"events": originals}
                    client.member_call(members[org], "provenance", "record_events", args)
                args = {"events": chain_events}
                client.member_call(members[org], "provenance", "record_events", args)
                outcomes[name] = ""
            except Exception as exc:  # each outcome, refusal or not, is asserted by the tests
                outcomes[name] = f"{type(exc).__name__}: {exc}"
    return outcomes


def _originals(chain_events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """An error declaration repeats the event it retracts, which was recorded before by the
    same member; GS1's examples hold the declarations only, so the events are made from them."""
    originals = []
    for chain_event in chain_events:
        event = from_chain_event(chain_event)
        if "errorDeclaration" in event and event.get("eventID"):
            original = {key: value for key, value in event.items() if key != "errorDeclaration"}
            originals.append(to_chain_event(original))
    return originals


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    with running_node(tmp_path_factory.mktemp("gs1") / "home", "ed25519-sha256") as started:
        yield started


@pytest.fixture(scope="module")
def imported(node: RunningNode, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Every document's outcome, those of `OWN_CHAIN` each on a fresh chain: on one chain the
    same items would be commissioned twice (`test_one_item_whichever_spelling`: refused)."""
    names = documents()
    outcomes = _import_all(node, [name for name in names if not name.startswith(OWN_CHAIN)])
    for group in OWN_CHAIN:
        home = tmp_path_factory.mktemp("gs1-more") / "home"
        with running_node(home, "ed25519-sha256") as another:
            outcomes.update(_import_all(another, [n for n in names if n.startswith(group)]))
    return outcomes


def test_every_gs1_example_imports_but_those_gs1_would_refuse(imported: dict[str, str]) -> None:
    assert len(imported) == 47
    refused = {name: reason for name, reason in imported.items() if reason}
    assert set(refused) == set(REFUSED), "\n".join(f"{k}: {v}" for k, v in refused.items())
    for name, words in REFUSED.items():
        assert words in refused[name], refused[name]
    assert len(imported) - len(refused) >= 45


def test_an_error_declaration_retracts_the_event_it_repeats(
    node: RunningNode, imported: dict[str, str]
) -> None:
    assert not imported[
        "WithErrorDeclaration/Example_9.6.1-ObjectEvent-with-error-declaration.jsonld"
    ]
    answer = httpx.get(
        f"{node.api}/v1/provenance/keys",
        params={"id": "urn:epc:id:sgtin:0614141.107346.2017"},
        timeout=10,
    ).json()
    declared_id = "ni:///sha-256;aa49daa1fe0b773e0437e546078dc87de9c864d5b9babe84488f31478887fdf3"
    shipping = {
        step["event"]["eventID"]: step
        for step in answer["steps"]
        if step["biz_step"] == "shipping" and not step["declares"]
    }
    retracted = {e.split("?")[0]: e for e, step in shipping.items() if step["retracted_by"]}
    # Retracted: that event, and the transaction event of the "all possible fields" example.
    assert len(retracted) == 2 and declared_id in retracted
    corrected_by = shipping[retracted[declared_id]]["corrected_by"]
    assert [entry["event_id"] for entry in corrected_by] == [
        "ni:///sha-256;c6407ffcac52ec159528f2b556ba4ac3844c5aa48485c1fd61643e94f0a2d678?ver=CBV2.0",
        "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
    ]
    # Neither corrective event is among GS1's examples, so neither is linked to a digest
    # (tests/unit/test_provenance_contract.py links one that is on chain).
    assert [entry["digest"] for entry in corrected_by] == ["", ""]
    page = httpx.get(f"{node.api}/01/10614141073464/21/2017?lang=en", timeout=10).text
    # The page marks every retracted event of the item's journey, its cases' included.
    shown = [s for s in answer["steps"] if s["retracted_by"] and not s["declares"]]
    assert page.count("class='step retracted'") == len(shown) >= 2
    assert "declared this event in error" in page


def test_one_item_whichever_spelling(node: RunningNode, imported: dict[str, str]) -> None:
    """Example 9.6.4 in Digital Link spelling commissions the items Example 9.6.4 in EPC URI
    spelling already commissioned on this chain: the same items, so it is refused."""
    assert not imported["Example_9.6.4-TransformationEvent.jsonld"]
    outcome = _import_all(
        node, [f"{DIGITAL_LINK_COPIES}Example_9.6.4-TransformationEventWithDigitalLink.jsonld"]
    )
    (reason,) = outcome.values()
    assert "https://id.gs1.org/01/04012345778892/21/25 is already commissioned" in reason


def _imported_events(imported: dict[str, str]) -> Iterator[dict[str, Any]]:
    for name, reason in imported.items():
        if not reason and not name.startswith(OWN_CHAIN):
            for chain_event in document_events_to_chain((EXAMPLES / name).read_text("utf-8")):
                yield from_chain_event(chain_event)


def _keys_of(event: dict[str, Any]) -> list[str]:
    parts = event_parts(event)
    named = [
        *event.get("epcList", []),
        *event.get("childEPCs", []),
        *event.get("inputEPCList", []),
        *event.get("outputEPCList", []),
        *([event["parentID"]] if event.get("parentID") else []),
    ]
    return [canonical(uri).uri for uri in named] + list(parts.classes)


def _gs1_context() -> dict[str, Any]:
    return dict(json.loads((GS1_DATA / "epcis-context.jsonld").read_text()))


def _offline_loader(url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    if url.rstrip("/") != CONTEXT_URL:
        raise jsonld.JsonLdError(f"no network: {url}", "loading document failed")
    return {"contextUrl": None, "documentUrl": url, "document": _gs1_context()}


def _prefixed_fields(value: object) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if ":" in key and not key.startswith(("http:", "https:", "urn:", "@")):
                yield key
            yield from _prefixed_fields(item)
    elif isinstance(value, list):
        for item in value:
            yield from _prefixed_fields(item)


def _expanded_iris(value: object) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _expanded_iris(item)
    elif isinstance(value, list):
        for item in value:
            yield from _expanded_iris(item)


def test_every_imported_key_exports_whole_with_every_prefix_declared(
    node: RunningNode, imported: dict[str, str]
) -> None:
    events = list(_imported_events(imported))
    keys = sorted({key for event in events for key in _keys_of(event)})
    assert len(keys) >= 40
    gs1_terms = context_terms(_gs1_context()["@context"])
    exported: dict[str, list[dict[str, Any]]] = {}
    with httpx.Client(timeout=30) as client:
        for key in keys:
            answer = client.get(f"{node.api}/v1/provenance/keys/epcis", params={"id": key})
            assert answer.status_code == 200, (key, answer.text)
            chain_events = document_events_to_chain(answer.text)  # GS1's schema, our rules
            document = json.loads(answer.text)
            exported[key] = [from_chain_event(chain_event) for chain_event in chain_events]
            expanded = jsonld.expand(document, {"documentLoader": _offline_loader})
            iris = set(_expanded_iris(expanded))
            for exported_event in document["epcisBody"]["eventList"]:
                # An event's own @context applies inside it, after the document's.
                declared = {
                    **gs1_terms,
                    **context_terms(document["@context"]),
                    **context_terms(exported_event.get("@context")),
                }
                fields = set(_prefixed_fields(exported_event))
                used = {field.split(":", 1)[0] for field in fields}
                assert used <= set(declared), (key, sorted(used - set(declared)))
                for field in fields:
                    prefix, local = field.split(":", 1)
                    namespace = declared[prefix]
                    namespace = namespace if isinstance(namespace, str) else namespace["@id"]
                    # Expanded to its IRI, or kept whole where the prefix's IRI does not end
                    # in a gen-delim (JSON-LD 1.1 then reads the name as an absolute IRI).
                    assert {namespace + local, field} & iris, (key, field)
    for event in events:
        originals = canonical_json(event)
        for key in _keys_of(event):
            assert originals in {canonical_json(e) for e in exported[key]}, (key, event)
