"""Forms for the wizard steps and the edit page; field rules come from ``webhookapp.core.rules``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from flask_wtf import FlaskForm
from wtforms import BooleanField, FieldList, Form, FormField, RadioField, StringField, TextAreaField
from wtforms.fields import SelectChoice  # type: ignore[attr-defined]  # new in WTForms 3.3; stubs are 3.2
from wtforms.validators import ValidationError

from webhookapp.core import rules
from webhookapp.core.rules import apply_rule, rule
from webhookapp.engine.transport import client_tls

ENABLED_HINT = (
    "In case you are not sure about all webhook parameters, keep the switch disabled. "
    "You can turn your webhook on after clarifying all required parameters."
)


class HeaderRowForm(Form):
    """One name/value row of the Headers table (validated as a whole by the parent form)."""

    name = StringField("Header name")
    value = StringField("Header value")


class GeneralForm(FlaskForm):
    label = StringField("Name", validators=[rule(rules.label)])
    description = TextAreaField("Description", validators=[rule(rules.description)])
    active = BooleanField("Enabled", description=ENABLED_HINT)


class ProductForm(FlaskForm):
    product_id = RadioField("Product", choices=[], validate_choice=False)

    def __init__(self, *args: Any, products: list[Any], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.products = products
        self.product_id.choices = [SelectChoice(p.id, p.name) for p in products]

    def validate_product_id(self, field: Any) -> None:
        if field.data not in {p.id for p in self.products}:
            raise ValidationError("Choose one of the products available to your account.")


class TypeForm(FlaskForm):
    type_key = RadioField("Type", choices=[], validate_choice=False)

    def __init__(self, *args: Any, check_type: Callable[[str | None], Any], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.check_type = check_type

    def validate_type_key(self, field: Any) -> None:
        apply_rule(lambda key: self.check_type(key).key, field)


class WriteOnlyTextArea(TextAreaField):
    """A text area that never shows a value: what is typed in it is not sent back to the page."""

    def _value(self) -> str:
        return ""


CLIENT_CERT_HINT = (
    "Mutual TLS, optional: a certificate (PEM, with its chain if needed) this webhook presents to an "
    "https:// handler that asks for one. Refused if expired or not matching the key."
)
CLIENT_KEY_HINT = (
    "The certificate's private key (PEM, without a passphrase). Stored encrypted and never shown again; "
    "left empty, the key already given is kept."
)
CA_BUNDLE_HINT = "Optional: CA certificates (PEM) to trust for this handler instead of the public ones."


SIGNATURE_CHOICES = [SelectChoice("jwt", "JWT"), SelectChoice("standard", "Standard Webhooks")]


class HttpSettingsForm(FlaskForm):
    external_url = StringField("Endpoint URL", validators=[rule(rules.external_url)])
    jwt_secret = StringField("JWT secret")
    http_method = RadioField(
        "Method", choices=[SelectChoice("POST"), SelectChoice("GET")], default="POST", validate_choice=False
    )
    signature_format = RadioField("Signature", choices=SIGNATURE_CHOICES, default="jwt", validate_choice=False)
    headers = FieldList(FormField(HeaderRowForm), label="Headers", min_entries=1, max_entries=rules.HEADERS_MAX + 1)
    tls_client_cert = TextAreaField("Client certificate (PEM)", description=CLIENT_CERT_HINT)
    tls_client_key = WriteOnlyTextArea("Client certificate key (PEM)", description=CLIENT_KEY_HINT)
    tls_ca_bundle = TextAreaField("CA bundle for the handler (PEM)", description=CA_BUNDLE_HINT)

    kept_key: str | None = None
    """The key given before (a draft's, a webhook's): what an empty key field means."""
    checks_client_tls = True
    """Whether :meth:`validate` checks the certificate, key and CA bundle (the edit page leaves it
    to the service, which knows what is unchanged)."""

    def client_tls_values(self) -> tuple[str | None, str | None, str | None]:
        """The certificate, the key (typed, else the kept one, if there is a certificate) and the CA bundle."""
        cert = (self.tls_client_cert.data or "").strip() or None
        key = (self.tls_client_key.data or "").strip() or (self.kept_key if cert else None)
        return cert, key, (self.tls_ca_bundle.data or "").strip() or None

    def validate(self, extra_validators: Any = None) -> bool:
        valid = super().validate(extra_validators)
        if self.checks_client_tls:
            for name, message in client_tls.check(*self.client_tls_values()).items():
                self[name].errors = [*self[name].errors, message]
                valid = False
        return valid

    def validate_jwt_secret(self, field: Any) -> None:
        # Empty is allowed: a strong secret is generated when the webhook is created
        # (docs/architecture.md, "Catalog and webhooks").
        if field.data:
            apply_rule(rules.secret_for(self.chosen_format()), field)

    def chosen_format(self) -> str:
        """The signature format chosen, ``jwt`` unless it is a known other one."""
        return self.signature_format.data if self.signature_format.data in rules.SIGNATURE_FORMATS else "jwt"

    def validate_signature_format(self, field: Any) -> None:
        apply_rule(rules.signature_format, field)

    def validate_http_method(self, field: Any) -> None:
        apply_rule(rules.http_method, field)

    def validate_headers(self, field: Any) -> None:
        try:
            rules.headers(self.header_pairs())
        except rules.RuleError as exc:
            # Shown below the rows, so it names the row it is about; that row's inputs point to it.
            field.error_row = exc.row
            prefix = f"Header row {exc.row + 1}: " if exc.row is not None else ""
            raise ValidationError(prefix + str(exc)) from None

    def header_pairs(self) -> list[tuple[str, str]]:
        return [(row.form.name.data or "", row.form.value.data or "") for row in self.headers]

    def add_service_errors(self, errors: dict[str, list[str]]) -> None:
        """Show errors found by the service next to the fields they concern."""
        for name, messages in errors.items():
            field = self._fields.get("custom_data" if name == "data" else name)
            if field is not None:
                field.errors = [*field.errors, *messages]
            else:
                self.form_errors.extend(messages)


class DataForm(FlaskForm):
    # Not called "data": that name is taken by WTForms' own Form.data.
    custom_data = TextAreaField("Additional data (JSON object)", validators=[rule(rules.data_text)])


SECRET_HINT = (
    "Leave empty to keep the current secret. A secret typed here signs Send test request without "
    "being saved; Save replaces the current secret with it only when “Replace the current secret” is ticked."
)
SECRET_NOT_CONFIRMED = (
    "Nothing was saved, and the JWT secret was not changed: tick “Replace the current secret” to "
    "replace it with this one, or empty this field to keep it."
)
NOTHING_TO_REPLACE = "Type the new secret (or generate one), or untick “Replace the current secret”."


class EditForm(GeneralForm, HttpSettingsForm, DataForm):
    """The edit page: General, HTTP Settings and Additional data in one form.

    A typed secret is what Send test request signs with; Save applies it only with
    ``change_secret`` ticked (:meth:`secret_change_confirmed`), so that a secret typed to try a
    handler never replaces the live one, which the handlers verify with, by accident.
    """

    jwt_secret = StringField("JWT secret", description=SECRET_HINT)
    change_secret = BooleanField("Replace the current secret with the one typed above")
    custom_data = TextAreaField("Additional data (JSON object)")
    checks_client_tls = False

    def secret_change_confirmed(self) -> bool:
        """Save's check, after :meth:`validate`: a typed secret needs ``change_secret`` ticked, and
        a ticked box a typed secret; otherwise the secret field says so and nothing is saved."""
        typed = bool((self.jwt_secret.data or "").strip())
        if typed == bool(self.change_secret.data) or self.jwt_secret.errors:
            return True  # the rule's own message, if any, is enough
        self.jwt_secret.errors = [*self.jwt_secret.errors, SECRET_NOT_CONFIRMED if typed else NOTHING_TO_REPLACE]
        return False

    def to_fields(self) -> dict[str, Any]:
        """The validated form as ``services.webhooks.update_webhook`` fields (an empty secret keeps
        the current one, as a form without a signature format keeps the current format)."""
        fields = {
            "label": self.label.data,
            "description": self.description.data,
            "active": bool(self.active.data),
            "external_url": self.external_url.data,
            "jwt_secret": (self.jwt_secret.data or "") if self.change_secret.data else "",
            "http_method": self.http_method.data,
            "signature_format": self.signature_format.data,
            "headers": self.header_pairs(),
            "data": self.parsed_data or {},
            # An empty key keeps the stored one; an emptied certificate removes both.
            "tls_client_cert": self.tls_client_cert.data or "",
            "tls_client_key": self.tls_client_key.data or "",
            "tls_ca_bundle": self.tls_ca_bundle.data or "",
        }
        if not self.signature_format.raw_data:
            del fields["signature_format"]
        return fields

    parsed_data: dict[str, Any] | None = None

    def validate_custom_data(self, field: Any) -> None:
        # Additional data is only sent with POST; for GET the text box is ignored. The parsed
        # object is kept aside so that the box still shows the text as typed if another field fails.
        if self.http_method.data != "GET":
            try:
                self.parsed_data = rules.data_text(field.data)
            except rules.RuleError as exc:
                raise ValidationError(str(exc)) from None


def format_data(data: dict[str, Any]) -> str:
    """Additional data as the text box shows it: pretty JSON, or empty for ``{}``."""
    return json.dumps(data, indent=2, ensure_ascii=False) if data else ""


def apply_row_action(form: HttpSettingsForm, action: str) -> bool:
    """Handle the Headers table's "Add header" and "Remove" buttons (no JavaScript needed).

    Returns True when ``action`` was one of them, so the caller shows the form again.
    """
    rows = form.header_pairs()
    if action == "add_header":
        if len(rows) >= rules.HEADERS_MAX:
            form.headers.errors = [f"At most {rules.HEADERS_MAX} headers are allowed."]
            return True
        rows.append(("", ""))
    elif action.startswith("remove_header-") and action.removeprefix("remove_header-").isdigit():
        index = int(action.removeprefix("remove_header-"))
        if index < len(rows):
            del rows[index]
    else:
        return False
    while form.headers.entries:
        form.headers.pop_entry()
    for name, value in rows or [("", "")]:
        form.headers.append_entry({"name": name, "value": value})
    return True
