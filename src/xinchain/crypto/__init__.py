"""Crypto suites: signatures and hashes, chosen per chain in genesis."""

from xinchain.crypto.suites import DEFAULT_SUITE, SUITES, PrivateKey, Suite, suite_named

__all__ = ["DEFAULT_SUITE", "SUITES", "PrivateKey", "Suite", "suite_named"]
