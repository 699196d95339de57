"""The identity contract: did:xin DID documents, the issuer registry and status lists
(docs/did-method.md).

Methods:

* ``did_create``     {id, document}: a member org registers `did:xin:<chain>:<id>` (it is the
  DID's registrar); the document is checked (below).
* ``did_update``     {did, document, proof}: a new document, with an `eddsa-jcs-2022` proof
  over {did, document, version} by a key in the current document's `capabilityInvocation`.
* ``did_deactivate`` {did, proof}: the same rule, over {did, deactivate: true, version}.
* ``status_publish`` {list, purpose, encoded, previous}: an org publishes (or replaces) one of
  its Bitstring Status Lists: `encoded` is the list's `encodedList` (multibase base64url of the
  GZIP-compressed bitstring), `purpose` "revocation" or "suspension", `previous` the height the
  list it changed was written at (0: none), refused if the list changed since.

Settings (``set_config``, 2/3 of member orgs): ``issuers`` = {credential type: [orgs]}, which
org may issue which type of credential; ``recovered`` = {DID id: document}, the document
governance puts in place of one whose controller lost its key (a DID changes only by its
controller's key, or by governance).

State (key space ``identity/``): ``did/<id>`` → {document, registrar, created, updated,
version, deactivated}; ``status/<org>/<list>`` → {purpose, encoded, height, time_ms}.
"""

from __future__ import annotations

import re
from typing import Any

import nacl.exceptions
import nacl.signing

from xinchain.apps.identity.dataintegrity import CRYPTOSUITE, PROOF_TYPE, hash_data
from xinchain.apps.identity.multiformats import (
    ED25519_PUB,
    MultiformatError,
    base58btc_decode,
    multikey_decode,
)
from xinchain.apps.identity.syntax import is_url
from xinchain.contracts.base import CallContext, Contract, Handler, Setting, require_args
from xinchain.contracts.governance import member_ids
from xinchain.errors import ContractError, XinchainError

NAME = "identity"
ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
_ID = re.compile(ID_PATTERN)
_FRAGMENT = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")
RELATIONSHIPS = ("authentication", "assertionMethod", "capabilityInvocation")
STATUS_PURPOSES = ("revocation", "suspension")
# A document's parts, and a status list's encoded size (a 131,072-bit list of few set bits
# compresses to well under this).
methods_max = 16
services_max = 32
encoded_list_chars_max = 64 * 1024
CREDENTIAL_TYPE_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,63}$")


def did_of(chain_id: str, identifier: str) -> str:
    return f"did:xin:{chain_id}:{identifier}"


def parse_did(chain_id: str, did: object, field: str) -> str:
    """The id part of a did:xin of this chain."""
    prefix = f"did:xin:{chain_id}:"
    if (
        not isinstance(did, str)
        or not did.startswith(prefix)
        or not _ID.fullmatch(did[len(prefix) :])
    ):
        raise ContractError(f"expected a DID {prefix}<id>, found {did!r}", field=field)
    return did[len(prefix) :]


def _check_issuers(value: object) -> bool:
    if not isinstance(value, dict):
        return False
    for credential_type, orgs in value.items():
        if not isinstance(credential_type, str) or not CREDENTIAL_TYPE_PATTERN.fullmatch(
            credential_type
        ):
            return False
        if not isinstance(orgs, list) or not all(isinstance(org, str) for org in orgs):
            return False
    return True


def _check_recovered(value: object) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str)
        and _ID.fullmatch(k)
        and isinstance(v, dict)
        and set(v) == {"document", "replaces_version"}
        and isinstance(v["replaces_version"], int)
        and not isinstance(v["replaces_version"], bool)
        for k, v in value.items()
    )


def recovered_document(did: str, record: dict[str, Any], entry: object) -> dict[str, Any] | None:
    """The document governance put in place of `record`'s, if it did for this very version of
    it (a change by the controller since ends the replacement) and it is a document this DID
    may have; else None, for the contract and every verifier alike."""
    if not isinstance(entry, dict) or entry.get("replaces_version") != record["version"]:
        return None
    try:
        return check_document(did, entry.get("document"), "config.recovered")
    except ContractError:
        return None


def check_document(did: str, document: object, field: str = "args.document") -> dict[str, Any]:
    """A did:xin DID document as the method allows it: its id, Multikey Ed25519 keys,
    relationships naming its own keys, services with URL endpoints."""
    if not isinstance(document, dict):
        raise ContractError("expected the DID document as an object", field=field)
    allowed = {"@context", "id", "controller", "verificationMethod", *RELATIONSHIPS, "service"}
    extra = sorted(set(document) - allowed)
    if extra:
        raise ContractError(f"a did:xin document holds no {extra}", field=field)
    if document.get("id") != did:
        raise ContractError(f"the document's id must be {did}", field=f"{field}.id")
    methods = document.get("verificationMethod")
    if not isinstance(methods, list) or not 1 <= len(methods) <= methods_max:
        raise ContractError(
            f"expected 1 to {methods_max} verification methods", field=f"{field}.verificationMethod"
        )
    ids: set[str] = set()
    for index, method in enumerate(methods):
        at = f"{field}.verificationMethod[{index}]"
        if not isinstance(method, dict) or set(method) != {
            "id",
            "type",
            "controller",
            "publicKeyMultibase",
        }:
            raise ContractError("expected {id, type, controller, publicKeyMultibase}", field=at)
        method_id = method["id"]
        if (
            not isinstance(method_id, str)
            or not method_id.startswith(did + "#")
            or not _FRAGMENT.fullmatch(method_id[len(did) + 1 :])
        ):
            raise ContractError(f"a method's id is {did}#<fragment>", field=f"{at}.id")
        if method_id in ids:
            raise ContractError(f"method {method_id} is listed twice", field=f"{at}.id")
        ids.add(method_id)
        if method["type"] != "Multikey" or method["controller"] != did:
            raise ContractError(f"expected a Multikey controlled by {did}", field=at)
        try:
            multikey_decode(
                method["publicKeyMultibase"], f"{at}.publicKeyMultibase", (ED25519_PUB,)
            )
        except XinchainError as exc:
            raise ContractError(exc.reason, field=exc.field) from None
    for relation in RELATIONSHIPS:
        listed = document.get(relation, [])
        if not isinstance(listed, list) or not all(item in ids for item in listed):
            raise ContractError(
                f"{relation} lists ids of this document's verification methods",
                field=f"{field}.{relation}",
            )
    if not document.get("capabilityInvocation"):
        raise ContractError(
            "a document needs a capabilityInvocation key: the key that may change it",
            field=f"{field}.capabilityInvocation",
        )
    services = document.get("service", [])
    if not isinstance(services, list) or len(services) > services_max:
        raise ContractError(f"expected at most {services_max} services", field=f"{field}.service")
    for index, service in enumerate(services):
        at = f"{field}.service[{index}]"
        if not isinstance(service, dict) or set(service) != {"id", "type", "serviceEndpoint"}:
            raise ContractError("expected {id, type, serviceEndpoint}", field=at)
        if not isinstance(service["id"], str) or not service["id"].startswith(did + "#"):
            raise ContractError(f"a service's id is {did}#<fragment>", field=f"{at}.id")
        if not isinstance(service["type"], str) or not is_url(service["serviceEndpoint"]):
            raise ContractError("a service has a type and a URL endpoint", field=at)
    controllers = document.get("controller", [])
    if not all(
        isinstance(item, str) and is_url(item)
        for item in (controllers if isinstance(controllers, list) else [controllers])
    ):
        raise ContractError("controller lists DIDs", field=f"{field}.controller")
    return document


def check_change_proof(
    current: dict[str, Any], statement: dict[str, Any], proof: object, field: str = "args.proof"
) -> None:
    """`proof` is an eddsa-jcs-2022 proof over `statement` by a capabilityInvocation key of the
    current document."""
    if not isinstance(proof, dict):
        raise ContractError("expected an eddsa-jcs-2022 proof", field=field)
    if proof.get("type") != PROOF_TYPE or proof.get("cryptosuite") != CRYPTOSUITE:
        raise ContractError(f"expected a {PROOF_TYPE} of {CRYPTOSUITE}", field=field)
    if proof.get("proofPurpose") != "capabilityInvocation":
        raise ContractError("the proof's purpose must be capabilityInvocation", field=field)
    method_id = proof.get("verificationMethod")
    if method_id not in current.get("capabilityInvocation", []):
        raise ContractError(
            f"{method_id!r} is not a capabilityInvocation key of the current document",
            field=f"{field}.verificationMethod",
        )
    method = next(m for m in current["verificationMethod"] if m["id"] == method_id)
    config = {name: value for name, value in proof.items() if name != "proofValue"}
    try:
        _, key = multikey_decode(method["publicKeyMultibase"], field, (ED25519_PUB,))
        signature = base58btc_decode(proof.get("proofValue"), f"{field}.proofValue")
        nacl.signing.VerifyKey(key).verify(hash_data(statement, config), signature)
    except MultiformatError as exc:
        raise ContractError(exc.reason, field=exc.field) from None
    except (nacl.exceptions.BadSignatureError, ValueError, XinchainError):
        raise ContractError(
            "the proof does not verify with the DID's capabilityInvocation key", field=field
        ) from None


class Identity(Contract):
    name = NAME

    def methods(self) -> dict[str, Handler]:
        return {
            "did_create": self.did_create,
            "did_update": self.did_update,
            "did_deactivate": self.did_deactivate,
            "status_publish": self.status_publish,
        }

    def settings(self) -> dict[str, Setting]:
        return {
            "issuers": Setting(
                "a map of credential type (a name of letters and digits) to a list of org ids",
                _check_issuers,
                {},
            ),
            "recovered": Setting(
                "a map of DID id to {document, replaces_version}: the document governance puts "
                "in place of the one its controller can no longer change (a lost key), for that "
                "version of it",
                _check_recovered,
                {},
            ),
        }

    def did_create(self, context: CallContext, args: dict[str, Any]) -> dict[str, Any]:
        require_args(args, {"id", "document"})
        identifier = args["id"]
        if not isinstance(identifier, str) or not _ID.fullmatch(identifier):
            raise ContractError(
                "expected an id of 1-64 characters from A-Z a-z 0-9 _ . -", field="args.id"
            )
        did = did_of(context.chain_id, identifier)
        if context.read(NAME, f"did/{identifier}") is not None:
            raise ContractError(f"{did} exists already", field="args.id")
        if identifier in member_ids(context.state) and identifier != context.sender:
            raise ContractError(
                f"{did} is member org {identifier!r}'s DID: only that org registers it",
                field="args.id",
            )
        document = check_document(did, args["document"])
        context.write(
            NAME,
            f"did/{identifier}",
            {
                "document": document,
                "registrar": context.sender,
                "created": context.time_ms,
                "updated": context.time_ms,
                "version": context.height,
                "deactivated": False,
            },
        )
        return {"did": did, "version": context.height}

    def _current(self, context: CallContext, did: object) -> tuple[str, dict[str, Any]]:
        identifier = parse_did(context.chain_id, did, "args.did")
        record = context.read(NAME, f"did/{identifier}")
        if record is None:
            raise ContractError(f"no DID {did}", field="args.did")
        replacement = recovered_document(
            str(did), record, (context.read(NAME, "config/recovered") or {}).get(identifier)
        )
        if replacement is not None:
            record = {**record, "document": replacement}
        if record["deactivated"]:
            raise ContractError(f"{did} is deactivated", field="args.did")
        return identifier, record

    def did_update(self, context: CallContext, args: dict[str, Any]) -> dict[str, Any]:
        require_args(args, {"did", "document", "proof"})
        identifier, record = self._current(context, args["did"])
        document = check_document(args["did"], args["document"])
        statement = {"did": args["did"], "document": document, "version": record["version"]}
        check_change_proof(record["document"], statement, args["proof"])
        context.write(
            NAME,
            f"did/{identifier}",
            {**record, "document": document, "updated": context.time_ms, "version": context.height},
        )
        return {"did": args["did"], "version": context.height}

    def did_deactivate(self, context: CallContext, args: dict[str, Any]) -> dict[str, Any]:
        require_args(args, {"did", "proof"})
        identifier, record = self._current(context, args["did"])
        statement = {"did": args["did"], "deactivate": True, "version": record["version"]}
        check_change_proof(record["document"], statement, args["proof"])
        context.write(
            NAME,
            f"did/{identifier}",
            {**record, "deactivated": True, "updated": context.time_ms, "version": context.height},
        )
        return {"did": args["did"], "version": context.height}

    def status_publish(self, context: CallContext, args: dict[str, Any]) -> dict[str, Any]:
        require_args(args, {"list", "purpose", "encoded", "previous"})
        name, purpose, encoded = args["list"], args["purpose"], args["encoded"]
        if not isinstance(name, str) or not _ID.fullmatch(name):
            raise ContractError("expected a list name of 1-64 characters", field="args.list")
        if purpose not in STATUS_PURPOSES:
            raise ContractError(f"expected one of {list(STATUS_PURPOSES)}", field="args.purpose")
        if (
            not isinstance(encoded, str)
            or not encoded.startswith("u")
            or len(encoded) > encoded_list_chars_max
            or not re.fullmatch(r"u[A-Za-z0-9_-]+", encoded)
        ):
            raise ContractError(
                f"expected the encodedList: multibase base64url ('u'), at most "
                f"{encoded_list_chars_max} characters",
                field="args.encoded",
            )
        current = context.read(NAME, f"status/{context.sender}/{name}")
        # Compare and swap: a publisher names the list it changed (the height it was written
        # at, 0 for none), so that two revocations made from one reading cannot undo each other.
        previous = args["previous"]
        written = 0 if current is None else current["height"]
        if previous != written:
            raise ContractError(
                f"list {name!r} was written at height {written}, not {previous}: read it again "
                "and publish the change on top of it",
                field="args.previous",
            )
        if current is not None and current["purpose"] != purpose:
            raise ContractError(
                f"list {name!r} is a {current['purpose']} list", field="args.purpose"
            )
        context.write(
            NAME,
            f"status/{context.sender}/{name}",
            {
                "purpose": purpose,
                "encoded": encoded,
                "height": context.height,
                "time_ms": context.time_ms,
            },
        )
        return {"org": context.sender, "list": name, "height": context.height}
