"""Login, two-factor and password forms."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, Field, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, ValidationError

from webhookapp.core import passwords

CODE_HINT = "The 6-digit code your authenticator app shows, or one of your recovery codes."


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired("Enter your email address."), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired("Enter your password."), Length(max=1024)])
    remember = BooleanField("Keep me logged in")


class CodeForm(FlaskForm):
    """The second step of a login: a TOTP code or a recovery code."""

    code = StringField(
        "Code",
        validators=[DataRequired("Enter the code from your authenticator app."), Length(max=32)],
        description=CODE_HINT,
    )


class ConfirmPasswordForm(FlaskForm):
    password = PasswordField("Password", validators=[DataRequired("Enter your password."), Length(max=1024)])


class NewPassword:
    """The password policy (:mod:`webhookapp.core.passwords`) as a field rule, with zxcvbn's advice."""

    def __init__(self, *user_inputs: str):
        self.user_inputs = user_inputs

    def __call__(self, form: Any, field: Field) -> None:
        problems = passwords.problems(field.data or "", self.user_inputs)
        if problems:
            raise ValidationError(" ".join(problems))


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(
        "Current password", validators=[DataRequired("Enter your current password."), Length(max=1024)]
    )
    new_password = PasswordField(
        "New password",
        validators=[DataRequired("Enter a new password."), Length(max=1024)],
        description=f"At least {passwords.MIN_LENGTH} characters, not easy to guess: a few uncommon words work well.",
    )
    confirm = PasswordField(
        "New password again",
        validators=[
            DataRequired("Enter the new password again."),
            EqualTo("new_password", "The two new passwords are not the same."),
        ],
    )

    def check_policy(self, *user_inputs: str) -> bool:
        """The policy, after the fields' own rules; the email and the name count as easy guesses."""
        try:
            NewPassword(*user_inputs)(self, self.new_password)
        except ValidationError as exc:
            self.new_password.errors = [*self.new_password.errors, str(exc)]
            return False
        return True


class EnrolForm(FlaskForm):
    """Confirming two-factor enrolment with the app's first code."""

    code = StringField(
        "Code from the app",
        validators=[DataRequired("Enter the 6-digit code your authenticator app shows."), Length(max=32)],
        description="After scanning, the app shows a 6-digit code that changes every 30 seconds.",
    )


class RemoveTwoFactorForm(FlaskForm):
    """Removal asks for a current code; the password was confirmed just before (auth/reauth.py)."""

    code = StringField(
        "Code",
        validators=[DataRequired("Enter a code from your authenticator app."), Length(max=32)],
        description=CODE_HINT,
    )


class RequireTwoFactorForm(FlaskForm):
    required = BooleanField(
        "Require two-factor login for every user of this account",
        description="Users without it are asked to set it up right after their password, before any other page.",
    )
