"""API token form: its name, its scopes and an optional expiry (docs/security.md, "Scoped and expiring API tokens")."""

import secrets
from datetime import UTC, datetime
from typing import Any

from flask_wtf import FlaskForm
from wtforms import DateTimeLocalField, HiddenField, SelectMultipleField, StringField
from wtforms.fields import SelectChoice  # type: ignore[attr-defined]  # new in WTForms 3.3; stubs are 3.2
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from webhookapp.core import rules, scopes
from webhookapp.core.times import utcnow
from webhookapp.services.tokens import NAME_MAX


def _in_the_future(_form: Any, field: Any) -> None:
    if field.data is not None and field.data.replace(tzinfo=UTC) <= utcnow():
        raise ValidationError("Choose a time in the future, or leave it empty for a token that lasts until revoked.")


class TokenForm(FlaskForm):
    name = StringField(
        "Token name",
        validators=[
            DataRequired("Give the token a name, such as the system that will use it."),
            Length(max=NAME_MAX),
            rules.rule(lambda name: rules.plain_text(name or "", "Token name")),
        ],
        description="For example the name of the system that will post events with it.",
    )
    scopes = SelectMultipleField(
        "Scopes",
        choices=[SelectChoice(name, text) for name, text in scopes.SCOPES.items()],
        default=list(scopes.ALL_SCOPES),
        validators=[DataRequired("Choose at least one scope: what the token may do.")],
        description="What the token may do. A request outside them is refused (403).",
    )
    expires_at = DateTimeLocalField(
        "Expires (UTC)",
        format=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
        validators=[Optional(), _in_the_future],
        description="Optional: the date and time (UTC) the token stops working. Empty: until revoked.",
    )
    creation_key = HiddenField(default=lambda: secrets.token_hex(16), validators=[Length(max=32)])

    def expiry(self) -> datetime | None:
        """The chosen expiry as an aware UTC time, or None."""
        return None if self.expires_at.data is None else self.expires_at.data.replace(tzinfo=UTC)
