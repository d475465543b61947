"""Secrets encrypted at rest (docs/security.md, "Secrets at rest"): AES-GCM from ``cryptography``.

A stored secret reads ``enc1:<key id>:<base64url(nonce ‖ ciphertext ‖ tag)>``. The key id is the
first 8 hex digits of the key's SHA-256: it names the key that made the ciphertext without
revealing anything of it, so a key list can be rotated (``WEBHOOK_ENCRYPTION_KEYS``: the first
key encrypts, every key decrypts). The caller's ``context`` (the table, the column and the row's
id) is the associated data: a ciphertext copied into another row or column does not decrypt.

Decryption is cached by ciphertext (a bounded dict per key ring), so the delivery engine does not
pay an AES-GCM operation for every delivery of the same webhook.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import Flask, current_app

PREFIX = "enc1"
NONCE_BYTES = 12  # AES-GCM's standard nonce; random per encryption (2^-32 collision odds at 2^32 secrets)
KEY_BYTES = 32  # AES-256
CACHE_SIZE = 4096  # decrypted secrets kept per process: a worker's active webhooks, with room


class CryptoError(ValueError):
    """A key list that cannot be read, or a stored secret that no key decrypts."""


@dataclass(frozen=True)
class Key:
    """One AES-256 key and its public id."""

    id: str
    aead: AESGCM


def new_key() -> str:
    """A fresh key as ``WEBHOOK_ENCRYPTION_KEYS`` takes it (base64url of 32 random bytes)."""
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode()


def key_id(raw: bytes) -> str:
    """The public id of a key: 8 hex digits of its SHA-256."""
    return hashlib.sha256(raw).hexdigest()[:8]


def parse_keys(text: str, *, name: str = "WEBHOOK_ENCRYPTION_KEYS") -> list[Key]:
    """Keys from a comma-separated list of base64url (or standard base64) 32-byte keys.

    Raises :class:`CryptoError` naming ``name`` when a key is malformed; an empty text gives no
    keys (the caller decides whether that is allowed).
    """
    keys: list[Key] = []
    for position, item in enumerate((part.strip() for part in text.split(",")), start=1):
        if not item:
            continue
        try:
            raw = base64.urlsafe_b64decode(item.replace("+", "-").replace("/", "_") + "=" * (-len(item) % 4))
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != KEY_BYTES:
            raise CryptoError(
                f"{name}: key {position} is not {KEY_BYTES} bytes of base64; make one with "
                "`flask --app wsgi secrets new-key`."
            )
        keys.append(Key(key_id(raw), AESGCM(raw)))
    return keys


class SecretBox:
    """Encrypts with the first key, decrypts with any; one per app (:func:`install`, :func:`current`)."""

    def __init__(self, keys: Sequence[Key]):
        if not keys:
            raise CryptoError("No encryption key: set WEBHOOK_ENCRYPTION_KEYS.")
        self.keys = list(keys)
        self._by_id = {key.id: key for key in self.keys}
        self._cache: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    @property
    def current_key_id(self) -> str:
        """The id of the key new ciphertexts are made with."""
        return self.keys[0].id

    def encrypt(self, plaintext: str, *, context: str) -> str:
        """The stored form of ``plaintext``, bound to ``context`` (for example ``webhooks.jwt_secret:WH-…``)."""
        key = self.keys[0]
        nonce = os.urandom(NONCE_BYTES)
        sealed = key.aead.encrypt(nonce, plaintext.encode(), context.encode())
        stored = f"{PREFIX}:{key.id}:{base64.urlsafe_b64encode(nonce + sealed).decode().rstrip('=')}"
        self._remember(stored, context, plaintext)  # what is written is read back soon: no AES for it
        return stored

    def decrypt(self, stored: str, *, context: str) -> str:
        """The plaintext of a stored secret; :class:`CryptoError` if no key of the ring opens it
        for this ``context`` (a wrong key, a ciphertext moved from another row, a damaged value)."""
        cached = self._cache.get((stored, context))
        if cached is not None:
            return cached
        plaintext = self._open(stored, context)
        self._remember(stored, context, plaintext)
        return plaintext

    def missing_key(self, stored: str | None) -> str | None:
        """The id of the key that made ``stored`` when the ring does not hold it, else None."""
        kid = key_id_of(stored)
        return kid if kid is not None and kid not in self._by_id else None

    def _remember(self, stored: str, context: str, plaintext: str) -> None:
        with self._lock:
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()  # cheap and rare: a worker re-decrypts its active webhooks once
            self._cache[(stored, context)] = plaintext

    def needs_reencryption(self, stored: str) -> bool:
        """Whether ``stored`` was made with a key other than the current one (or is not encrypted)."""
        return key_id_of(stored) != self.current_key_id

    def _open(self, stored: str, context: str) -> str:
        kid = key_id_of(stored)
        if kid is None:
            raise CryptoError("The stored value is not an encrypted secret.")
        key = self._by_id.get(kid)
        if key is None:
            raise CryptoError(
                f"The secret was encrypted with key {kid}, which WEBHOOK_ENCRYPTION_KEYS does not hold."
            )
        body = stored.split(":", 2)[2]
        try:
            sealed = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            return key.aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], context.encode()).decode()
        except (InvalidTag, binascii.Error, ValueError, UnicodeDecodeError):
            raise CryptoError(f"Key {kid} does not open this secret for {context.split(':')[0]}.") from None


def is_encrypted(stored: str | None) -> bool:
    """Whether a stored value is in the encrypted form (rather than plain text, before migration)."""
    return key_id_of(stored) is not None


def key_id_of(stored: str | None) -> str | None:
    """The id of the key that made ``stored``, or None if it is not an encrypted secret."""
    if not stored or not stored.startswith(PREFIX + ":"):
        return None
    parts = stored.split(":", 2)
    return parts[1] if len(parts) == 3 and len(parts[1]) == 8 else None


def ciphertext_length(plaintext_chars: int) -> int:
    """The longest stored form of a plaintext of at most ``plaintext_chars`` characters (UTF-8 up
    to 4 bytes each): what a column must hold."""
    sealed = NONCE_BYTES + 4 * plaintext_chars + 16
    return len(PREFIX) + 1 + 8 + 1 + (sealed * 4 + 2) // 3


EXTENSION = "webhookapp.secret_box"


def install(app: Flask) -> SecretBox:
    """Give ``app`` the key ring of its ``WEBHOOK_ENCRYPTION_KEYS`` (the factory does)."""
    box = app.extensions[EXTENSION] = SecretBox(parse_keys(app.config["WEBHOOK_ENCRYPTION_KEYS"]))
    return box


def current() -> SecretBox:
    """The key ring of the app in context."""
    box: SecretBox = current_app.extensions[EXTENSION]
    return box
