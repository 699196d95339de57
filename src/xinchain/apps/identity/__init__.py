"""Merchant identity across platforms: did:xin DIDs on chain, the issuer registry, status
lists, and W3C Verifiable Credentials 2.0 issued, presented and verified against them
(docs/did-method.md)."""
