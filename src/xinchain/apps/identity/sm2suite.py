"""`xin-sm2-jcs-2026`: xinchain's own Data Integrity cryptosuite for the national suite, for a
consortium whose credentials must be signed with SM2 (docs/did-method.md, "The national
suite"). It is `eddsa-jcs-2022` with the Ed25519 parts replaced:

* the document and the proof configuration are canonicalized with RFC 8785 (JCS), as there;
* each is hashed with SM3 (GB/T 32905), the proof configuration's hash first (64 bytes);
* the 64 bytes are signed with SM2 (GB/T 32918.2, SM3, the default signer id
  1234567812345678), the signature DER-encoded (strict, as chain signatures are) and written
  as multibase base58btc in `proofValue`;
* the verification method is a `Multikey` whose `publicKeyMultibase` is multicodec `sm2-pub`
  (0x1206) and the 33-byte compressed point.

No W3C group has standardized an SM2 cryptosuite; the name says whose this one is.
"""

from __future__ import annotations

from tongsuopy.crypto import serialization as tongsuo_serialization
from tongsuopy.crypto.asymciphers import ec as tongsuo_ec

from xinchain.apps.identity.dataintegrity import Cryptosuite, jcs, register
from xinchain.apps.identity.multiformats import SM2_PUB, multikey_encode
from xinchain.crypto import suite_named
from xinchain.crypto.suites import Sm2Key

SM2_SUITE = "xin-sm2-jcs-2026"
_SUITE = suite_named("sm2-sm3")


def uncompressed(public: bytes) -> bytes | None:
    try:
        point = tongsuo_ec.EllipticCurvePublicKey.from_encoded_point(tongsuo_ec.SM2(), public)
    except ValueError:
        return None
    return bytes(
        point.public_bytes(
            tongsuo_serialization.Encoding.X962,
            tongsuo_serialization.PublicFormat.UncompressedPoint,
        )
    )


def compressed(public: bytes) -> bytes:
    point = tongsuo_ec.EllipticCurvePublicKey.from_encoded_point(tongsuo_ec.SM2(), public)
    return bytes(
        point.public_bytes(
            tongsuo_serialization.Encoding.X962, tongsuo_serialization.PublicFormat.CompressedPoint
        )
    )


def _sign(private: bytes, data: bytes) -> bytes:
    key = tongsuo_ec.derive_private_key(int.from_bytes(private, "big"), tongsuo_ec.SM2())
    return Sm2Key(key).sign(data)


def _verify(public: bytes, data: bytes, signature: bytes) -> bool:
    full = uncompressed(public) if len(public) == 33 else None
    return full is not None and _SUITE.verify(full, data, signature)


def new_key() -> tuple[bytes, str]:
    """(private scalar, publicKeyMultibase) of a fresh SM2 key."""
    key = _SUITE.generate_key()
    assert isinstance(key, Sm2Key)
    scalar = key.key.private_numbers().private_value.to_bytes(32, "big")
    return scalar, multikey_encode(SM2_PUB, compressed(key.public_bytes()))


register(
    Cryptosuite(
        SM2_SUITE,
        jcs,
        context_in_proof=True,
        hash=_SUITE.hash,
        sign=_sign,
        verify=_verify,
    )
)
