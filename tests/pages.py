"""Reading the pages the test client gets: form values, the errors next to a field, CSRF tokens,
and the Create Webhook wizard driven step by step. Shared by the unit and HTTP tests."""

from __future__ import annotations

import html
import re

from flask.testing import FlaskClient

from tests.conftest import PASSWORD
from webhookapp.infra.extensions import db
from webhookapp.models import WizardDraft

REFUSED = "The form had expired or was not sent from this site."


def csrf_token(response) -> str:
    assert response.status_code == 200
    return re.search(r'name="csrf_token"[^>]*?value="([^"]+)"', response.get_data(as_text=True)).group(1)


def login(client: FlaskClient, email: str) -> None:
    token = csrf_token(client.get("/login"))
    response = client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302


STEPS = ("general", "product", "type", "http", "data")


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def inputs(body: str, name: str) -> list[str]:
    return re.findall(rf'<input\b[^>]*\bname="{re.escape(name)}"[^>]*>', body)


def input_value(body: str, name: str) -> str:
    """The value attribute of the one <input> called ``name``."""
    [tag] = inputs(body, name)
    match = re.search(r'\bvalue="([^"]*)"', tag)
    return html.unescape(match.group(1)) if match else ""


def checked_value(body: str, name: str) -> str | None:
    """The value of the checked radio button called ``name``, or None."""
    checked = [tag for tag in inputs(body, name) if re.search(r"\schecked\b", tag)]
    assert len(checked) <= 1, checked
    return html.unescape(re.search(r'\bvalue="([^"]*)"', checked[0]).group(1)) if checked else None


def textarea_value(body: str, name: str) -> str:
    match = re.search(rf'<textarea\b[^>]*\bname="{name}"[^>]*>\r?\n?(.*?)</textarea>', body, re.S)
    return html.unescape(match.group(1))


def field_errors(response, field_id: str) -> list[str]:
    """The messages listed next to a field (``<ul class="field-errors" id="<field>-errors">``)."""
    body = response.get_data(as_text=True)
    match = re.search(rf'<ul class="field-errors" id="{re.escape(field_id)}-errors">(.*?)</ul>', body, re.S)
    return [html.unescape(item) for item in re.findall(r"<li>(.*?)</li>", match.group(1), re.S)] if match else []


def valid_values(product_id: str) -> dict[str, dict[str, str]]:
    return {
        "general": {"label": "Orders hook", "description": "Watches the order queue", "active": "y"},
        "product": {"product_id": product_id},
        "type": {"type_key": "fulfillment_request.event"},
        "http": {
            "external_url": "https://handler.example.com/orders",
            "jwt_secret": "a-shared-secret",
            "http_method": "POST",
            "headers-0-name": "",
            "headers-0-value": "",
        },
        "data": {"custom_data": '{"purpose": "demo"}'},
    }


class Wizard:
    """One draft of the wizard, driven through the test client."""

    def __init__(self, client, product_id: str):
        self.client = client
        self.values = valid_values(product_id)
        response = client.get("/webhooks/new")
        assert response.status_code == 302
        match = re.fullmatch(r"/webhooks/new/([0-9a-f]{32})/general", response.headers["Location"])
        assert match, response.headers["Location"]
        self.id = match.group(1)

    def url(self, step: str) -> str:
        return f"/webhooks/new/{self.id}/{step}"

    def get(self, step: str):
        return self.client.get(self.url(step))

    def post(self, step: str, action: str = "next", **fields: str):
        return self.client.post(self.url(step), data={**self.values[step], **fields, "action": action})

    def complete(self, *steps: str):
        """Post valid values for ``steps``; each must advance."""
        for step in steps:
            response = self.post(step)
            errors = re.findall(r'id="([\w-]+)-errors">(.*?)</ul>', text(response), re.S)
            assert response.status_code == 302, (step, errors)
        return response

    def draft(self) -> WizardDraft | None:
        db.session.rollback()
        return db.session.get(WizardDraft, self.id)
