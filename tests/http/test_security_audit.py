"""The Security page's changes in the audit trail (docs/security.md, "Audit trail"): a new
password, two-factor enrolment and removal, a two-factor login and a wrong code, the account's
requirement; never a password, a seed or a code."""

from __future__ import annotations

import json

from sqlalchemy import select

from tests.conftest import PASSWORD
from tests.two_factor import code, enrol
from webhookapp.infra.extensions import db
from webhookapp.models import AuditEntry, User

NEW = "plum orchard telescope 42"


def entries(*actions: str) -> list[AuditEntry]:
    db.session.rollback()
    return list(db.session.scalars(select(AuditEntry).where(AuditEntry.action.in_(actions)).order_by(AuditEntry.id)))


def stored() -> str:
    db.session.rollback()
    columns = [column.key for column in AuditEntry.__table__.columns]
    rows = db.session.scalars(select(AuditEntry))
    return json.dumps([{name: str(getattr(entry, name)) for name in columns} for entry in rows])


def test_password_change_is_recorded_without_the_passwords(client, auth, vendor):
    auth.login()
    client.post("/settings/security/password", data={"current_password": "wrong", "new_password": NEW, "confirm": NEW})
    assert entries("user.password_changed") == []  # a refused change records nothing
    client.post("/settings/security/password", data={"current_password": PASSWORD, "new_password": NEW, "confirm": NEW})
    [entry] = entries("user.password_changed")
    assert (entry.actor_label, entry.object_type, entry.object_id, entry.account_id) == (
        vendor.email, "user", str(vendor.user.id), vendor.account.id)  # fmt: skip
    assert NEW not in stored() and PASSWORD not in stored()


def test_two_factor_enrolment_login_wrong_code_and_removal_are_recorded(client, auth, vendor):
    auth.login()
    seed, codes = enrol(client)
    assert len(entries("user.two_factor_enrolled")) == 1
    client.post("/logout")
    client.post("/login", data={"email": vendor.email, "password": PASSWORD})
    client.post("/login/code", data={"code": "000000" if code(seed, 1) != "000000" else "111111"})
    [failed] = entries("user.login_failed")
    assert failed.object_label == vendor.email
    client.post("/login/code", data={"code": code(seed, 1)})
    logins = entries("user.logged_in")
    assert logins[-1].changes == {"two_factor": {"after": True}}
    client.post("/settings/security/two-factor/remove", data={"code": codes[0]})
    [removed] = entries("user.two_factor_removed")
    assert removed.actor_label == vendor.email
    text = stored()
    assert seed not in text and not any(recovery in text for recovery in codes)


def test_the_account_requirement_is_recorded(client, auth, vendor):
    user = db.session.get(User, vendor.user.id)
    user.is_admin = True
    db.session.commit()
    auth.login()
    client.post("/settings/security/two-factor/required", data={"required": "y"})
    client.post("/settings/security/two-factor/required", data={"required": "y"})  # no change: no entry
    [entry] = entries("account.updated")
    assert (entry.object_type, entry.object_id, entry.changes) == (
        "account", vendor.account.id, {"require_two_factor": {"before": False, "after": True}})  # fmt: skip
