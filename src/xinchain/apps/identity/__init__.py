"""Merchant identity across platforms: DIDs and W3C Verifiable Credentials 2.0 (docs/did-method.md
once the app is registered). So far the standards' building blocks: multibase and Multikey,
did:key, RFC 8785 canonicalization with `eddsa-jcs-2022` proofs, and the VC Data Model 2.0
checks."""
