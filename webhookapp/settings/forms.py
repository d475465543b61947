"""API token form."""

import secrets

from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField
from wtforms.validators import DataRequired, Length

from webhookapp.core import rules
from webhookapp.services.tokens import NAME_MAX


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
    creation_key = HiddenField(default=lambda: secrets.token_hex(16), validators=[Length(max=32)])
