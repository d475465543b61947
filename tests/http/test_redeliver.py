"""Redeliver (docs/architecture.md, "Redeliver"): an attempt's request sent again now, freshly
signed with the webhook's current settings, recorded as a new attempt pointing at the first, and
nothing else about the webhook changed. Against a real handler, a real database and real Redis.
"""

from __future__ import annotations

import html
import json
from datetime import datetime, timedelta
from typing import Any

import jwt
import pytest
from sqlalchemy import inspect

from tests.conftest import make_webhook
from tests.engine import api_token, post_event, run_worker
from tests.openapi_conformance import assert_conforms
from tests.pages import REFUSED, csrf_token, login
from tests.servers import HandlerServer
from webhookapp.api.openapi_webhook_paths import WEBHOOK_PATH
from webhookapp.core.times import utcnow
from webhookapp.engine import outcomes, signing
from webhookapp.engine.types import AttemptResult, PreparedCall
from webhookapp.infra.extensions import db
from webhookapp.models import Attempt, Webhook
from webhookapp.services import webhook_changes as service

HOOKS = "/public/v1/notifications/webhooks"
REDELIVER = f"{WEBHOOK_PATH}/attempts/{{attempt_id}}/redeliver"
API_URL = "https://api.example.test/public/v1/requests?status=pending"
DISABLED = "The webhook is disabled: enable it before redelivering."


def state(hook_id: str) -> dict[str, Any]:
    """Every column of the webhook as stored: counters, summaries, trigger state, settings; but
    the count of its stored attempts, which a redelivery raises (checked on its own)."""
    db.session.expire_all()
    webhook = db.session.get(Webhook, hook_id)
    columns = (column.key for column in inspect(Webhook).column_attrs if column.key != "attempts_kept")
    return {key: getattr(webhook, key) for key in columns}


def attempts_of(hook_id: str) -> list[Attempt]:
    db.session.expire_all()
    return list(db.session.scalars(db.select(Attempt).where(Attempt.webhook_id == hook_id).order_by(Attempt.id)))


def text_of(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def decode(request, secret: str) -> dict[str, Any]:
    """The JWT of a received request, verified with ``secret``; its header must be exactly ours."""
    token = request.headers["Authorization"].removeprefix("Bearer ")
    assert jwt.get_unverified_header(token) == {"typ": "JWT", "alg": "HS256"}
    return jwt.decode(token, secret, algorithms=["HS256"])


def delivered(app, client, vendor, handler: HandlerServer, status: int, **fields: Any) -> tuple[Webhook, Attempt]:
    """An event webhook after one event and one attempt that got ``status``."""
    hook = make_webhook(vendor, external_url=handler.behave("/first", status=status), **fields)
    token = api_token(vendor.account)
    code, _ = post_event(client, token, object_class=hook.object_class, product_id=hook.product_id, api_url=API_URL)
    assert code == 202
    run_worker(app)
    handler.wait_for("/first")
    [first] = attempts_of(hook.id)
    assert first.success is (200 <= status < 300)
    return hook, first


@pytest.fixture
def logged_in(auth) -> None:
    auth.login()


def redeliver(client, hook_id: str, attempt_id: int):
    return client.post(f"/webhooks/{hook_id}/attempts/{attempt_id}/redeliver")


def test_redelivering_a_failure_sends_it_again_freshly_signed_and_leaves_the_retry_alone(
    app, client, vendor, handler, logged_in
):
    hook, first = delivered(app, client, vendor, handler, 500, data={"purpose": "demo"})
    assert hook.status == "Failing" and hook.next_trigger_at is not None
    # The handler is fixed and moved; the secret and a header changed: Redeliver uses them.
    fixed = handler.behave("/fixed", status=200, body=b'{"handled": true}')
    secret = "a-new-secret-" * 3
    service.update_webhook(hook, {"external_url": fixed, "jwt_secret": secret, "headers": {"X-Tenant": "acme"}})
    before = state(hook.id)
    sent_after = utcnow().replace(microsecond=0)

    response = redeliver(client, hook.id, first.id)

    [request] = handler.wait_for("/fixed")
    claims = decode(request, secret)
    triggered_at = datetime.fromisoformat(claims["triggered_at"])
    assert triggered_at >= sent_after  # signed now, not when the first attempt was
    assert claims.pop("exp") == int(triggered_at.timestamp()) + 600
    assert list(claims) == list(signing.PAYLOAD_KEYS)
    assert json.loads(request.body) == claims  # the body of a trigger: the payload, as the JWT carries it
    assert claims["api_url"] == API_URL and claims["webhook_id"] == hook.id and claims["data"] == {"purpose": "demo"}
    assert request.headers["X-Tenant"] == "acme"

    first_again, new = attempts_of(hook.id)
    assert first_again.id == first.id and first_again.redelivery_of is None
    assert (new.kind, new.number, new.redelivery_of, new.success) == ("trigger", 1, first.id, True)
    assert (new.response_status, new.response_body, new.error) == (200, '{"handled": true}', None)
    assert (new.request_method, new.request_url) == ("POST", fixed)
    assert new.request_headers["Authorization"].endswith(".REDACTED")
    assert json.loads(new.request_body) == claims

    assert response.status_code == 302
    assert response.headers["Location"] == f"/webhooks/{hook.id}/attempts/{new.id}"
    page = text_of(client.get(response.headers["Location"]))
    assert "Redelivered: the handler answered HTTP 200." in page
    assert f'Redelivery of <a href="/webhooks/{hook.id}/attempts/{first.id}">{first.reference}</a>' in page
    assert f"<h1>Attempt {new.reference} " in page and new.reference != first.reference
    assert f"{first.reference}</a> <span class=\"muted\">(attempt 1 of 10)</span>" in page

    after = state(hook.id)
    assert after == before  # no event, no statistics, no summary, the same retry schedule
    assert db.session.get(Webhook, hook.id).attempts_kept == 2  # the failure and its redelivery
    assert db.session.get(Webhook, hook.id).status == "Failing"


def test_redelivering_a_success_that_now_fails_records_the_failure_alone(app, client, vendor, handler, logged_in):
    hook, first = delivered(app, client, vendor, handler, 200)
    handler.behave("/first", status=503, body=b"down for maintenance")
    before = state(hook.id)

    response = redeliver(client, hook.id, first.id)

    assert len(handler.wait_for("/first", 2)) == 2
    _, new = attempts_of(hook.id)
    assert (new.kind, new.number, new.redelivery_of, new.success, new.response_status) == ("trigger", 1, first.id,
                                                                                            False, 503)  # fmt: skip
    assert new.response_body == "down for maintenance"
    page = text_of(client.get(response.headers["Location"]))
    assert f"The redelivery failed: {new.error}" in page
    assert state(hook.id) == before
    assert before["last_failure_at"] is None and before["failure_count"] == 0


def test_an_out_of_order_webhook_stays_out_of_order(app, client, vendor, handler, logged_in):
    app.config["WEBHOOK_MAX_ATTEMPTS"] = 1
    hook, first = delivered(app, client, vendor, handler, 500)
    assert db.session.get(Webhook, hook.id).status == "Out of order"
    handler.behave("/first", status=200)
    before = state(hook.id)

    assert redeliver(client, hook.id, first.id).status_code == 302

    assert attempts_of(hook.id)[-1].success is True
    assert state(hook.id) == before
    assert db.session.get(Webhook, hook.id).status == "Out of order"


def test_a_redelivery_of_a_redelivery_points_at_the_first_attempt(app, client, vendor, handler, logged_in):
    hook, first = delivered(app, client, vendor, handler, 500)
    redeliver(client, hook.id, first.id)
    second = attempts_of(hook.id)[-1]
    response = redeliver(client, hook.id, second.id)
    third = attempts_of(hook.id)[-1]
    assert (second.redelivery_of, third.redelivery_of, third.number) == (first.id, first.id, 1)
    assert response.headers["Location"] == f"/webhooks/{hook.id}/attempts/{third.id}"
    assert len(handler.wait_for("/first", 3)) == 3


def test_the_deliveries_table_marks_redeliveries(app, client, vendor, handler, logged_in):
    hook, first = delivered(app, client, vendor, handler, 200)
    redeliver(client, hook.id, first.id)
    page = text_of(client.get(f"/webhooks/{hook.id}?tab=deliveries"))
    cells = page.split('<td data-label="Attempt">')[1:]
    assert len(cells) == 2
    new = attempts_of(hook.id)[-1]
    redelivered = '<span class="badge badge-info">Redelivery</span>'
    assert cells[0].startswith(  # newest first
        f'<span class="mono">{new.reference}</span> {redelivered} <span class="muted small">of {first.reference}</span>'
    )
    assert cells[1].startswith(f'<span class="mono">{first.reference}</span> '
                               '<span class="muted small">attempt 1 of 10</span></td>')  # fmt: skip


def test_a_pruned_original_is_named_without_a_link(app, client, vendor, handler, logged_in):
    hook, first = delivered(app, client, vendor, handler, 200)
    response = redeliver(client, hook.id, first.id)
    db.session.delete(db.session.get(Attempt, first.id))
    db.session.commit()
    page = text_of(client.get(response.headers["Location"]))
    assert f"Redelivery of {first.reference} <span" in page and "(no longer kept)" in page


def test_a_validation_attempt_is_sent_again_with_its_draft(app, client, vendor, handler):
    answer = b'{"id": "PR-1", "asset": {"params": []}}'
    url = handler.behave("/validate", status=200, body=answer)
    hook = make_webhook(vendor, type_key="fulfillment_request.validator", external_url=url, jwt_secret="v" * 32)
    token = api_token(vendor.account)
    headers = {"Authorization": f"ApiKey {token}"}
    draft = {"id": "PR-1", "asset": {"params": [{"id": "p", "value": "x", "value_error": ""}]}}
    body = {"type": hook.type, "product_id": hook.product_id, "request": draft}
    assert client.post("/public/v1/validations", json=body, headers=headers).status_code == 200
    [first] = attempts_of(hook.id)
    handler.behave("/validate", status=200, body=b"<html>not JSON</html>")
    before = state(hook.id)

    response = client.post(f"{HOOKS}/{hook.id}/attempts/{first.id}/redeliver", headers=headers)

    assert response.status_code == 201
    assert_conforms(response, REDELIVER, "post")
    sent = handler.wait_for("/validate", 2)[1]
    assert json.loads(sent.body) == draft
    assert decode(sent, "v" * 32)["webhook_id"] == hook.id
    new = attempts_of(hook.id)[-1]
    assert (new.kind, new.number, new.redelivery_of, new.success) == ("validation", 1, first.id, False)
    assert new.error == "The handler answered HTTP 200 without a JSON object."  # judged as validations are
    assert response.get_json()["redelivery_of"] == first.id and response.get_json()["id"] == new.id
    assert state(hook.id) == before  # not counted as an event, unlike the validation itself


def test_the_api_answers_201_with_the_new_attempt_as_the_attempts_resource_lists_it(app, client, vendor, handler):
    hook, first = delivered(app, client, vendor, handler, 200)
    headers = {"Authorization": f"ApiKey {api_token(vendor.account)}"}
    before = state(hook.id)

    response = client.post(f"{HOOKS}/{hook.id}/attempts/{first.id}/redeliver", headers=headers)

    assert response.status_code == 201
    created = assert_conforms(response, REDELIVER, "post")
    assert created["redelivery_of"] == first.id and created["kind"] == "trigger" and created["success"] is True
    listed = client.get(f"{HOOKS}/{hook.id}/attempts", headers=headers).get_json()
    assert listed[0] == created
    assert listed[1]["id"] == first.id and listed[1]["redelivery_of"] is None
    # The reference the pages show, for a ticket: the id in groups of three, the new one its own.
    assert (listed[1]["reference"], created["reference"]) == (first.reference, f"AT-000-{created['id']:03d}")
    assert created["reference"] != first.reference and created["number"] == first.number == 1
    assert state(hook.id) == before
    assert len(handler.wait_for("/first", 2)) == 2


def test_a_disabled_webhook_refuses_and_changes_nothing(app, client, vendor, handler, logged_in):
    hook, first = delivered(app, client, vendor, handler, 500)
    service.set_enabled(hook, False)
    before = state(hook.id)

    response = redeliver(client, hook.id, first.id)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/webhooks/{hook.id}/attempts/{first.id}"
    page = text_of(client.get(response.headers["Location"]))
    assert DISABLED in page
    assert "The webhook is disabled: enable it to redeliver." in page  # beside the disabled button

    headers = {"Authorization": f"ApiKey {api_token(vendor.account)}"}
    answer = client.post(f"{HOOKS}/{hook.id}/attempts/{first.id}/redeliver", headers=headers)
    assert answer.status_code == 400
    assert answer.get_json() == {"error_code": "VAL_001", "errors": [DISABLED]}

    assert len(handler.requests_to("/first")) == 1
    assert [attempt.id for attempt in attempts_of(hook.id)] == [first.id]
    assert state(hook.id) == before


@pytest.mark.parametrize("case", ["other account", "other webhook's attempt", "deleted", "unknown", "huge id"])
def test_what_is_not_yours_or_not_there_is_a_404(app, client, vendor, other_vendor, handler, logged_in, case):
    hook, first = delivered(app, client, vendor, handler, 200)
    theirs = make_webhook(other_vendor, external_url=handler.behave("/theirs"))
    db.session.add(Attempt(webhook_id=theirs.id, request_method="POST", request_url=theirs.external_url,
                           request_headers={}, started_at=utcnow() - timedelta(minutes=1)))  # fmt: skip
    db.session.commit()
    their_attempt = attempts_of(theirs.id)[0].id
    sibling = make_webhook(vendor, external_url=handler.behave("/sibling"))
    hook_id, attempt_id = {
        "other account": (theirs.id, their_attempt),
        "other webhook's attempt": (sibling.id, first.id),
        "deleted": (hook.id, first.id),
        "unknown": (hook.id, first.id + 1000),
        "huge id": (hook.id, 10**30),
    }[case]
    if case == "deleted":
        service.delete_webhook(hook)
    own_token = {"Authorization": f"ApiKey {api_token(vendor.account)}"}
    before = state(sibling.id)

    assert redeliver(client, hook_id, attempt_id).status_code == 404
    answer = client.post(f"{HOOKS}/{hook_id}/attempts/{attempt_id}/redeliver", headers=own_token)
    assert answer.status_code == 404
    assert answer.get_json()["error_code"] == ("WH_404" if case in ("other account", "deleted") else "ATT_404")

    assert len(handler.received) == 1  # the first delivery alone
    assert state(sibling.id) == before
    assert len(attempts_of(theirs.id)) == 1 and len(attempts_of(sibling.id)) == 0


def test_a_webhook_deleted_while_the_request_was_out_keeps_no_attempt(app, vendor):
    hook = make_webhook(vendor)
    first = Attempt(webhook_id=hook.id, request_method="POST", request_url=hook.external_url, request_headers={})
    db.session.add(first)
    db.session.commit()
    call = PreparedCall(method="POST", url=hook.external_url, headers={}, body=b"{}", logged_headers={})
    result = AttemptResult(started_at=utcnow(), duration_ms=3.0, success=True, status=200)
    first_id = first.id
    service.delete_webhook(hook)

    assert outcomes.record_redelivery(hook.id, 1, call, result, "trigger", first_id) is None
    db.session.commit()
    assert [attempt.id for attempt in attempts_of(hook.id)] == [first_id]  # the purge job's to remove


def test_the_form_needs_its_csrf_token(app, client, vendor, handler, csrf_client):
    hook, first = delivered(app, client, vendor, handler, 200)
    login(csrf_client, vendor.email)
    url = f"/webhooks/{hook.id}/attempts/{first.id}"

    refused = csrf_client.post(f"{url}/redeliver")
    assert refused.status_code == 400 and REFUSED in text_of(refused)
    assert len(handler.requests_to("/first")) == 1 and len(attempts_of(hook.id)) == 1

    token = csrf_token(csrf_client.get(url))
    response = csrf_client.post(f"{url}/redeliver", data={"csrf_token": token})
    assert response.status_code == 302
    assert len(handler.wait_for("/first", 2)) == 2 and attempts_of(hook.id)[-1].redelivery_of == first.id
