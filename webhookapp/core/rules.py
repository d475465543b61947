"""Field rules for webhooks (docs/architecture.md, "Catalog and webhooks"), shared by the wizard,
the edit page and the API.

Each rule takes raw input and returns the cleaned value or raises :class:`RuleError` with a
message fit to show next to the field; :func:`rule` turns one into a WTForms validator. Text that
cannot be stored (NUL, lone surrogates) is refused wherever it enters (:func:`plain_text`).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from wtforms.validators import ValidationError

LABEL_MAX = 100
DESCRIPTION_MAX = 2000
URL_MAX = 4096
SECRET_MAX = 100
HEADER_NAME_MAX = 256
HEADER_VALUE_MAX = 4096
HEADERS_MAX = 50
DATA_MAX_BYTES = 64 * 1024
METHODS = ("GET", "POST")
SIGNATURE_FORMATS = ("jwt", "standard")  # the platform's JWT, or Standard Webhooks v1
STANDARD_SECRET_PREFIX = "whsec_"
STANDARD_KEY_BYTES = (24, 64)  # the Standard Webhooks specification's bounds on the HMAC key

# The delivery engine sets these itself; Connection and Transfer-Encoding would break framing.
FORBIDDEN_HEADERS = frozenset(
    {"authorization", "host", "content-length", "content-type", "connection", "transfer-encoding"}
)
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")  # RFC 9110 field-name
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_BUT_TAB = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_CONTROL_BUT_LINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # tab, line feed and CR pass
# NUL cannot be stored in PostgreSQL text, and a lone surrogate is no character at all (no UTF-8
# encoding exists for it): text holding either is refused wherever it enters.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class RuleError(ValueError):
    """An input that breaks a rule; the message is for the person who typed it.

    ``row`` is the 0-based row of a table (the Headers) that the error is about, when there is one.
    """

    row: int | None = None


def apply_rule(check: Callable[[Any], Any], field: Any) -> None:
    """Clean a form ``field``'s data with a rule; the rule's error becomes the field's."""
    try:
        field.data = check(field.data)
    except RuleError as exc:
        raise ValidationError(str(exc)) from None


def rule(check: Callable[[Any], Any]) -> Callable[[Any, Any], None]:
    """Turn a rule into a WTForms validator."""
    return lambda form, field: apply_rule(check, field)


def is_plain(value: str, *, lines: bool = False) -> bool:
    """Whether ``value`` holds no control characters (``lines``: tab and line breaks allowed) and
    no lone surrogates."""
    return not (_CONTROL_BUT_LINES if lines else _CONTROL).search(value) and not _UNSTORABLE.search(value)


def plain_text(value: str, field: str, *, lines: bool = False) -> str:
    """``value`` if it holds no control characters (``lines``: tab and line breaks allowed) and no
    lone surrogates; else a :class:`RuleError` naming ``field``."""
    if (_CONTROL_BUT_LINES if lines else _CONTROL).search(value):
        raise RuleError(f"{field} may not contain control characters.")
    if _UNSTORABLE.search(value):
        raise RuleError(f"{field} may not contain lone surrogates (\\ud800–\\udfff): they are not text.")
    return value


def scrub(text: str) -> str:
    """``text`` with each NUL and lone surrogate replaced by U+FFFD, so that any database can store
    it: for what the service records from outside (a handler's answer), not for what people type."""
    return _UNSTORABLE.sub("\ufffd", text)


def storable(value: Any, field: str) -> None:
    """Refuse NUL characters and lone surrogates in every string (and key) of a JSON value."""
    if isinstance(value, str):
        if _UNSTORABLE.search(value):
            raise RuleError(f"{field} may not contain NUL characters (\\u0000) or lone surrogates (\\ud800–\\udfff).")
    elif isinstance(value, dict):
        for key, item in value.items():
            storable(key, field)
            storable(item, field)
    elif isinstance(value, list):
        for item in value:
            storable(item, field)


def label(value: str | None) -> str:
    text = (value or "").strip()
    if not text:
        raise RuleError("Name is required.")
    if len(text) > LABEL_MAX:
        raise RuleError(f"Name must be at most {LABEL_MAX} characters (it has {len(text)}).")
    return plain_text(text, "Name")


def description(value: str | None) -> str:
    text = (value or "").strip()
    if len(text) > DESCRIPTION_MAX:
        raise RuleError(f"Description must be at most {DESCRIPTION_MAX} characters.")
    return plain_text(text, "Description", lines=True)


def external_url(value: str | None) -> str:
    url = (value or "").strip()
    if not url:
        raise RuleError("Endpoint URL is required.")
    if len(url) > URL_MAX:
        raise RuleError(f"Endpoint URL must be at most {URL_MAX} characters (it has {len(url)}).")
    if _CONTROL.search(url) or " " in url:
        raise RuleError("Endpoint URL may not contain spaces or control characters.")
    plain_text(url, "Endpoint URL")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise RuleError("Endpoint URL is not a valid URL.") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise RuleError("Endpoint URL must start with http:// or https://.")
    if not parts.hostname:
        raise RuleError("Endpoint URL must name a host.")
    if parts.username or parts.password:
        raise RuleError("Endpoint URL may not contain a user name or password; use a header.")
    return url


def jwt_secret(value: str | None) -> str:
    """A non-empty secret of printable characters; the caller generates one when empty."""
    secret = (value or "").strip()
    if not secret:
        raise RuleError("JWT secret is required.")
    if len(secret) > SECRET_MAX:
        raise RuleError(f"JWT secret must be at most {SECRET_MAX} characters.")
    return plain_text(secret, "JWT secret")


def signature_format(value: str | None) -> str:
    """``jwt`` (the platform's, the default) or ``standard`` (Standard Webhooks)."""
    chosen = (value or "").strip().lower()
    if chosen not in SIGNATURE_FORMATS:
        raise RuleError("Signature format must be jwt or standard.")
    return chosen


def standard_secret(value: str | None) -> str:
    """A Standard Webhooks secret: ``whsec_`` and the base64 of 24 to 64 bytes, the HMAC key."""
    secret = jwt_secret(value)
    low, high = STANDARD_KEY_BYTES
    if not secret.startswith(STANDARD_SECRET_PREFIX):
        raise RuleError(f"A Standard Webhooks secret starts with {STANDARD_SECRET_PREFIX} (generate one).")
    try:
        key = base64.b64decode(secret.removeprefix(STANDARD_SECRET_PREFIX), validate=True)
    except binascii.Error:
        raise RuleError(f"A Standard Webhooks secret is {STANDARD_SECRET_PREFIX} and base64 text.") from None
    if not low <= len(key) <= high:
        raise RuleError(f"A Standard Webhooks secret holds {low} to {high} bytes, base64 after the prefix.")
    return secret


def secret_for(format_: str) -> Callable[[str | None], str]:
    """The rule of a secret that signs in ``format_``."""
    return standard_secret if format_ == "standard" else jwt_secret


def http_method(value: str | None) -> str:
    method = (value or "").strip().upper()
    if method not in METHODS:
        raise RuleError("Method must be GET or POST.")
    return method


def header_name(value: str | None) -> str:
    name = (value or "").strip()
    if not name:
        raise RuleError("Header name is required.")
    if len(name) > HEADER_NAME_MAX:
        raise RuleError(f"Header name must be at most {HEADER_NAME_MAX} characters.")
    if not _TOKEN.match(name):
        raise RuleError(f"“{name}” is not a valid header name (letters, digits and - _ . ! # $ & ' * + ^ ` | ~).")
    if name.lower() in FORBIDDEN_HEADERS:
        raise RuleError(f"The {name} header is set by the webhook service and cannot be overridden.")
    return name


def header_value(value: str | None) -> str:
    text = value or ""
    if "\r" in text or "\n" in text:
        raise RuleError("Header values may not contain line breaks.")
    if _CONTROL_BUT_TAB.search(text):
        raise RuleError("Header values may not contain control characters.")
    if len(text) > HEADER_VALUE_MAX:
        raise RuleError(f"Header values must be at most {HEADER_VALUE_MAX} characters.")
    try:
        text.encode("latin-1")  # what HTTP/1.1 header values can carry
    except UnicodeEncodeError:
        raise RuleError("Header values may only use Latin-1 characters (encode others, e.g. as %XX).") from None
    return text.strip()


def headers(pairs: Iterable[tuple[str, str]] | dict[str, str] | None) -> dict[str, str]:
    """Validate name/value pairs (blank rows skipped) into an ordered ``{name: value}``."""
    items = pairs.items() if isinstance(pairs, dict) else (pairs or [])
    cleaned: dict[str, str] = {}
    seen: set[str] = set()
    for row, (raw_name, raw_value) in enumerate(items):
        if not (raw_name or "").strip() and not (raw_value or "").strip():
            continue
        try:
            if not isinstance(raw_name, str) or not isinstance(raw_value, str):
                raise RuleError("Header names and values must be strings.")
            name = header_name(raw_name)
            if name.lower() in seen:
                raise RuleError(f"The {name} header is given twice.")
            seen.add(name.lower())
            cleaned[name] = header_value(raw_value)
        except RuleError as error:
            error.row = row
            raise
    if len(cleaned) > HEADERS_MAX:
        raise RuleError(f"At most {HEADERS_MAX} headers are allowed.")
    return cleaned


def data_text(value: str | None) -> dict[str, Any]:
    """Parse the Additional data text box: empty means ``{}``, otherwise a JSON object."""
    text = (value or "").strip()
    if not text:
        return {}
    storable(text, "Additional data")
    if len(text.encode()) > DATA_MAX_BYTES:
        raise RuleError(f"Additional data must be at most {DATA_MAX_BYTES // 1024} KiB.")
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RuleError(
            f"Additional data is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
        ) from None
    except RecursionError:
        raise RuleError("Additional data is nested too deeply.") from None
    except ValueError as exc:  # a number of more than 4,300 digits, which Python will not convert
        raise RuleError(f"Additional data holds a number that is too large: {exc}.") from None
    return data_object(parsed)


def data_object(value: Any) -> dict[str, Any]:
    """Additional data given as already-parsed JSON: must be an object within the size cap."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RuleError('Additional data must be a JSON object, such as {"purpose": "demo"}.')
    storable(value, "Additional data")
    try:
        size = len(json.dumps(value, ensure_ascii=False, allow_nan=False).encode())
    except ValueError:
        raise RuleError("Additional data may not contain NaN or Infinity.") from None
    if size > DATA_MAX_BYTES:
        raise RuleError(f"Additional data must be at most {DATA_MAX_BYTES // 1024} KiB.")
    return value
