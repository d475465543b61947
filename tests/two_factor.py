"""Helpers for tests of two-factor login: enrol through the pages, make codes with pyotp."""

from __future__ import annotations

import html
import re
import time

import pyotp
from flask.testing import FlaskClient

from webhookapp.infra.extensions import db
from webhookapp.models import User


def seed_on_page(page: str) -> str:
    found = re.search(r'id="totp-key">([A-Z2-7]+)<', page)
    assert found, "the enrolment page shows the key as text"
    return found.group(1)


def code(seed: str, steps_ahead: int = 0) -> str:
    """The code of the current time step, or of one a step later (accepted: a clock a little off)."""
    return pyotp.TOTP(seed).at(time.time() + 30 * steps_ahead)


def enrol(client: FlaskClient) -> tuple[str, list[str]]:
    """Turn two-factor login on for the logged-in user: the seed and the recovery codes shown."""
    seed = seed_on_page(client.get("/settings/security/two-factor").get_data(as_text=True))
    page = client.post("/settings/security/two-factor", data={"code": code(seed)}).get_data(as_text=True)
    codes = re.findall(r"<li>([a-z2-9]{5}-[a-z2-9]{5})</li>", page)
    assert len(codes) == 10, html.unescape(page)
    return seed, codes


def forget_last_step(email: str) -> None:
    """Let the current step's code be used again, so that a test can log in twice within 30 s."""
    user = db.session.scalar(db.select(User).where(User.email == email))
    assert user is not None
    user.totp_last_step = None
    db.session.commit()
