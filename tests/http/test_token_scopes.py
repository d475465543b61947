"""Scoped and expiring API tokens (docs/security.md, "Scoped and expiring API tokens"): every
route of the API needs its scope (403 naming it without), secrets only with ``webhooks:secrets``,
an expired token is a 401 that says so, and the last use notes the client address.

Runs on SQLite and, under ``TEST_DATABASE_URL``, on PostgreSQL, where ``POST /events`` checks the
token inside its one statement."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from tests.conftest import make_webhook
from tests.openapi_conformance import assert_conforms
from webhookapp.api.openapi import document
from webhookapp.api.routes import token_required
from webhookapp.core import scopes
from webhookapp.core.times import isoformat, utcnow
from webhookapp.infra.extensions import db
from webhookapp.models import ApiToken, Webhook
from webhookapp.services import secret_rotation, tokens

HOOKS = "/public/v1/notifications/webhooks"
SECRET = "a secret of the owner's own choosing, 42 chars"


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # {hook}: a webhook of the account
    needs: tuple[str, ...]
    works: int  # the status once the scopes are there
    body: Any = None
    next_secret: bool = False  # the webhook has a next secret first


def create_body(hook: Webhook) -> dict[str, Any]:
    return {"label": "New", "product_id": hook.product_id, "object_class": "fulfillment_request", "type": "event",
            "http_method": "POST", "external_url": "https://hooks.example.com/new"}  # fmt: skip


ROUTES = {
    "api.list_webhooks": Route("GET", HOOKS, (scopes.WEBHOOKS_READ,), 200),
    "api.create_webhook": Route("POST", HOOKS, (scopes.WEBHOOKS_WRITE,), 201, body=create_body),
    "api.get_webhook": Route("GET", HOOKS + "/{hook}", (scopes.WEBHOOKS_READ,), 200),
    "api.update_webhook": Route("PUT", HOOKS + "/{hook}", (scopes.WEBHOOKS_WRITE,), 200, body={"label": "Changed"}),
    "api.delete_webhook": Route("DELETE", HOOKS + "/{hook}", (scopes.WEBHOOKS_WRITE,), 204),
    "api.trigger_webhook": Route("POST", HOOKS + "/{hook}/trigger", (scopes.WEBHOOKS_WRITE,), 200),
    "api.list_attempts": Route("GET", HOOKS + "/{hook}/attempts", (scopes.WEBHOOKS_READ,), 200),
    # An attempt that does not exist: the 404 comes after the token was let in.
    "api.redeliver_attempt": Route("POST", HOOKS + "/{hook}/attempts/999999/redeliver", (scopes.WEBHOOKS_WRITE,), 404),
    "api.recover": Route("POST", HOOKS + "/{hook}/recover", (scopes.WEBHOOKS_WRITE,), 202,
                         body={"since": "2020-01-01T00:00:00Z"}),
    # A recovery that does not exist: the 404 comes after the token was let in.
    "api.get_recovery": Route("GET", HOOKS + "/{hook}/recoveries/777777", (scopes.WEBHOOKS_READ,), 404),
    "api.cancel_recovery": Route("POST", HOOKS + "/{hook}/recoveries/777777/cancel", (scopes.WEBHOOKS_WRITE,), 404),
    "api.generate_next_secret": Route(
        "POST", HOOKS + "/{hook}/next-secret", (scopes.WEBHOOKS_WRITE, scopes.WEBHOOKS_SECRETS), 200
    ),
    "api.switch_secret": Route(
        "POST",
        HOOKS + "/{hook}/next-secret/switch",
        (scopes.WEBHOOKS_WRITE, scopes.WEBHOOKS_SECRETS),
        200,
        next_secret=True,
    ),
    "api.discard_next_secret": Route(
        "DELETE", HOOKS + "/{hook}/next-secret", (scopes.WEBHOOKS_WRITE,), 200, next_secret=True
    ),
    "api.post_event": Route(
        "POST",
        "/public/v1/events",
        (scopes.EVENTS_WRITE,),
        202,
        body=lambda hook: {"object_class": "fulfillment_request", "product_id": hook.product_id},
    ),
    "api.list_events": Route("GET", "/public/v1/events", (scopes.EVENTS_READ,), 200),
    "api.get_event": Route("GET", "/public/v1/events/EV-0000-0000-0000", (scopes.EVENTS_READ,), 404),
    # No validation webhook on the product: the 404 comes after the token was let in.
    "api.validate": Route(
        "POST",
        "/public/v1/validations",
        (scopes.VALIDATIONS_WRITE,),
        404,
        body=lambda hook: {"product_id": hook.product_id, "type": "validator", "request": {}},
    ),
    "api.list_audit": Route("GET", "/public/v1/audit", (scopes.AUDIT_READ,), 200),
    # An entry that does not exist: the 404 comes after the token was let in.
    "api.get_audit": Route("GET", "/public/v1/audit/888888", (scopes.AUDIT_READ,), 404),
}
PUBLIC = {"api.openapi_json"}


def scoped_token(tenant, names, **fields) -> tuple[ApiToken, str]:
    return tokens.create_token(tenant.account, "scoped", scope_names=names, **fields)


def send(client, route: Route, hook: Webhook, plain: str, address: str = "127.0.0.1"):
    body = route.body(hook) if callable(route.body) else route.body
    return client.open(route.path.format(hook=hook.id), method=route.method, json=body,
                       headers={"Authorization": f"ApiKey {plain}"}, environ_base={"REMOTE_ADDR": address})  # fmt: skip


def assert_error(response, status: int, error_code: str, message: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.get_json() == {"error_code": error_code, "errors": [message]}


def snapshot(hook_id: str) -> tuple:
    db.session.expire_all()
    row = db.session.get(Webhook, hook_id)
    return None if row is None else (row.label, row.jwt_secret, row.jwt_secret_next, row.events_count,
                                     row.next_trigger_at, row.modified_at)  # fmt: skip


def documented_path(route: Route) -> str:
    """The route's path as the OpenAPI document names it."""
    path = route.path.removeprefix("/public/v1").replace("{hook}", "{webhook_id}")
    path = path.replace("999999", "{attempt_id}").replace("888888", "{entry_id}").replace("777777", "{recovery_id}")
    return path.replace("EV-0000-0000-0000", "{event_id}")


def test_every_api_route_names_known_scopes(app):
    """A route added later (the audit trail's too) must name its scopes; only the document is public."""
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules() if rule.endpoint.startswith("api.")}
    for endpoint in endpoints - PUBLIC:
        needed = getattr(app.view_functions[endpoint], "required_scopes", ())
        assert needed and set(needed) <= set(scopes.ALL_SCOPES), endpoint


def test_a_route_without_a_scope_cannot_be_declared():
    with pytest.raises(TypeError, match="token_required needs the scope"):
        token_required(lambda: None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Unknown scope 'webhooks:admin'"):
        token_required("webhooks:admin")


def test_every_api_route_is_in_the_table_with_the_scopes_its_view_names(app):
    """Each route is tried below with and without its scopes: a new route needs a row in ROUTES."""
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules() if rule.endpoint.startswith("api.")}
    assert endpoints - PUBLIC == set(ROUTES)
    for endpoint, route in ROUTES.items():
        assert app.view_functions[endpoint].required_scopes == route.needs, endpoint
    assert not hasattr(app.view_functions["api.openapi_json"], "required_scopes")


@pytest.mark.parametrize("endpoint", sorted(ROUTES))
def test_a_token_without_the_route_s_scope_gets_403_naming_it_and_changes_nothing(client, vendor, endpoint):
    route = ROUTES[endpoint]
    hook = make_webhook(vendor, external_url="https://hooks.example.com/x")
    if route.next_secret:
        secret_rotation.generate_next(hook)
    for missing in route.needs:
        others = [name for name in scopes.ALL_SCOPES if name != missing]
        token, plain = scoped_token(vendor, others)
        before = snapshot(hook.id)
        refused = send(client, route, hook, plain)
        assert_error(refused, 403, "AUTH_403", f"This token lacks the scope {missing}.")
        assert f'scope="{missing}"' in refused.headers["WWW-Authenticate"]
        assert_conforms(refused, documented_path(route), route.method.lower())
        assert snapshot(hook.id) == before
        db.session.refresh(token)
        assert token.last_used_at is None  # a refused request is no use of the token


@pytest.mark.parametrize("endpoint", sorted(ROUTES))
def test_a_token_with_just_the_route_s_scopes_is_let_in(client, vendor, endpoint):
    route = ROUTES[endpoint]
    hook = make_webhook(vendor, external_url="https://hooks.example.com/x")
    if route.next_secret:
        secret_rotation.generate_next(hook)
    _token, plain = scoped_token(vendor, route.needs)
    answer = send(client, route, hook, plain)
    assert answer.status_code == route.works, answer.get_data(as_text=True)


def test_secrets_are_left_out_without_webhooks_secrets(client, vendor):
    hook = make_webhook(vendor, jwt_secret=SECRET)
    secret_rotation.generate_next(hook)
    _token, reader = scoped_token(vendor, [scopes.WEBHOOKS_READ, scopes.WEBHOOKS_WRITE])
    _token, keeper = scoped_token(vendor, [scopes.WEBHOOKS_READ, scopes.WEBHOOKS_SECRETS])
    for path in (f"{HOOKS}/{hook.id}", HOOKS):
        plain = client.get(path, headers={"Authorization": f"ApiKey {reader}"}).get_json()
        full = client.get(path, headers={"Authorization": f"ApiKey {keeper}"}).get_json()
        plain, full = (plain[0], full[0]) if isinstance(plain, list) else (plain, full)
        assert "jwt_secret" not in plain and "jwt_secret_next" not in plain
        assert full["jwt_secret"] == SECRET and full["jwt_secret_next"]
        assert {key: value for key, value in full.items() if not key.startswith("jwt_secret")} == plain
    updated = client.put(f"{HOOKS}/{hook.id}", json={"label": "Renamed"}, headers={"Authorization": f"ApiKey {reader}"})
    assert updated.status_code == 200 and "jwt_secret" not in updated.get_json()


def test_choosing_a_secret_needs_webhooks_secrets(client, vendor):
    hook = make_webhook(vendor, jwt_secret=SECRET)
    _token, writer = scoped_token(vendor, [scopes.WEBHOOKS_READ, scopes.WEBHOOKS_WRITE])
    headers = {"Authorization": f"ApiKey {writer}"}
    changed = client.put(f"{HOOKS}/{hook.id}", json={"jwt_secret": "mine " * 8}, headers=headers)
    assert_error(changed, 403, "AUTH_403", "This token lacks the scope webhooks:secrets.")
    created = client.post(HOOKS, json={**create_body(hook), "jwt_secret": "mine " * 8}, headers=headers)
    assert_error(created, 403, "AUTH_403", "This token lacks the scope webhooks:secrets.")
    assert snapshot(hook.id)[1] == SECRET
    generated = client.post(HOOKS, json={**create_body(hook), "jwt_secret": ""}, headers=headers)
    assert generated.status_code == 201 and "jwt_secret" not in generated.get_json()
    rotated = client.post(f"{HOOKS}/{hook.id}/next-secret", headers=headers)
    assert_error(rotated, 403, "AUTH_403", "This token lacks the scope webhooks:secrets.")


@pytest.mark.parametrize("endpoint", ["api.list_webhooks", "api.post_event", "api.list_events", "api.validate"])
def test_an_expired_token_answers_401_saying_so(client, vendor, endpoint):
    hook = make_webhook(vendor)
    token, plain = scoped_token(vendor, None, expires_at=utcnow() + timedelta(seconds=30))
    expired_at = utcnow() - timedelta(seconds=5)
    db.session.execute(update(ApiToken).where(ApiToken.id == token.id).values(expires_at=expired_at))
    db.session.commit()
    before = snapshot(hook.id)
    refused = send(client, ROUTES[endpoint], hook, plain)
    message = f"This token expired on {isoformat(expired_at)}; create a new one on the API tokens page."
    assert_error(refused, 401, "AUTH_001", message)
    assert_conforms(refused, documented_path(ROUTES[endpoint]), ROUTES[endpoint].method.lower())
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert snapshot(hook.id) == before


def test_an_expired_token_counts_as_a_failed_token_check(app, client, vendor):
    app.config.update(TOKEN_FAILURE_LIMIT="3 per 15 minutes")
    hook = make_webhook(vendor)
    token, plain = scoped_token(vendor, None, expires_at=utcnow() + timedelta(seconds=30))
    db.session.execute(update(ApiToken).where(ApiToken.id == token.id).values(expires_at=utcnow()))
    db.session.commit()
    endpoints = ("api.list_webhooks", "api.post_event", "api.list_events", "api.get_webhook")
    statuses = [send(client, ROUTES[endpoint], hook, plain, address="10.9.9.9").status_code for endpoint in endpoints]
    assert statuses == [401, 401, 401, 429]
    _other, lacking = scoped_token(vendor, [scopes.EVENTS_READ])
    # A valid token outside its scopes is no failed check: 403 each time, never throttled.
    assert [send(client, ROUTES["api.list_webhooks"], hook, lacking, address="10.9.9.8").status_code
            for _ in range(4)] == [403] * 4  # fmt: skip


def test_a_token_is_let_in_until_its_expiry(client, vendor):
    hook = make_webhook(vendor)
    _token, plain = scoped_token(vendor, None, expires_at=utcnow() + timedelta(minutes=5))
    for endpoint in ("api.list_webhooks", "api.post_event", "api.list_events"):
        assert send(client, ROUTES[endpoint], hook, plain).status_code == ROUTES[endpoint].works


@pytest.mark.parametrize("endpoint", ["api.list_webhooks", "api.post_event", "api.list_events"])
def test_the_last_use_notes_time_and_address_at_most_once_a_minute(client, vendor, endpoint):
    hook = make_webhook(vendor)
    token, plain = scoped_token(vendor, None)
    before = utcnow().replace(microsecond=0)
    assert send(client, ROUTES[endpoint], hook, plain, address="203.0.113.9").status_code == ROUTES[endpoint].works
    db.session.expire_all()
    token = db.session.get(ApiToken, token.id)
    assert token.last_used_address == "203.0.113.9" and token.last_used_at >= before
    first_use = token.last_used_at
    assert send(client, ROUTES[endpoint], hook, plain, address="203.0.113.10").status_code == ROUTES[endpoint].works
    db.session.expire_all()
    token = db.session.get(ApiToken, token.id)
    assert (token.last_used_at, token.last_used_address) == (first_use, "203.0.113.9")  # within the minute


def test_the_openapi_document_names_each_operation_s_scopes(client):
    served = client.get("/public/v1/openapi.json").get_json()
    assert served == document()
    schemes = served["components"]["securitySchemes"]
    for name in scopes.ALL_SCOPES:
        assert name in schemes["ApiKey"]["description"]
    methods = {"GET", "POST", "PUT", "DELETE"}
    operations = {(method.upper(), path): operation for path, item in served["paths"].items()
                  for method, operation in item.items() if method.upper() in methods}  # fmt: skip
    for route in ROUTES.values():
        path = documented_path(route)
        operation = operations[(route.method, path)]
        assert operation["x-required-scopes"] == list(route.needs), path
        assert all(f"`{name}`" in operation["description"] for name in route.needs), path
        assert "403" in operation["responses"], path
