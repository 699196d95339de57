"""Tests for `xinchain.crypto.suites`: the signature and hash suites chosen in genesis.

Scenarios, for each suite in `SUITES` ("ed25519-sha256" and "sm2-sm3") unless noted:

* Registry: both suites are registered under their own names; `suite_named` finds them and
  raises `ConfigError` for an unknown name; the default is Ed25519.
* Signing: a signature over any message verifies under the signer's public key; public keys
  have the advertised length (SM2: uncompressed point); Ed25519 matches RFC 8032 test 1.
* Verification failures, each returning False and never raising: a wrong message, a flipped
  bit in any signature byte, a truncated / empty / extended / oversized signature, random
  signature bytes, another key's signature, the other suite's signature, a public key that is
  too short / too long / empty / not a curve point, and (Ed25519) a non-canonical S.
* PEM: `to_pem` / `load_private_pem` keeps the public key and the loaded key signs; loading
  the other suite's key, a key of an unrelated algorithm or curve, an encrypted key, or garbage
  raises `ConfigError`.
* Hashes: SHA-256 and SM3 known answers; `hash_chunks` over any split equals `hash` of the whole.
"""

from __future__ import annotations

from itertools import pairwise

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from xinchain.crypto import DEFAULT_SUITE, SUITES, PrivateKey, Suite, suite_named
from xinchain.errors import ConfigError

SUITE_NAMES = ["ed25519-sha256", "sm2-sm3"]
OTHER_SUITE = {"ed25519-sha256": "sm2-sm3", "sm2-sm3": "ed25519-sha256"}
MESSAGE = b"transfer 10 units from alice to bob"


@pytest.fixture(params=SUITE_NAMES)
def suite(request: pytest.FixtureRequest) -> Suite:
    return SUITES[request.param]


@pytest.fixture
def key(suite: Suite) -> PrivateKey:
    return suite.generate_key()


def flip_bit(data: bytes, position: int) -> bytes:
    return data[:position] + bytes([data[position] ^ 0x01]) + data[position + 1 :]


def pkcs8_pem(private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


# --- registry ------------------------------------------------------------------------------------


def test_both_suites_are_registered_under_their_own_names() -> None:
    assert sorted(SUITES) == SUITE_NAMES
    for name, registered in SUITES.items():
        assert registered.name == name


def test_default_suite_is_ed25519_sha256() -> None:
    assert DEFAULT_SUITE == "ed25519-sha256"
    assert DEFAULT_SUITE in SUITES


@pytest.mark.parametrize("name", SUITE_NAMES)
def test_suite_named_finds_a_registered_suite(name: str) -> None:
    assert suite_named(name) is SUITES[name]


@pytest.mark.parametrize("name", ["nope", "", "ED25519-SHA256", "sm2", "ed25519-sha256 "])
def test_suite_named_raises_config_error_for_an_unknown_name(name: str) -> None:
    with pytest.raises(ConfigError) as caught:
        suite_named(name)
    assert caught.value.field == "suite"


# --- signing -------------------------------------------------------------------------------------


def test_public_key_has_the_advertised_length(suite: Suite, key: PrivateKey) -> None:
    assert len(key.public_bytes()) == suite.public_key_bytes


def test_sm2_public_key_is_an_uncompressed_point() -> None:
    public_key = SUITES["sm2-sm3"].generate_key().public_bytes()
    assert len(public_key) == 65
    assert public_key[0] == 0x04


def test_generated_keys_differ(suite: Suite) -> None:
    assert suite.generate_key().public_bytes() != suite.generate_key().public_bytes()


@pytest.mark.parametrize("message", [b"", b"\x00", MESSAGE, bytes(range(256)) * 40], ids=len)
def test_signature_verifies_under_the_signers_public_key(
    suite: Suite, key: PrivateKey, message: bytes
) -> None:
    assert suite.verify(key.public_bytes(), message, key.sign(message)) is True


def test_ed25519_signature_matches_rfc_8032_test_1() -> None:
    secret = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    pem = ed25519.Ed25519PrivateKey.from_private_bytes(secret).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    key = SUITES["ed25519-sha256"].load_private_pem(pem)
    assert key.public_bytes().hex() == (
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    )
    assert key.sign(b"").hex() == (
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555"
        "fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    )


# --- verification failures -----------------------------------------------------------------------


def test_signature_over_another_message_does_not_verify(suite: Suite, key: PrivateKey) -> None:
    signature = key.sign(MESSAGE)
    assert suite.verify(key.public_bytes(), MESSAGE + b"!", signature) is False
    assert suite.verify(key.public_bytes(), b"", signature) is False
    assert suite.verify(key.public_bytes(), flip_bit(MESSAGE, 0), signature) is False


def test_signature_with_any_byte_flipped_does_not_verify(suite: Suite, key: PrivateKey) -> None:
    signature = key.sign(MESSAGE)
    for position in range(len(signature)):
        tampered = flip_bit(signature, position)
        assert suite.verify(key.public_bytes(), MESSAGE, tampered) is False, position


def test_truncated_signature_does_not_verify(suite: Suite, key: PrivateKey) -> None:
    signature = key.sign(MESSAGE)
    for cut in (signature[:-1], signature[1:], signature[: len(signature) // 2], signature[:1]):
        assert suite.verify(key.public_bytes(), MESSAGE, cut) is False, cut.hex()


def test_empty_signature_does_not_verify(suite: Suite, key: PrivateKey) -> None:
    assert suite.verify(key.public_bytes(), MESSAGE, b"") is False


def test_signature_with_a_byte_appended_does_not_verify(suite: Suite, key: PrivateKey) -> None:
    # Several signatures: an SM2 DER signature is 70 to 72 bytes long depending on its values,
    # and the appended byte should reach the parser, not only the length check.
    for counter in range(8):
        message = MESSAGE + bytes([counter])
        signature = key.sign(message)
        for extra in (b"\x00", b"\xff"):
            tampered = signature + extra
            assert suite.verify(key.public_bytes(), message, tampered) is False, tampered.hex()


def test_oversized_signature_does_not_verify(suite: Suite, key: PrivateKey) -> None:
    signature = key.sign(MESSAGE)
    assert suite.verify(key.public_bytes(), MESSAGE, signature + bytes(100)) is False
    assert suite.verify(key.public_bytes(), MESSAGE, signature * 1000) is False


# One key per suite for the whole property: hypothesis runs the body many times.
KEYS_FOR_FUZZING = {name: SUITES[name].generate_key() for name in SUITE_NAMES}


@settings(max_examples=100, deadline=None)
@given(signature=st.binary(max_size=100))
@pytest.mark.parametrize("suite_name", SUITE_NAMES)
def test_random_signature_bytes_do_not_verify(suite_name: str, signature: bytes) -> None:
    suite = SUITES[suite_name]
    public_key = KEYS_FOR_FUZZING[suite_name].public_bytes()
    assert suite.verify(public_key, MESSAGE, signature) is False


def test_signature_of_another_key_does_not_verify(suite: Suite, key: PrivateKey) -> None:
    other = suite.generate_key()
    assert suite.verify(key.public_bytes(), MESSAGE, other.sign(MESSAGE)) is False
    assert suite.verify(other.public_bytes(), MESSAGE, key.sign(MESSAGE)) is False


def test_signature_and_key_of_the_other_suite_do_not_verify(suite: Suite) -> None:
    other_key = SUITES[OTHER_SUITE[suite.name]].generate_key()
    signature = other_key.sign(MESSAGE)
    assert suite.verify(other_key.public_bytes(), MESSAGE, signature) is False
    assert suite.verify(suite.generate_key().public_bytes(), MESSAGE, signature) is False


def test_public_key_of_the_wrong_length_does_not_verify(suite: Suite, key: PrivateKey) -> None:
    signature = key.sign(MESSAGE)
    public_key = key.public_bytes()
    for wrong in (public_key[:-1], public_key + b"\x00", public_key[1:], b"", public_key * 2):
        assert suite.verify(wrong, MESSAGE, signature) is False, wrong.hex()


def test_garbage_public_key_of_the_right_length_does_not_verify(
    suite: Suite, key: PrivateKey
) -> None:
    signature = key.sign(MESSAGE)
    length = suite.public_key_bytes
    garbage = [
        bytes(length),
        b"\xff" * length,
        b"\x04" + b"\x01" * (length - 1),
        flip_bit(key.public_bytes(), length - 1),
        flip_bit(key.public_bytes(), length // 2),
    ]
    for public_key in garbage:
        assert suite.verify(public_key, MESSAGE, signature) is False, public_key.hex()


def test_sm2_public_key_with_a_compressed_point_prefix_does_not_verify() -> None:
    suite = SUITES["sm2-sm3"]
    key = suite.generate_key()
    signature = key.sign(MESSAGE)
    for prefix in (b"\x02", b"\x03", b"\x00", b"\x06"):
        assert suite.verify(prefix + key.public_bytes()[1:], MESSAGE, signature) is False, prefix


def test_ed25519_signature_with_a_non_canonical_s_does_not_verify() -> None:
    # S + L is the same scalar modulo the group order: accepting it would make signatures
    # malleable (RFC 8032 §5.1.7 requires S < L).
    group_order = 2**252 + 27742317777372353535851937790883648493
    suite = SUITES["ed25519-sha256"]
    key = suite.generate_key()
    signature = key.sign(MESSAGE)
    s = int.from_bytes(signature[32:], "little")
    malleated = signature[:32] + (s + group_order).to_bytes(32, "little")
    assert suite.verify(key.public_bytes(), MESSAGE, malleated) is False


# --- PEM -----------------------------------------------------------------------------------------


def test_pem_round_trip_keeps_the_public_key(suite: Suite, key: PrivateKey) -> None:
    pem = key.to_pem()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert suite.load_private_pem(pem).public_bytes() == key.public_bytes()


def test_key_loaded_from_pem_signs_for_the_original_public_key(
    suite: Suite, key: PrivateKey
) -> None:
    loaded = suite.load_private_pem(key.to_pem())
    assert suite.verify(key.public_bytes(), MESSAGE, loaded.sign(MESSAGE)) is True


def test_loading_the_other_suites_pem_raises_config_error(suite: Suite) -> None:
    other_pem = SUITES[OTHER_SUITE[suite.name]].generate_key().to_pem()
    with pytest.raises(ConfigError):
        suite.load_private_pem(other_pem)


def test_loading_a_p256_key_raises_config_error(suite: Suite) -> None:
    with pytest.raises(ConfigError):
        suite.load_private_pem(pkcs8_pem(ec.generate_private_key(ec.SECP256R1())))


def test_loading_an_rsa_key_raises_config_error(suite: Suite) -> None:
    with pytest.raises(ConfigError):
        suite.load_private_pem(pkcs8_pem(rsa.generate_private_key(65537, 1024)))


def test_loading_an_encrypted_pem_raises_config_error(suite: Suite, key: PrivateKey) -> None:
    encrypted = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"password"),
    )
    with pytest.raises(ConfigError):
        suite.load_private_pem(encrypted)


@pytest.mark.parametrize(
    "pem",
    [
        b"",
        b"garbage",
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        b"-----BEGIN PRIVATE KEY-----\n",
        b"\x00" * 64,
    ],
    ids=["empty", "garbage", "bad-body", "header-only", "zeros"],
)
def test_loading_garbage_raises_config_error(suite: Suite, pem: bytes) -> None:
    with pytest.raises(ConfigError):
        suite.load_private_pem(pem)


def test_loading_a_truncated_pem_raises_config_error(suite: Suite, key: PrivateKey) -> None:
    pem = key.to_pem()
    with pytest.raises(ConfigError):
        suite.load_private_pem(pem[: len(pem) // 2])


# --- hashes --------------------------------------------------------------------------------------

HASH_KNOWN_ANSWERS = [
    # FIPS 180-2 Appendix B.1
    ("ed25519-sha256", b"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    ("ed25519-sha256", b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    # GB/T 32905-2016 Appendix A examples 1 and 2
    ("sm2-sm3", b"abc", "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"),
    ("sm2-sm3", b"abcd" * 16, "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"),
    ("sm2-sm3", b"", "1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b"),
]


@pytest.mark.parametrize(
    ("suite_name", "data", "digest_hex"),
    HASH_KNOWN_ANSWERS,
    ids=[f"{name}-{len(data)}-bytes" for name, data, _ in HASH_KNOWN_ANSWERS],
)
def test_hash_gives_the_published_digest(suite_name: str, data: bytes, digest_hex: str) -> None:
    assert SUITES[suite_name].hash(data).hex() == digest_hex


@pytest.mark.parametrize(
    ("suite_name", "hash_name"), [("ed25519-sha256", "sha256"), ("sm2-sm3", "sm3")]
)
def test_hash_name_names_the_hash(suite_name: str, hash_name: str) -> None:
    assert SUITES[suite_name].hash_name == hash_name


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=300), cuts=st.lists(st.integers(min_value=0, max_value=300)))
@pytest.mark.parametrize("suite_name", SUITE_NAMES)
def test_hash_chunks_over_any_split_equals_the_hash_of_the_whole(
    suite_name: str, data: bytes, cuts: list[int]
) -> None:
    suite = SUITES[suite_name]
    bounds = [0, *sorted(min(cut, len(data)) for cut in cuts), len(data)]
    chunks = [data[start:end] for start, end in pairwise(bounds)]
    assert suite.hash_chunks(chunks) == suite.hash(data)


def test_hash_chunks_of_nothing_is_the_hash_of_empty_input(suite: Suite) -> None:
    assert suite.hash_chunks([]) == suite.hash(b"")


def test_hash_chunks_accepts_a_generator(suite: Suite) -> None:
    assert suite.hash_chunks(bytes([byte]) for byte in b"abc") == suite.hash(b"abc")
