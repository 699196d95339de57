"""The W3C Verifiable Credentials Data Model 2.0, checked: what a conforming verifier (and
issuer) must refuse in a credential or a presentation, before any proof is looked at. Each
refusal names the rule and the field.

JSON-LD is expanded with pyld against contexts held offline (`contexts/`, never fetched), so
that a redefined protected term, a type no context maps to an absolute IRI, or a context that
is not a URL is refused as a JSON-LD processor would.
"""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from pyld import jsonld

from xinchain.apps.identity.syntax import is_url
from xinchain.errors import XinchainError

BASE_CONTEXT = "https://www.w3.org/ns/credentials/v2"
EXAMPLES_CONTEXT = "https://www.w3.org/ns/credentials/examples/v2"
VC_TYPE = "https://www.w3.org/2018/credentials#VerifiableCredential"
VP_TYPE = "https://www.w3.org/2018/credentials#VerifiablePresentation"
ENVELOPED_VC = "EnvelopedVerifiableCredential"
_CONTEXT_FILES = {
    BASE_CONTEXT: "credentials-v2.jsonld",
    EXAMPLES_CONTEXT: "credentials-examples-v2.jsonld",
}
# XML Schema dateTimeStamp: a date, a time and a time zone.
_DATETIME = re.compile(
    r"^-?(?P<year>\d{4,})-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:"
    r"([0-5]\d|60)(\.\d+)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$"
)
# What stands in for `"@vocab": null` while expanding (pyld fails on it when no vocabulary is
# set): a type expanded under it was mapped by no context.
_NO_VOCAB = "urn:xinchain:unmapped#"
_LANGUAGE_KEYS = {"@value", "@language", "@direction"}


class ModelError(XinchainError):
    code = "vc_invalid"


@cache
def _context(url: str) -> dict[str, Any]:
    path = Path(__file__).with_name("contexts") / _CONTEXT_FILES[url]
    return dict(json.loads(path.read_text(encoding="utf-8")))


def load_context(url: str, options: object = None) -> dict[str, Any]:
    if url not in _CONTEXT_FILES:
        raise jsonld.JsonLdError(
            f"context {url} is not held offline, and a verifier fetches none",
            "jsonld.LoadDocumentError",
            code="loading remote context failed",
        )
    return {"contextUrl": None, "documentUrl": url, "document": _context(url)}


def _as_list(value: object) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- credentials -----------------------------------------------------------------------------


def check_credential(credential: object, where: str = "credential") -> None:
    """Refuse what VC DM 2.0 forbids in a credential; ModelError naming the field."""
    if not isinstance(credential, dict):
        raise ModelError("expected a credential as a JSON object", field=where)
    _check_context(credential.get("@context"), where)
    _check_types(credential, "VerifiableCredential", where)
    _check_id(credential, where)
    _check_names(credential, where)
    _check_issuer(credential, where)
    _check_subjects(credential.get("credentialSubject"), where)
    _check_validity(credential, where)
    _check_typed(credential, "credentialStatus", where, url_id="optional")
    _check_typed(credential, "credentialSchema", where, url_id="required")
    for name in ("evidence", "termsOfUse", "refreshService", "proof"):
        _check_typed(credential, name, where, url_id="optional")
    expanded = _expand(credential, where)
    _check_expanded_types(expanded, VC_TYPE, "VerifiableCredential", where)


def _check_context(context: object, where: str) -> None:
    field = f"{where}.@context"
    if context is None:
        raise ModelError(f"expected @context, first {BASE_CONTEXT}", field=field)
    items = _as_list(context)
    if not items or items[0] != BASE_CONTEXT:
        raise ModelError(
            f"the first @context must be {BASE_CONTEXT}, found {items[0] if items else None!r}",
            field=field,
        )
    for index, item in enumerate(items[1:], start=1):
        if isinstance(item, dict):
            continue
        if not is_url(item):
            raise ModelError(
                f"each @context is a URL or an object; item {index} is {item!r}", field=field
            )


def _check_types(document: dict[str, Any], required: str, where: str) -> None:
    types = document.get("type")
    if types is None:
        raise ModelError(f"expected a type including {required}", field=f"{where}.type")
    listed = _as_list(types)
    if not all(isinstance(item, str) and item for item in listed):
        raise ModelError("expected each type as a non-empty string", field=f"{where}.type")
    if required not in listed:
        raise ModelError(f"the type must include {required}", field=f"{where}.type")


def _check_id(document: dict[str, Any], where: str) -> None:
    if "id" in document and not is_url(document["id"]):
        raise ModelError(f"id must be one URL, found {document['id']!r}", field=f"{where}.id")


def _check_language_value(value: object, field: str) -> None:
    for item in _as_list(value):
        if isinstance(item, str):
            continue
        if not isinstance(item, dict) or not isinstance(item.get("@value"), str):
            raise ModelError(
                "expected text, or a language value {@value, @language, @direction}", field=field
            )
        extra = sorted(set(item) - _LANGUAGE_KEYS)
        if extra:
            raise ModelError(
                f"a language value holds only @value, @language and @direction; found {extra}",
                field=field,
            )
        if "@direction" in item and item["@direction"] not in ("ltr", "rtl"):
            raise ModelError("@direction is ltr or rtl", field=field)
        if "@language" in item and not isinstance(item["@language"], str):
            raise ModelError("@language is a language tag", field=field)


def _check_names(document: dict[str, Any], where: str) -> None:
    for name in ("name", "description"):
        if name in document:
            _check_language_value(document[name], f"{where}.{name}")


def _check_issuer(credential: dict[str, Any], where: str) -> None:
    field = f"{where}.issuer"
    if "issuer" not in credential:
        raise ModelError("a credential must have an issuer", field=field)
    issuer = credential["issuer"]
    if isinstance(issuer, dict):
        if not is_url(issuer.get("id")):
            raise ModelError(
                f"an issuer object's id must be a URL, found {issuer.get('id')!r}",
                field=f"{field}.id",
            )
        _check_names(issuer, field)
    elif not is_url(issuer):
        raise ModelError(
            f"the issuer must be a URL or an object with one, found {issuer!r}", field=field
        )


def _check_subjects(subjects: object, where: str) -> None:
    field = f"{where}.credentialSubject"
    if subjects is None:
        raise ModelError("a credential must have a credentialSubject", field=field)
    listed = _as_list(subjects)
    if not listed:
        raise ModelError("expected at least one credentialSubject", field=field)
    for index, subject in enumerate(listed):
        at = f"{field}[{index}]" if isinstance(subjects, list) else field
        if not isinstance(subject, dict) or not subject:
            raise ModelError("each credentialSubject is an object with claims", field=at)
        if "id" in subject and not is_url(subject["id"]):
            raise ModelError(
                f"a subject's id must be one URL, found {subject['id']!r}", field=f"{at}.id"
            )


def _timestamp(value: object, field: str) -> datetime:
    found = _DATETIME.fullmatch(value) if isinstance(value, str) else None
    if found is None or not isinstance(value, str):
        raise ModelError(
            f"expected an XML Schema dateTimeStamp (e.g. 2026-12-04T10:00:00Z), found {value!r}",
            field=field,
        )
    try:
        return datetime.fromisoformat(value)
    except ValueError:  # a year beyond 9999 or before 1: valid, and beyond any other date
        extreme = datetime.min if value.startswith("-") else datetime.max
        return extreme.replace(tzinfo=UTC)


def _check_validity(credential: dict[str, Any], where: str) -> None:
    start = end = None
    if "validFrom" in credential:
        start = _timestamp(credential["validFrom"], f"{where}.validFrom")
    if "validUntil" in credential:
        end = _timestamp(credential["validUntil"], f"{where}.validUntil")
    if start is not None and end is not None and end < start:
        raise ModelError("validUntil is before validFrom", field=f"{where}.validUntil")


def _check_typed(document: dict[str, Any], name: str, where: str, *, url_id: str) -> None:
    if name not in document:
        return
    value = document[name]
    items = _as_list(value)
    for index, item in enumerate(items):
        field = f"{where}.{name}[{index}]" if isinstance(value, list) else f"{where}.{name}"
        if not isinstance(item, dict):
            raise ModelError(f"each {name} is an object", field=field)
        if "type" not in item:
            raise ModelError(f"each {name} must have a type", field=f"{field}.type")
        if url_id == "required" and "id" not in item:
            raise ModelError(f"each {name} must have an id", field=f"{field}.id")
        if "id" in item and not is_url(item["id"]):
            raise ModelError(
                f"a {name}'s id must be one URL, found {item['id']!r}", field=f"{field}.id"
            )


def _null_vocab_replaced(value: Any) -> Any:
    if isinstance(value, list):
        return [_null_vocab_replaced(item) for item in value]
    if isinstance(value, dict):
        copied = {key: _null_vocab_replaced(item) for key, item in value.items()}
        if "@vocab" in copied and copied["@vocab"] is None:
            copied["@vocab"] = _NO_VOCAB
        return copied
    return value


def _expand(document: dict[str, Any], where: str) -> list[Any]:
    prepared = _null_vocab_replaced(copy.deepcopy(document))
    try:
        return list(jsonld.expand(prepared, {"documentLoader": load_context}))
    except jsonld.JsonLdError as exc:
        code = getattr(exc, "code", None) or str(exc).splitlines()[0]
        raise ModelError(f"JSON-LD refuses it: {code}", field=f"{where}.@context") from None


def _check_expanded_types(expanded: list[Any], required: str, name: str, where: str) -> None:
    for node in expanded:
        if not isinstance(node, dict):
            continue
        types = node.get("@type", [])
        if required not in types:
            raise ModelError(f"type {name} does not map to {required}", field=f"{where}.type")
        for iri in types:
            if not is_url(iri) or iri.startswith(_NO_VOCAB):
                raise ModelError(
                    f"a type maps to no absolute IRI ({iri!r}): every type must be defined by "
                    "a context",
                    field=f"{where}.type",
                )
        _check_nested_types(node, where)


def _check_nested_types(node: Any, where: str) -> None:
    """Every @type anywhere in the expanded document is an absolute IRI."""
    if isinstance(node, list):
        for item in node:
            _check_nested_types(item, where)
        return
    if not isinstance(node, dict):
        return
    for iri in node.get("@type", []) if isinstance(node.get("@type"), list) else []:
        if not is_url(iri) or iri.startswith(_NO_VOCAB):
            raise ModelError(f"a type maps to no absolute IRI ({iri!r})", field=f"{where}.type")
    for key, value in node.items():
        if key != "@type" and key != "@value":
            _check_nested_types(value, where)


# --- presentations ---------------------------------------------------------------------------


def check_presentation(presentation: object, where: str = "presentation") -> None:
    """Refuse what VC DM 2.0 forbids in a presentation and the credentials it holds."""
    if not isinstance(presentation, dict):
        raise ModelError("expected a presentation as a JSON object", field=where)
    _check_context(presentation.get("@context"), where)
    _check_types(presentation, "VerifiablePresentation", where)
    _check_id(presentation, where)
    if "holder" in presentation:
        holder = presentation["holder"]
        field = f"{where}.holder"
        if isinstance(holder, dict):
            if not is_url(holder.get("id")):
                raise ModelError("a holder object must have a URL id", field=f"{field}.id")
        elif not is_url(holder):
            raise ModelError(
                f"the holder must be a URL or an object with one, found {holder!r}", field=field
            )
    credentials = presentation.get("verifiableCredential", [])
    for index, credential in enumerate(_as_list(credentials)):
        at = f"{where}.verifiableCredential[{index}]"
        if not isinstance(credential, dict):
            raise ModelError(
                "each verifiableCredential is an object (a credential or an envelope)", field=at
            )
        if credential.get("type") == ENVELOPED_VC or ENVELOPED_VC in _as_list(
            credential.get("type")
        ):
            _check_envelope(credential, at)
        elif "type" not in credential and str(credential.get("id", "")).startswith("data:"):
            raise ModelError(
                f"an enveloped credential must have type {ENVELOPED_VC}", field=f"{at}.type"
            )
        else:
            check_credential(credential, at)
    _check_typed(presentation, "proof", where, url_id="optional")
    expanded = _expand(presentation, where)
    _check_expanded_types(expanded, VP_TYPE, "VerifiablePresentation", where)


def _check_envelope(envelope: dict[str, Any], where: str) -> None:
    _check_context(envelope.get("@context"), where)
    identifier = envelope.get("id")
    if not isinstance(identifier, str) or not identifier.startswith("data:"):
        raise ModelError("an enveloped credential's id is a data: URL", field=f"{where}.id")
