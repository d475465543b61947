"""Creation-wizard drafts: what a person typed so far, kept in the database, not the cookie."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select

from webhookapp.core.times import utcnow
from webhookapp.infra.extensions import db
from webhookapp.models import User, WizardDraft

DRAFT_LIFETIME = timedelta(days=2)


def start_draft(user: User, initial: dict[str, Any]) -> WizardDraft:
    """Open a new draft for ``user`` (and drop that user's drafts abandoned long ago)."""
    db.session.execute(
        delete(WizardDraft).where(WizardDraft.user_id == user.id, WizardDraft.updated_at < utcnow() - DRAFT_LIFETIME)
    )
    draft = WizardDraft(id=secrets.token_hex(16), user_id=user.id, data=initial, completed=[])
    db.session.add(draft)
    db.session.commit()
    return draft


def get_draft(user: User, draft_id: str) -> WizardDraft | None:
    """The user's own draft with this id, or None."""
    return db.session.scalar(select(WizardDraft).where(WizardDraft.id == draft_id, WizardDraft.user_id == user.id))


def save_step(draft: WizardDraft, values: dict[str, Any], *, step: str | None = None, completed: bool = False) -> None:
    """Merge ``values`` into the draft; mark ``step`` completed (or not) when given."""
    draft.data = {**draft.data, **values}  # a new dict, so the JSON column sees the change
    if step is not None:
        done = [name for name in draft.completed if name != step]
        draft.completed = [*done, step] if completed else done
    draft.updated_at = utcnow()
    db.session.commit()


def discard_draft(draft: WizardDraft) -> None:
    db.session.delete(draft)
    db.session.commit()
