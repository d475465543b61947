"""Form markup from ``templates/_forms.html``: labels, hints and errors wired with ARIA."""

from __future__ import annotations

import re

import pytest

from tests.conftest import make_webhook


def described_by_ids(body: str) -> list[str]:
    return [ref for value in re.findall(r'aria-describedby="([^"]*)"', body) for ref in value.split()]


def dangling_references(body: str) -> list[str]:
    """aria-describedby ids with no element of that id on the page."""
    ids = set(re.findall(r'\bid="([^"]+)"', body))
    return [ref for ref in described_by_ids(body) if ref not in ids]


def test_a_field_with_an_error_is_marked_invalid_and_points_at_the_message(client, vendor):
    body = client.post("/login", data={"email": "", "password": ""}).get_data(as_text=True)
    tag = re.search(r'<input\b[^>]*\bname="email"[^>]*>', body).group(0)
    assert 'aria-invalid="true"' in tag
    assert 'aria-describedby="email-errors"' in tag
    assert '<ul class="field-errors" id="email-errors">' in body
    assert dangling_references(body) == []


def test_every_input_has_a_label(client, auth, vendor):
    hook = make_webhook(vendor)
    auth.login()
    body = client.get(f"/webhooks/{hook.id}/edit").get_data(as_text=True)
    labelled = set(re.findall(r'<label\b[^>]*\bfor="([^"]+)"', body))
    for wrapped in re.findall(r"<label\b[^>]*>(.*?)</label>", body, re.S):  # implicit: <label><input></label>
        labelled.update(re.findall(r'<input\b[^>]*\bid="([^"]+)"', wrapped))
    visible = re.findall(r'<(?:input|textarea)\b(?![^>]*type="(?:hidden|radio|submit)")[^>]*\bid="([^"]+)"', body)
    assert visible
    assert [field for field in visible if field not in labelled] == []


@pytest.mark.parametrize("page", ["login", "wizard", "edit", "tokens"])
def test_fields_without_errors_have_no_bogus_aria(client, auth, vendor, page):
    """ARIA treats any aria-invalid value but "false" as invalid, so "None" reads as an error."""
    url = "/login"
    if page != "login":
        hook = make_webhook(vendor)
        auth.login()
        url = "/settings/tokens" if page == "tokens" else f"/webhooks/{hook.id}/edit"
        if page == "wizard":
            url = client.get("/webhooks/new").headers["Location"]
    body = client.get(url).get_data(as_text=True)
    assert 'aria-invalid="None"' not in body
    assert dangling_references(body) == []
