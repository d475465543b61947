"""The key ring of the secrets stored encrypted (webhookapp/infra/crypto.py)."""

from __future__ import annotations

import base64

import pytest

from webhookapp.infra.crypto import CryptoError, SecretBox, ciphertext_length, is_encrypted, new_key, parse_keys


def box(*keys: str) -> SecretBox:
    return SecretBox(parse_keys(",".join(keys)))


def test_a_secret_comes_back_only_in_its_own_context() -> None:
    ring = box(new_key())
    stored = ring.encrypt("s3cret-ü", context="webhooks.jwt_secret:WH-1")
    assert "s3cret" not in stored and is_encrypted(stored)
    assert ring.decrypt(stored, context="webhooks.jwt_secret:WH-1") == "s3cret-ü"
    with pytest.raises(CryptoError, match="does not open"):
        ring.decrypt(stored, context="webhooks.jwt_secret:WH-2")  # copied into another row


def test_each_encryption_is_fresh_and_names_its_key() -> None:
    ring = box(new_key())
    first, second = (ring.encrypt("same", context="c") for _ in range(2))
    assert first != second
    assert first.split(":")[1] == ring.current_key_id


def test_the_first_key_encrypts_and_every_key_decrypts() -> None:
    old, new = new_key(), new_key()
    stored = box(old).encrypt("x", context="c")
    rotated = box(new, old)
    assert rotated.decrypt(stored, context="c") == "x"
    assert rotated.needs_reencryption(stored)
    assert not rotated.needs_reencryption(rotated.encrypt("x", context="c"))
    with pytest.raises(CryptoError, match="does not hold"):
        box(new).decrypt(stored, context="c")


def test_malformed_keys_and_values_are_named() -> None:
    with pytest.raises(CryptoError, match="key 2 is not 32 bytes"):
        parse_keys(f"{new_key()},short")
    with pytest.raises(CryptoError, match="No encryption key"):
        SecretBox([])
    ring = box(new_key())
    with pytest.raises(CryptoError, match="not an encrypted secret"):
        ring.decrypt("plain text", context="c")
    damaged = ring.encrypt("x", context="c")[:-4] + "AAAA"
    with pytest.raises(CryptoError):
        ring.decrypt(damaged, context="c")


def test_standard_base64_keys_are_read_too() -> None:
    raw = bytes(range(32))
    assert parse_keys(base64.b64encode(raw).decode())[0].id == parse_keys(base64.urlsafe_b64encode(raw).decode())[0].id


def test_columns_sized_by_ciphertext_length_hold_the_longest_secret() -> None:
    ring = box(new_key())
    assert len(ring.encrypt("𝄞" * 100, context="c")) <= ciphertext_length(100)


class CountingBox(SecretBox):
    """A key ring that counts its AES-GCM decryptions."""

    opened = 0

    def _open(self, stored: str, context: str) -> str:
        self.opened += 1
        return super()._open(stored, context)


def test_a_secret_is_decrypted_once_per_ciphertext_and_not_after_its_own_encryption() -> None:
    ring = CountingBox(parse_keys(new_key()))
    stored = ring.encrypt("written", context="webhooks.jwt_secret:WH-1")
    assert ring.decrypt(stored, context="webhooks.jwt_secret:WH-1") == "written" and ring.opened == 0
    other = box(*[base64.urlsafe_b64encode(b"k" * 32).decode()])
    foreign = other.encrypt("read", context="c")
    same = CountingBox(other.keys)
    for _ in range(1000):  # a worker's deliveries of one webhook
        assert same.decrypt(foreign, context="c") == "read"
    assert same.opened == 1
    with pytest.raises(CryptoError):
        same.decrypt(foreign, context="another row")  # the cache is by ciphertext and context


def test_missing_key_names_the_key_a_ring_lacks() -> None:
    old, new = new_key(), new_key()
    stored = box(old).encrypt("x", context="c")
    assert box(new).missing_key(stored) == parse_keys(old)[0].id
    assert box(new, old).missing_key(stored) is None and box(new).missing_key("plain") is None
