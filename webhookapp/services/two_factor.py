"""Two-factor login with TOTP (docs/security.md, "Two-factor login"): enrolment, checking a code
or a recovery code, removal. Owns its transactions.

The seed is stored encrypted (``crypto.current()``, context ``users.totp_secret:<id>``). A code is
accepted once: the time step it belongs to is stored, and a code of that step or an earlier one is
refused, so a code seen over a shoulder or in a proxy's log cannot be replayed. Recovery codes are
random, shown once and stored as SHA-256 digests (like API tokens: they are long and random, so a
slow hash adds nothing); each works once. Accepting a code is a conditional UPDATE, so two
requests racing with the same code cannot both win, on SQLite and PostgreSQL. Enrolment and
removal are recorded in the audit trail in their own transaction (docs/security.md, "Audit trail").
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time

import pyotp
import segno
from sqlalchemy import delete, func, or_, select, update

from webhookapp.core.times import utcnow
from webhookapp.infra import crypto
from webhookapp.infra.extensions import db
from webhookapp.models import RecoveryCode, User
from webhookapp.services import audit

ISSUER = "webhookapp"
RECOVERY_CODES = 10
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read from paper
VALID_WINDOW = 1  # one 30 s step either side: a phone's clock a little off still works


def _seed_context(user: User) -> str:
    return f"users.totp_secret:{user.id}"


def _pending_context(user: User) -> str:
    return f"session.totp_pending:{user.id}"


def new_pending_seed(user: User) -> str:
    """A fresh seed for an enrolment, encrypted for the session (the cookie is signed, not
    encrypted): only this user's session can carry it to the confirmation."""
    return crypto.current().encrypt(pyotp.random_base32(), context=_pending_context(user))


def pending_seed(user: User, sealed: str) -> str | None:
    """The seed an enrolment carries, or None when it does not decrypt (another user's, tampered)."""
    try:
        return crypto.current().decrypt(sealed, context=_pending_context(user))
    except crypto.CryptoError:
        return None


def provisioning_uri(user: User, seed: str) -> str:
    """The ``otpauth://`` URI authenticator apps read (from the QR code or typed in)."""
    return pyotp.TOTP(seed).provisioning_uri(name=user.email, issuer_name=ISSUER)


def qr_code_data_uri(uri: str) -> str:
    """The QR code of ``uri`` as an SVG ``data:`` URI: an <img> the CSP allows, no script."""
    return str(segno.make(uri, error="m").svg_data_uri(scale=5, border=2, dark="#000", light="#fff"))


def _normalised(code: str) -> str:
    return re.sub(r"[\s-]", "", code).lower()


def _steps(seed: str, code: str, now: float) -> list[int]:
    """The time steps around ``now`` whose code is ``code`` (usually none or one)."""
    totp = pyotp.TOTP(seed)
    current = totp.timecode(now)
    return [step for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1)
            if secrets.compare_digest(totp.generate_otp(step), code)]  # fmt: skip


def confirm_enrolment(user: User, seed: str, code: str) -> list[str] | None:
    """Turn two-factor login on with ``seed`` if ``code`` is its current code: the recovery codes
    (plain, to show once), or None for a wrong code."""
    steps = _steps(seed, _normalised(code), time.time())
    if not steps:
        return None
    user.totp_secret = crypto.current().encrypt(seed, context=_seed_context(user))
    user.totp_last_step = max(steps)
    codes = _replace_recovery_codes(user)
    audit.record("user.two_factor_enrolled", **audit.about_user(user))
    db.session.commit()
    return codes


def _replace_recovery_codes(user: User) -> list[str]:
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = ["-".join("".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(5)) for _ in range(2))
             for _ in range(RECOVERY_CODES)]  # fmt: skip
    db.session.add_all(RecoveryCode(user_id=user.id, code_hash=_digest(code)) for code in codes)
    return codes


def _digest(code: str) -> str:
    return hashlib.sha256(_normalised(code).encode()).hexdigest()


def check_code(user: User, code: str) -> bool:
    """Whether ``code`` (a TOTP code, or an unused recovery code) proves the second factor; a
    code accepted here is spent."""
    if user.totp_secret is None:
        return False
    code = _normalised(code)
    if code.isdigit():
        seed = crypto.current().decrypt(user.totp_secret, context=_seed_context(user))
        return any(_spend_step(user, step) for step in _steps(seed, code, time.time()))
    return _spend_recovery_code(user, code)


def _spend_step(user: User, step: int) -> bool:
    spent = db.session.execute(
        update(User)
        .where(User.id == user.id, or_(User.totp_last_step.is_(None), User.totp_last_step < step))
        .values(totp_last_step=step)
    )
    db.session.commit()
    return bool(getattr(spent, "rowcount", 0))


def _spend_recovery_code(user: User, code: str) -> bool:
    spent = db.session.execute(
        update(RecoveryCode)
        .where(RecoveryCode.user_id == user.id, RecoveryCode.code_hash == _digest(code), RecoveryCode.used_at.is_(None))
        .values(used_at=utcnow())
    )
    db.session.commit()
    return bool(getattr(spent, "rowcount", 0))


def recovery_codes_left(user: User) -> int:
    return (
        db.session.scalar(select(func.count()).where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None)))
        or 0
    )


def remove(user: User) -> None:
    """Turn two-factor login off: the seed and the recovery codes are deleted."""
    user.totp_secret = None
    user.totp_last_step = None
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    audit.record("user.two_factor_removed", **audit.about_user(user))
    db.session.commit()


def set_required(user: User, required: bool) -> None:
    """An admin's account setting: every user of the account logs in with a second factor."""
    account = user.account
    before, account.require_two_factor = account.require_two_factor, required
    if before != required:
        changes = {"require_two_factor": {"before": before, "after": required}}
        audit.record(
            "account.updated", account_id=account.id, object_type="account", object_id=account.id,
            object_label=account.name, changes=changes,
        )  # fmt: skip
    db.session.commit()


def must_enrol(user: User) -> bool:
    """A user of an account that requires two-factor login who has not set it up yet."""
    return user.account.require_two_factor and not user.two_factor_enabled
