"""Client certificates for mutual TLS (docs/handlers.md, "Client certificates"): the checks made
when a webhook's certificate, key and CA bundle are saved, and the TLS context a call presents
them with.

The key never touches a disk in plain text. :meth:`ssl.SSLContext.load_cert_chain` reads files
only, so the PEM is written to an anonymous memory file (``os.memfd_create``, Linux): it has no
name in any file system and lives in memory, like the rest of the process's memory, until its
descriptor is closed, right after loading (docs/security.md, "Client certificates").
"""

from __future__ import annotations

import hashlib
import os
import ssl
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests.utils
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from urllib3.util.ssl_ import create_urllib3_context

PEM_MAX = 32 * 1024  # characters of a certificate chain, a key or a CA bundle
CONTEXTS_MAX = 1024  # TLS contexts kept per sender: the webhooks with certificates, with room
PUBLIC_CAS = requests.utils.DEFAULT_CA_BUNDLE_PATH
"""The CAs a handler's certificate is checked against, unless its webhook names its own: those
requests trusts (certifi's bundle). Read at each call, so a test can trust a CA of its own."""


@dataclass(frozen=True)
class ClientTLS:
    """What a call to an ``https://`` handler presents: the webhook's certificate chain and key
    (PEM), and the CA bundle that replaces the public CAs for it, if any. ``webhook_id`` is part
    of the identity, so that no two webhooks share a TLS context or a pooled connection."""

    webhook_id: str
    cert_pem: str | None
    key_pem: str | None = field(repr=False)  # never in a log line or a traceback's locals
    ca_pem: str | None = None

    @property
    def identity(self) -> str:
        """A digest naming the webhook and everything it presents (not the key's text)."""
        digest = hashlib.sha256()
        for part in (self.webhook_id, self.cert_pem or "", self.key_pem or "", self.ca_pem or ""):
            digest.update(part.encode())
            digest.update(b"\0")
        return digest.hexdigest()


def _memory_file(data: bytes) -> int:
    """A descriptor of an anonymous memory file holding ``data`` (no path on any disk)."""
    descriptor = os.memfd_create("webhook-client-certificate", os.MFD_CLOEXEC)
    view = memoryview(data)
    while view:
        view = view[os.write(descriptor, view) :]
    return descriptor


def context_for(client: ClientTLS) -> ssl.SSLContext:
    """A TLS context that verifies the handler (against ``ca_pem`` if given, else the public
    CAs) and presents the client certificate, if any; ssl.SSLError or ValueError if it cannot be
    made."""
    context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
    context.check_hostname = True
    if client.ca_pem:
        context.load_verify_locations(cadata=client.ca_pem)
    else:
        context.load_verify_locations(cafile=PUBLIC_CAS)  # as without a certificate
    if client.cert_pem and client.key_pem:
        descriptor = _memory_file(f"{client.cert_pem.strip()}\n{client.key_pem.strip()}\n".encode())
        try:
            context.load_cert_chain(f"/proc/self/fd/{descriptor}")
        finally:
            os.close(descriptor)
    return context


class Contexts:
    """The TLS contexts of one sender, by :attr:`ClientTLS.identity`, made at first use."""

    def __init__(self) -> None:
        self._made: dict[str, ssl.SSLContext] = {}
        self._lock = threading.Lock()

    def get(self, client: ClientTLS) -> ssl.SSLContext:
        identity = client.identity
        made = self._made.get(identity)
        if made is None:
            made = context_for(client)
            with self._lock:
                if len(self._made) >= CONTEXTS_MAX:
                    self._made.clear()  # rare: the contexts of active webhooks are made again
                made = self._made.setdefault(identity, made)
        return made


# -- Checks when saved --------------------------------------------------------------------------


def check(
    cert_pem: str | None, key_pem: str | None, ca_pem: str | None, *, now: datetime | None = None
) -> dict[str, str]:
    """What is wrong with a certificate, its key and a CA bundle, by field name (empty: nothing).

    Refused: text that is not PEM, a certificate not valid now (expired or not yet valid), an
    encrypted key, a key that does not match the certificate, one without the other, and any
    pair the TLS library cannot load. The messages never quote the key."""
    now = now or datetime.now(UTC)
    errors: dict[str, str] = {}
    for name, value in (("tls_client_cert", cert_pem), ("tls_client_key", key_pem), ("tls_ca_bundle", ca_pem)):
        if value and len(value) > PEM_MAX:
            errors[name] = f"At most {PEM_MAX // 1024} KiB of PEM text."
    if errors:
        return errors
    if ca_pem:
        try:
            x509.load_pem_x509_certificates(ca_pem.encode())
        except ValueError:
            errors["tls_ca_bundle"] = (
                "Not a CA bundle: paste one or more PEM certificates (-----BEGIN CERTIFICATE-----)."
            )
    if not cert_pem and not key_pem:
        return errors
    if not cert_pem:
        errors["tls_client_cert"] = "Paste the certificate that goes with the key."
        return errors
    if not key_pem:
        errors["tls_client_key"] = "Paste the certificate's private key (PEM)."
        return errors
    certificate = _certificate(cert_pem, now, errors)
    key = _key(key_pem, errors)
    if certificate is None or key is None:
        return errors
    if _public(certificate.public_key()) != _public(key.public_key()):
        errors["tls_client_key"] = "This key does not match the certificate."
        return errors
    try:
        context_for(ClientTLS("check", cert_pem, key_pem, ca_pem or None))
    except (ssl.SSLError, ValueError) as exc:
        errors.setdefault("tls_client_cert", f"TLS cannot use this certificate and key: {exc.__class__.__name__}.")
    return errors


def _certificate(cert_pem: str, now: datetime, errors: dict[str, str]) -> x509.Certificate | None:
    try:
        certificate = x509.load_pem_x509_certificates(cert_pem.encode())[0]
    except ValueError:
        errors["tls_client_cert"] = "Not a certificate: paste it in PEM form (-----BEGIN CERTIFICATE-----)."
        return None
    if certificate.not_valid_after_utc <= now:
        errors["tls_client_cert"] = f"This certificate expired on {certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC."
        return None
    if certificate.not_valid_before_utc > now:
        errors["tls_client_cert"] = (
            f"This certificate is valid only from {certificate.not_valid_before_utc:%Y-%m-%d %H:%M} UTC."
        )
        return None
    return certificate


def _key(key_pem: str, errors: dict[str, str]) -> PrivateKeyTypes | None:
    try:
        return serialization.load_pem_private_key(key_pem.encode(), password=None)
    except TypeError:  # encrypted with a passphrase
        errors["tls_client_key"] = "This key is encrypted: paste it without a passphrase (it is stored encrypted here)."
    except (ValueError, UnsupportedAlgorithm):
        errors["tls_client_key"] = "Not a private key: paste it in PEM form (-----BEGIN PRIVATE KEY-----)."
    return None


def _public(key: Any) -> bytes:
    """A public key's DER form, to compare a certificate's with a private key's."""
    der: bytes = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return der


def summary(cert_pem: str | None) -> str | None:
    """A stored certificate as the pages name it ("CN=orders, expires 2027-03-01 12:00 UTC"), or None."""
    if not cert_pem:
        return None
    try:
        certificate = x509.load_pem_x509_certificates(cert_pem.encode())[0]
    except ValueError:
        return None
    return f"{certificate.subject.rfc4514_string()}, expires {certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
