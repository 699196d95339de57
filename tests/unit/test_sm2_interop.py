"""The national suite interoperates with an independent SM2/SM3 implementation (GmSSL's Python).

Scenarios:
- our SM3 digest equals GmSSL's for several inputs;
- an SM2 signature we make verifies in GmSSL with the standard signer id (GB/T 32918.2, Z value
  with id 1234567812345678), and not as a bare digest signature without Z;
- a signature GmSSL makes verifies with our suite; a tampered one does not.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from gmssl import func, sm2, sm3

from xinchain.crypto.suites import Sm2Key, Sm2Sm3

SUITE = Sm2Sm3()
MESSAGE = b"xinchain interop: \xe4\xbf\xa1\xe9\x93\xbe"


def _gmssl_signer(key: Sm2Key) -> sm2.CryptSM2:
    private = key.key.private_numbers().private_value
    return sm2.CryptSM2(private_key=f"{private:064x}", public_key=key.public_bytes()[1:].hex())


def test_sm3_matches_gmssl() -> None:
    for data in (b"", b"abc", b"a" * 1000, MESSAGE):
        assert SUITE.hash(data).hex() == sm3.sm3_hash(func.bytes_to_list(data))


def test_our_signature_verifies_in_gmssl_with_the_standard_signer_id() -> None:
    key = SUITE.generate_key()
    assert isinstance(key, Sm2Key)
    r, s = decode_dss_signature(key.sign(MESSAGE))
    assert _gmssl_signer(key).verify_with_sm3(f"{r:064x}{s:064x}", MESSAGE)


def test_our_signature_is_not_a_bare_digest_signature() -> None:
    key = SUITE.generate_key()
    assert isinstance(key, Sm2Key)
    r, s = decode_dss_signature(key.sign(MESSAGE))
    digest = bytes.fromhex(sm3.sm3_hash(func.bytes_to_list(MESSAGE)))
    assert not _gmssl_signer(key).verify(f"{r:064x}{s:064x}", digest)


def _gmssl_signature(key: Sm2Key) -> str:
    """A signature gmssl makes and itself verifies: its pure-Python point arithmetic gets about
    one nonce in 200 wrong (its own verify then fails or raises), so such a draw is redrawn."""
    signer = _gmssl_signer(key)
    for _ in range(20):
        signature = str(signer.sign_with_sm3(MESSAGE, func.random_hex(64)))
        try:
            if signer.verify_with_sm3(signature, MESSAGE):
                return signature
        except TypeError:
            continue
    raise AssertionError("gmssl made no signature it verifies itself in 20 draws")


def test_gmssl_signature_verifies_with_our_suite() -> None:
    key = SUITE.generate_key()
    assert isinstance(key, Sm2Key)
    signature = _gmssl_signature(key)
    der = encode_dss_signature(int(signature[:64], 16), int(signature[64:], 16))
    assert SUITE.verify(key.public_bytes(), MESSAGE, der)
    assert not SUITE.verify(key.public_bytes(), MESSAGE + b"!", der)
