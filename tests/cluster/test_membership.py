"""Only the nodes genesis (or governance) registers, with the right org's certificate and the
registered key, get onto the P2P network.

Each test opens its own mutual-TLS connection to validator-0's P2P port of a running
4-validator consortium (our side does not check the node's certificate) and reads what
comes back: frames are a 4-byte big-endian length and that much canonical CBOR, and an
accepted peer is sent validator-0's hello frame first.

Scenarios:

* Control: validator-3's own certificate (its org's CA, its registered key) is sent
  validator-0's hello (its name, chain id and genesis hash): the probe does see frames when
  the node accepts.
* A certificate from a rogue CA outside genesis, named "validator-1" and with the same CA
  name as the genuine org CA, is refused: the handshake fails or the connection is closed
  before a single byte arrives.
* A certificate issued by a genuine member CA (the org of validator-3) but naming
  validator-0, which genesis assigns to another org, is refused the same way, and
  validator-0's log names the reason.
* A genuine member CA's certificate for a name nobody registered is refused, and so is one
  for that org's own validator on a key other than the registered one (a re-minted
  certificate); the log says why.
* Once governance registers the extra name with its key (add_node, approved by 2/3 of the
  member orgs), the same certificate is sent the hello.
* After those attempts validator-0 goes on committing with its peers.
"""

from __future__ import annotations

import json
import socket
import ssl
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cluster_harness import NODES, Cluster

from xinchain import codec
from xinchain.client.member import Member
from xinchain.client.sdk import Client
from xinchain.crypto.tls import CertifiedKey, key_pin, make_node_certificate, make_org_ca
from xinchain.node.home import Home

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

TARGET = "validator-0"
# The node abandons a handshake after 10 s (p2p/transport.py); a refusal must come before.
refusal_timeout_s = 15.0
# How long validator-0's log gets to show a refusal it has made.
log_timeout_s = 10.0
_LENGTH = struct.Struct(">I")


@dataclass(frozen=True)
class Probe:
    handshake_error: str | None  # why our TLS handshake failed, if it did
    received: bytes  # everything the node sent after the handshake
    closed: bool  # the node closed the connection (rather than our deadline passing)

    def first_frame(self) -> Any:
        assert len(self.received) >= _LENGTH.size, f"no frame: {self}"
        (length,) = _LENGTH.unpack(self.received[: _LENGTH.size])
        body = self.received[_LENGTH.size : _LENGTH.size + length]
        assert len(body) == length, f"a partial frame: {self}"
        return codec.decode(body)


def genesis(cluster: Cluster) -> dict[str, Any]:
    value: dict[str, Any] = json.loads((cluster.home / "genesis.json").read_text())
    return value


def org_of(cluster: Cluster, validator: str) -> str:
    orgs = [v["org"] for v in genesis(cluster)["validators"] if v["name"] == validator]
    assert len(orgs) == 1, f"genesis lists {validator} {len(orgs)} times"
    return str(orgs[0])


def other_validator(cluster: Cluster, than: str) -> str:
    """A validator run by another org than `than`'s."""
    own = org_of(cluster, than)
    others = [v["name"] for v in genesis(cluster)["validators"] if v["org"] != own]
    assert others, f"every validator is run by {own}"
    return str(others[-1])


def member_ca(cluster: Cluster, org: str) -> CertifiedKey:
    directory = cluster.home / "orgs" / org
    return CertifiedKey((directory / "ca.pem").read_bytes(), (directory / "ca.key").read_bytes())


def p2p_port(cluster: Cluster, name: str) -> int:
    return int(json.loads((cluster.node_dir(name) / "node.json").read_text())["p2p_port"])


def probe(port: int, certified: CertifiedKey, directory: Path) -> Probe:
    """Connect to the P2P port presenting `certified`; read until a frame, close or deadline."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "probe.pem").write_bytes(certified.certificate_pem)
    (directory / "probe.key").write_bytes(certified.key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # we probe the node; it is the node that must check us
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_cert_chain(directory / "probe.pem", directory / "probe.key")
    deadline = time.monotonic() + refusal_timeout_s
    with socket.create_connection(("127.0.0.1", port), timeout=refusal_timeout_s) as raw:
        try:
            connection = context.wrap_socket(raw)
        except (ssl.SSLError, OSError) as exc:
            return Probe(handshake_error=repr(exc), received=b"", closed=True)
        with connection:
            return _read_until_frame(connection, deadline)


def _read_until_frame(connection: ssl.SSLSocket, deadline: float) -> Probe:
    received = b""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return Probe(None, received, closed=False)
        connection.settimeout(remaining)
        try:
            data = connection.recv(1 << 16)
        except TimeoutError:
            return Probe(None, received, closed=False)
        except (ssl.SSLError, OSError):
            return Probe(None, received, closed=True)
        if not data:
            return Probe(None, received, closed=True)
        received += data
        if len(received) >= _LENGTH.size:
            (length,) = _LENGTH.unpack(received[: _LENGTH.size])
            if len(received) >= _LENGTH.size + length:
                return Probe(None, received, closed=False)


def wait_for_log(cluster: Cluster, name: str, fragments: list[str]) -> str:
    deadline = time.monotonic() + log_timeout_s
    while True:
        log = (cluster.node_dir(name) / "node.log").read_text(errors="replace")
        if all(fragment in log for fragment in fragments):
            return log
        assert time.monotonic() < deadline, f"{name}'s log lacks {fragments}:\n{log[-3000:]}"
        time.sleep(0.2)


def test_a_member_certificate_for_its_own_validator_is_sent_the_hello(
    cluster: Cluster, tmp_path: Path
) -> None:
    own_validator = other_validator(cluster, TARGET)
    directory = cluster.node_dir(own_validator)
    certified = CertifiedKey(
        (directory / "tls.pem").read_bytes(), (directory / "tls.key").read_bytes()
    )

    result = probe(p2p_port(cluster, TARGET), certified, tmp_path)

    assert result.handshake_error is None, result
    hello = result.first_frame()
    status = cluster.status(TARGET)
    assert hello == {
        "chain_id": status["chain_id"],
        "genesis_hash": status["genesis_hash"],
        "name": TARGET,
    }


def test_a_certificate_from_a_ca_outside_genesis_is_refused(
    cluster: Cluster, tmp_path: Path
) -> None:
    impersonated = "validator-1"
    rogue_ca = make_org_ca(org_of(cluster, impersonated))  # the genuine CA's name, not its key
    genuine = member_ca(cluster, org_of(cluster, impersonated)).certificate_pem
    assert rogue_ca.certificate_pem != genuine
    certified = make_node_certificate(rogue_ca, impersonated)

    result = probe(p2p_port(cluster, TARGET), certified, tmp_path)

    assert result.closed, f"the node kept a rogue certificate's connection open: {result}"
    assert result.received == b"", f"the node sent a rogue peer data: {result}"


def test_a_member_ca_certificate_for_another_orgs_validator_is_refused(
    cluster: Cluster, tmp_path: Path
) -> None:
    target_org = org_of(cluster, TARGET)
    issuing_org = org_of(cluster, other_validator(cluster, TARGET))
    assert issuing_org != target_org
    certified = make_node_certificate(member_ca(cluster, issuing_org), TARGET)

    result = probe(p2p_port(cluster, TARGET), certified, tmp_path)

    assert result.closed, f"the node kept an impostor's connection open: {result}"
    assert result.received == b"", f"the node sent an impostor data: {result}"
    wait_for_log(
        cluster,
        TARGET,
        [f"refusing peer '{TARGET}'", f"registered to '{target_org}', not '{issuing_org}'"],
    )


def test_a_member_ca_certificate_for_an_unregistered_name_is_refused(
    cluster: Cluster, tmp_path: Path
) -> None:
    org = org_of(cluster, other_validator(cluster, TARGET))
    certified = make_node_certificate(member_ca(cluster, org), "extra-node")

    result = probe(p2p_port(cluster, TARGET), certified, tmp_path)

    assert result.closed and result.received == b"", f"an unregistered name was served: {result}"
    wait_for_log(cluster, TARGET, ["refusing peer 'extra-node'", "is not registered"])


def test_a_reminted_certificate_for_a_registered_validator_is_refused(
    cluster: Cluster, tmp_path: Path
) -> None:
    own_validator = other_validator(cluster, TARGET)
    certified = make_node_certificate(
        member_ca(cluster, org_of(cluster, own_validator)), own_validator
    )

    result = probe(p2p_port(cluster, TARGET), certified, tmp_path)

    assert result.closed and result.received == b"", f"a re-minted key was served: {result}"
    wait_for_log(cluster, TARGET, [f"refusing peer '{own_validator}'", "not the registered"])


def test_a_node_registered_by_governance_is_accepted(cluster: Cluster, tmp_path: Path) -> None:
    org = org_of(cluster, other_validator(cluster, TARGET))
    certified = make_node_certificate(member_ca(cluster, org), "branch-office")
    assert probe(p2p_port(cluster, TARGET), certified, tmp_path / "before").received == b""

    home = Home(cluster.home)
    chain = home.genesis()
    action = {
        "kind": "add_node",
        "org": org,
        "name": "branch-office",
        "tls_key": key_pin(certified.certificate_pem),
    }
    orgs = [spec.id for spec in chain.orgs]
    with Client(cluster.api(TARGET)) as client:

        def call(sender: str, method: str, args: dict[str, Any]) -> dict[str, Any]:
            member = Member(chain, sender, home.org_key(chain.suite, sender))
            return client.member_call(member, "governance", method, args)

        proposed = call(orgs[0], "propose", {"action": action})
        for sender in orgs[1:]:
            if proposed["executed"]:
                break
            proposed = call(sender, "approve", {"proposal": proposed["proposal"]})
    assert proposed["executed"], proposed

    result = probe(p2p_port(cluster, TARGET), certified, tmp_path / "after")
    assert result.handshake_error is None, result
    assert result.first_frame()["name"] == TARGET


def test_validator_0_keeps_committing_after_refusing_peers(cluster: Cluster) -> None:
    before = cluster.status(TARGET)["height"]
    cluster.wait_for_height(NODES, before + 3, timeout_s=30.0)
