"""The OpenAPI document at ``GET /public/v1/openapi.json``: valid OpenAPI 3.1, one entry per route,
and real responses (over the test client, real Redis and a real handler) that match it."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from werkzeug.test import TestResponse

import webhookapp
from tests.conftest import Tenant, make_webhook
from tests.engine import api_token, run_worker
from tests.openapi_conformance import (
    DOC,
    HTTP_METHODS,
    JSON,
    PREFIX,
    assert_conforms,
    documented_status,
    request_errors,
)
from tests.servers import HandlerServer, free_port
from webhookapp import create_app
from webhookapp.api.openapi import EVENT_PATH
from webhookapp.api.openapi_webhook_paths import WEBHOOK_PATH
from webhookapp.api.serializers import STATUS_KEYS
from webhookapp.core import catalog, scopes
from webhookapp.infra.extensions import db, dispose_engines
from webhookapp.models import Attempt, Webhook
from webhookapp.services import tokens

TOO_BIG = json.dumps({"padding": "x" * (65 * 1024)})
OBJECTION = b'{"id": "PR-1", "asset": {"params": [{"id": "p", "value": "", "value_error": "Required."}]}}'


@dataclass
class Api:
    """The test client with a token, a vendor and a real handler, and shortcuts for the cases."""

    app: Flask
    client: FlaskClient
    vendor: Tenant
    other: Tenant
    handler: HandlerServer
    token: str
    sent: Any = None  # the JSON body of the last call, if it had one

    def call(self, method: str, path: str, body: Any = None, *, auth: str | None = "ApiKey", **kwargs: Any):
        headers = kwargs.pop("headers", {})
        if auth:
            headers["Authorization"] = f"{auth} {self.token}"
        self.sent = body
        if body is not None:
            kwargs["json"] = body
        return self.client.open(PREFIX + path, method=method.upper(), headers=headers, **kwargs)

    def while_the_database_refuses(self, method: str, path: str, body: Any) -> TestResponse:
        """The same call to a web process whose database refuses every connection (a failover)."""
        url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/gone"
        down = create_app("testing", {"SQLALCHEMY_DATABASE_URI": url, "REDIS_URL": self.app.config["REDIS_URL"],
                                      "WEBHOOK_START_CHECK_TIMEOUT": 1})  # fmt: skip
        self.sent = body
        try:
            return down.test_client().open(PREFIX + path, method=method.upper(), json=body,
                                           headers={"Authorization": f"ApiKey {self.token}"})  # fmt: skip
        finally:
            with down.app_context():
                dispose_engines()

    def raw(self, method: str, path: str, data: str, content_type: str = JSON):
        return self.call(method, path, data=data, content_type=content_type)

    def hook(self, **fields: Any) -> Webhook:
        return make_webhook(self.vendor, external_url=self.handler.behave("/hook"), **fields)

    def validator(self, status: int = 200, body: bytes = b'{"id": "PR-1"}', on: bool = True) -> Webhook:
        url = self.handler.behave(f"/validate/{status}", status=status, body=body)
        return make_webhook(self.vendor, type_key="fulfillment_request.validator", external_url=url, active=on)

    def event(self, hook: Webhook, **extra: Any):
        return self.call("post", "/events", {"object_class": hook.object_class, "product_id": hook.product_id, **extra})

    def delivered(self) -> Webhook:
        """An event webhook that has been triggered once, with success."""
        hook = self.hook()
        self.event(hook)
        run_worker(self.app)
        self.handler.wait_for("/hook")
        return hook

    def validate(self, hook: Webhook, **extra: Any):
        body = {"type": hook.type, "product_id": hook.product_id, "request": {"id": "PR-1"}, **extra}
        return self.call("post", "/validations", body)

    def trigger(self, hook: Webhook | str, **kwargs: Any):
        return self.call("post", self.hook_path(hook, "/trigger"), **kwargs)

    def hook_path(self, hook: Webhook | str, suffix: str = "") -> str:
        return f"/notifications/webhooks/{getattr(hook, 'id', hook)}{suffix}"

    def redeliver(self, hook: Webhook | str, attempt_id: int | None = None, **kwargs: Any):
        """Redeliver ``attempt_id``, by default the webhook's first attempt."""
        if attempt_id is None:
            attempt_id = db.session.scalar(db.select(db.func.min(Attempt.id)).where(Attempt.webhook_id == hook.id))
        return self.call("post", self.hook_path(hook, f"/attempts/{attempt_id}/redeliver"), **kwargs)

    def without(self, scope: str) -> Api:
        """This Api, its token from now on one with every scope but ``scope``."""
        others = [name for name in scopes.ALL_SCOPES if name != scope]
        self.token = tokens.create_token(self.vendor.account, "scoped", scope_names=others)[1]
        return self

    def validated(self) -> Webhook:
        """A validation webhook that has answered one validation."""
        hook = self.validator()
        assert self.validate(hook).status_code == 200
        return hook


@pytest.fixture
def api(app, client, vendor, other_vendor, handler) -> Api:
    return Api(app, client, vendor, other_vendor, handler, api_token(vendor.account))


@dataclass(frozen=True)
class Case:
    path: str
    method: str
    status: int
    name: str
    run: Callable[[Api], TestResponse]

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.path} {self.status} {self.name}"


WEBHOOKS = "/notifications/webhooks"
TRIGGER = f"{WEBHOOK_PATH}/trigger"
ATTEMPTS = f"{WEBHOOK_PATH}/attempts"
REDELIVER = f"{WEBHOOK_PATH}/attempts/{{attempt_id}}/redeliver"
NEXT_SECRET = f"{WEBHOOK_PATH}/next-secret"
SWITCH_SECRET = f"{NEXT_SECRET}/switch"
RECOVER = f"{WEBHOOK_PATH}/recover"
RECOVERY = f"{WEBHOOK_PATH}/recoveries/{{recovery_id}}"
CANCEL = f"{RECOVERY}/cancel"
SINCE = {"since": "2026-01-01T00:00:00+00:00"}
UNKNOWN = "WH-000-000-000"


def audited_change(api: Api) -> int:
    """Update a webhook's name and secret through the API; the id of the entry that records it."""
    hook = api.hook()
    answer = api.call("put", api.hook_path(hook), {"label": "Renamed", "jwt_secret": "s" * 40})
    assert answer.status_code == 200
    entries = api.call("get", f"/audit?eq(object.id,{hook.id})&eq(action,webhook.updated)").get_json()
    assert entries[0]["changes"]["jwt_secret"] == {"changed": True}
    return int(entries[0]["id"])


def new_webhook(api: Api, **extra: Any) -> dict[str, Any]:
    product_id = api.vendor.products[0].id
    body = {"label": "Created", "object_class": "fulfillment_request", "type": "event", "http_method": "POST",
            "external_url": api.handler.url + "/new", "product_id": product_id}  # fmt: skip
    return {**body, **extra}


def create_connect_style(a: Api) -> TestResponse:
    body = new_webhook(a, headers={"X-Key": "1"}, data={"a": [1]}, active=True, description="d", jwt_secret="s" * 9)
    body["product"] = {"id": body.pop("product_id")}
    return a.call("post", WEBHOOKS, body)


def repeated_event(a: Api) -> TestResponse:
    hook = a.hook()
    a.event(hook, id="client-1")
    return a.event(hook, id="client-1")


def posted_event(a: Api) -> str:
    """The id of an event that matched a new webhook of the vendor."""
    return a.event(a.hook(), id="client-2", object_id="PR-1").get_json()["id"]


def events_of_a_webhook(a: Api) -> TestResponse:
    hook = a.hook()
    a.event(hook, id="client-3")
    a.event(hook, api_url="https://api.example.com/v1/")
    return a.call("get", f"/events?eq(webhook.id,{hook.id})&gt(created_at,2020-01-01)&ordering(-created_at)&limit=5")


def validation_attempts(a: Api) -> TestResponse:
    """Answered, then failed with a status, then failed without a response (connection refused)."""
    hook = a.validator()
    assert a.validate(hook).status_code == 200
    a.handler.behave("/validate/200", status=500)
    assert a.validate(hook).status_code == 502
    hook.external_url = "http://127.0.0.1:9/refused"
    db.session.commit()
    assert a.validate(hook).status_code == 502
    return a.call("get", a.hook_path(hook, "/attempts?eq(kind,validation)&limit=5"))


def redeliver_when_disabled(a: Api) -> TestResponse:
    hook = a.delivered()
    assert a.call("put", a.hook_path(hook), {"active": False}).status_code == 200
    return a.redeliver(hook)


def with_next_secret(a: Api) -> Webhook:
    hook = a.hook()
    assert a.call("post", a.hook_path(hook, "/next-secret")).status_code == 200
    return hook


def recovery_of(a: Api, hook: Webhook | None = None) -> str:
    """The path of a recovery just started on ``hook`` (a new webhook by default)."""
    hook = hook or a.hook()
    started = a.call("post", a.hook_path(hook, "/recover"), SINCE)
    assert started.status_code == 202
    return a.hook_path(hook, f"/recoveries/{started.get_json()['id']}")


def cancelled_recovery(a: Api) -> str:
    path = recovery_of(a)
    assert a.call("post", f"{path}/cancel").status_code == 200
    return path


def then(*steps: Any) -> Any:
    """The last of ``steps``, all evaluated first: set-up calls, then the request under test."""
    return steps[-1]


# fmt: off
CASES = [
    Case("/events", "post", 202, "matched", lambda a: a.event(a.hook())),
    Case("/events", "post", 202, "matched nothing", lambda a: a.event(a.hook(active=False), id=None, api_url=None)),
    Case("/events", "post", 200, "repeated id", repeated_event),
    Case("/events", "post", 503, "database down", lambda a: a.while_the_database_refuses(
        "post", "/events", {"object_class": "fulfillment_request", "product_id": a.hook().product_id})),
    Case("/events", "post", 400, "malformed JSON", lambda a: a.raw("post", "/events", "{")),
    Case("/events", "post", 400, "bad fields", lambda a: a.call("post", "/events", {"object_class": "x"})),
    Case("/events", "post", 401, "no token", lambda a: a.call("post", "/events", {}, auth=None)),
    Case("/events", "post", 401, "unknown token", lambda a: a.call("post", "/events", {}, auth="Bearer x")),
    Case("/events", "post", 404, "unknown product", lambda a: a.event(a.hook(), product_id="PRD-000-000-000")),
    Case("/events", "post", 404, "another vendor's product", lambda a: a.event(make_webhook(a.other))),
    Case("/events", "post", 413, "too large", lambda a: a.raw("post", "/events", TOO_BIG)),
    Case("/events", "post", 415, "not JSON", lambda a: a.raw("post", "/events", "x", "text/plain")),
    Case("/events", "get", 200, "a webhook's", events_of_a_webhook),
    Case("/events", "get", 200, "empty", lambda a: a.call("get", "/events")),
    Case("/events", "get", 400, "bad RQL", lambda a: a.call("get", "/events?ilike(created_at,x)")),
    Case("/events", "get", 401, "no token", lambda a: a.call("get", "/events", auth=None)),
    Case("/audit", "get", 200, "changes", lambda a: then(audited_change(a), a.call("get", "/audit"))),
    Case("/audit", "get", 200, "a filtered page", lambda a: a.call("get", "/audit?eq(action,token.created)&limit=1")),
    Case("/audit", "get", 400, "bad RQL", lambda a: a.call("get", "/audit?gt(action,x)")),
    Case("/audit", "get", 401, "no token", lambda a: a.call("get", "/audit", auth=None)),
    Case("/audit/{entry_id}", "get", 200, "own", lambda a: a.call("get", f"/audit/{audited_change(a)}")),
    Case("/audit/{entry_id}", "get", 401, "no token", lambda a: a.call("get", "/audit/1", auth=None)),
    Case("/audit/{entry_id}", "get", 404, "unknown", lambda a: a.call("get", "/audit/999999")),
    Case(EVENT_PATH, "get", 200, "own", lambda a: a.call("get", f"/events/{posted_event(a)}")),
    Case(EVENT_PATH, "get", 401, "a forged JWT", lambda a: a.call("get", "/events/EV-1", auth="Bearer e30.e30.x")),
    Case(EVENT_PATH, "get", 404, "unknown", lambda a: a.call("get", "/events/EV-000-000-000-000")),
    Case(WEBHOOKS, "get", 200, "a page", lambda a: then(a.hook(), a.hook(), a.call("get", WEBHOOKS + "?limit=1"))),
    Case(WEBHOOKS, "get", 200, "empty", lambda a: a.call("get", WEBHOOKS)),
    Case(WEBHOOKS, "get", 200, "delivered", lambda a: then(a.delivered(), a.call("get", WEBHOOKS))),
    Case(WEBHOOKS, "get", 200, "RQL", lambda a: then(a.hook(), a.call("get", WEBHOOKS + "?active=1&ordering(-id)"))),
    Case(WEBHOOKS, "get", 200, "search", lambda a: then(a.hook(), a.call("get", WEBHOOKS + "?search=HOOK&limit=5"))),
    Case(WEBHOOKS, "get", 400, "bad RQL", lambda a: a.call("get", WEBHOOKS + "?frobnicate(label,x)")),
    Case(WEBHOOKS, "get", 400, "bad limit", lambda a: a.call("get", WEBHOOKS + "?limit=many")),
    Case(WEBHOOKS, "get", 401, "no token", lambda a: a.call("get", WEBHOOKS, auth=None)),
    Case(WEBHOOKS, "post", 201, "product_id", lambda a: a.call("post", WEBHOOKS, new_webhook(a))),
    Case(WEBHOOKS, "post", 201, "Connect style", create_connect_style),
    Case(WEBHOOKS, "post", 400, "unknown field", lambda a: a.call("post", WEBHOOKS, new_webhook(a, colour="red"))),
    Case(WEBHOOKS, "post", 400, "bad URL", lambda a: a.call("post", WEBHOOKS, new_webhook(a, external_url="ftp://x"))),
    Case(WEBHOOKS, "post", 400, "unknown type", lambda a: a.call("post", WEBHOOKS, new_webhook(a, type="x"))),
    Case(WEBHOOKS, "post", 400, "malformed JSON", lambda a: a.raw("post", WEBHOOKS, "[")),
    Case(WEBHOOKS, "post", 401, "no token", lambda a: a.call("post", WEBHOOKS, new_webhook(a), auth=None)),
    Case(WEBHOOKS, "post", 413, "too large", lambda a: a.raw("post", WEBHOOKS, TOO_BIG)),
    Case(WEBHOOKS, "post", 415, "not JSON", lambda a: a.raw("post", WEBHOOKS, "label=x", "text/plain")),
    Case(WEBHOOK_PATH, "get", 200, "event", lambda a: a.call("get", a.hook_path(a.hook()))),
    Case(WEBHOOK_PATH, "get", 200, "delivered", lambda a: a.call("get", a.hook_path(a.delivered()))),
    Case(WEBHOOK_PATH, "get", 401, "no token", lambda a: a.call("get", a.hook_path(a.hook()), auth=None)),
    Case(WEBHOOK_PATH, "get", 404, "unknown", lambda a: a.call("get", a.hook_path(UNKNOWN))),
    Case(WEBHOOK_PATH, "get", 404, "another account's", lambda a: a.call("get", a.hook_path(make_webhook(a.other)))),
    Case(WEBHOOK_PATH, "put", 200, "partial", lambda a: a.call("put", a.hook_path(a.hook()), {"http_method": "GET"})),
    Case(WEBHOOK_PATH, "put", 200, "disable", lambda a: a.call("put", a.hook_path(a.hook()), {"active": False})),
    Case(WEBHOOK_PATH, "put", 400, "type change", lambda a: a.call("put", a.hook_path(a.hook()), {"type": "x"})),
    Case(WEBHOOK_PATH, "put", 400, "malformed JSON", lambda a: a.raw("put", a.hook_path(a.hook()), "{")),
    Case(WEBHOOK_PATH, "put", 401, "no token", lambda a: a.call("put", a.hook_path(a.hook()), {}, auth=None)),
    Case(WEBHOOK_PATH, "put", 404, "unknown", lambda a: a.call("put", a.hook_path(UNKNOWN), {})),
    Case(WEBHOOK_PATH, "put", 413, "too large", lambda a: a.raw("put", a.hook_path(a.hook()), TOO_BIG)),
    Case(WEBHOOK_PATH, "put", 415, "not JSON", lambda a: a.raw("put", a.hook_path(a.hook()), "x", "text/plain")),
    Case(WEBHOOK_PATH, "delete", 204, "deleted", lambda a: a.call("delete", a.hook_path(a.delivered()))),
    Case(WEBHOOK_PATH, "delete", 401, "no token", lambda a: a.call("delete", a.hook_path(a.hook()), auth=None)),
    Case(WEBHOOK_PATH, "delete", 404, "unknown", lambda a: a.call("delete", a.hook_path(UNKNOWN))),
    Case(TRIGGER, "post", 200, "event webhook", lambda a: a.trigger(a.hook())),
    Case(TRIGGER, "post", 200, "validation", lambda a: a.trigger(a.validator())),
    Case(TRIGGER, "post", 200, "validation fails", lambda a: a.trigger(a.validator(500))),
    Case(TRIGGER, "post", 400, "disabled", lambda a: a.trigger(a.hook(active=False))),
    Case(TRIGGER, "post", 400, "disabled validator", lambda a: a.trigger(a.validator(on=False))),
    Case(TRIGGER, "post", 401, "no token", lambda a: a.trigger(a.hook(), auth=None)),
    Case(TRIGGER, "post", 404, "unknown", lambda a: a.trigger(UNKNOWN)),
    Case(ATTEMPTS, "get", 200, "deliveries", lambda a: a.call("get", a.hook_path(a.delivered(), "/attempts"))),
    Case(ATTEMPTS, "get", 200, "validations", validation_attempts),
    Case(ATTEMPTS, "get", 400, "bad RQL", lambda a: a.call("get", a.hook_path(a.hook(), "/attempts?eq(nope,1)"))),
    Case(ATTEMPTS, "get", 401, "no token", lambda a: a.call("get", a.hook_path(a.hook(), "/attempts"), auth=None)),
    Case(ATTEMPTS, "get", 404, "unknown", lambda a: a.call("get", a.hook_path(UNKNOWN, "/attempts"))),
    Case(REDELIVER, "post", 201, "delivery", lambda a: a.redeliver(a.delivered())),
    Case(REDELIVER, "post", 201, "validation", lambda a: a.redeliver(a.validated())),
    Case(REDELIVER, "post", 400, "disabled", redeliver_when_disabled),
    Case(REDELIVER, "post", 401, "no token", lambda a: a.redeliver(a.delivered(), auth=None)),
    Case(REDELIVER, "post", 404, "unknown webhook", lambda a: a.redeliver(UNKNOWN, 1)),
    Case(REDELIVER, "post", 404, "unknown attempt", lambda a: a.redeliver(a.delivered(), 999_999)),
    Case(NEXT_SECRET, "post", 200, "generated", lambda a: a.call("post", a.hook_path(a.hook(), "/next-secret"))),
    Case(NEXT_SECRET, "post", 200, "given", lambda a: a.call("post", a.hook_path(a.hook(), "/next-secret"),
                                                          {"jwt_secret_next": "my-own-next-secret"})),
    Case(NEXT_SECRET, "post", 400, "too long", lambda a: a.call("post", a.hook_path(a.hook(), "/next-secret"),
                                                             {"jwt_secret_next": "s" * 101})),
    Case(NEXT_SECRET, "post", 401, "no token", lambda a: a.call("post", a.hook_path(a.hook(), "/next-secret"),
                                                             auth=None)),
    Case(NEXT_SECRET, "post", 404, "unknown", lambda a: a.call("post", a.hook_path(UNKNOWN, "/next-secret"))),
    Case(NEXT_SECRET, "post", 413, "too large", lambda a: a.raw("post", a.hook_path(a.hook(), "/next-secret"),
                                                             TOO_BIG)),
    Case(NEXT_SECRET, "post", 415, "not JSON", lambda a: a.raw("post", a.hook_path(a.hook(), "/next-secret"), "x",
                                                            "text/plain")),
    Case(NEXT_SECRET, "delete", 200, "discarded", lambda a: a.call("delete", a.hook_path(with_next_secret(a),
                                                                                      "/next-secret"))),
    Case(NEXT_SECRET, "delete", 401, "no token", lambda a: a.call("delete", a.hook_path(a.hook(), "/next-secret"),
                                                               auth=None)),
    Case(NEXT_SECRET, "delete", 404, "unknown", lambda a: a.call("delete", a.hook_path(UNKNOWN, "/next-secret"))),
    Case(SWITCH_SECRET, "post", 200, "switched", lambda a: a.call("post", a.hook_path(with_next_secret(a),
                                                                                     "/next-secret/switch"))),
    Case(SWITCH_SECRET, "post", 400, "none", lambda a: a.call("post", a.hook_path(a.hook(), "/next-secret/switch"))),
    Case(SWITCH_SECRET, "post", 401, "no token", lambda a: a.call("post", a.hook_path(a.hook(), "/next-secret/switch"),
                                                               auth=None)),
    Case(SWITCH_SECRET, "post", 404, "unknown", lambda a: a.call("post", a.hook_path(UNKNOWN, "/next-secret/switch"))),
    Case("/validations", "post", 200, "accepted", lambda a: a.validate(a.validator())),
    Case("/validations", "post", 200, "handler's 201", lambda a: a.validate(a.validator(201))),
    Case("/validations", "post", 400, "handler objects", lambda a: a.validate(a.validator(400, OBJECTION))),
    Case("/validations", "post", 422, "handler objects", lambda a: a.validate(a.validator(422, OBJECTION))),
    Case("/validations", "post", 400, "bad fields", lambda a: a.validate(a.validator(), request=[])),
    Case("/validations", "post", 401, "no token", lambda a: a.call("post", "/validations", {}, auth=None)),
    Case("/validations", "post", 404, "unknown product", lambda a: a.validate(a.validator(), product_id="PRD-0")),
    Case("/validations", "post", 404, "no webhook", lambda a: a.validate(a.hook(), type="inquiring_validator")),
    Case("/validations", "post", 413, "too large", lambda a: a.raw("post", "/validations", TOO_BIG)),
    Case("/validations", "post", 415, "not JSON", lambda a: a.raw("post", "/validations", "x", "text/plain")),
    Case("/validations", "post", 502, "handler fails", lambda a: a.validate(a.validator(500))),
    Case("/validations", "post", 502, "answer not JSON", lambda a: a.validate(a.validator(200, b"<html>"))),
    Case(RECOVER, "post", 202, "started", lambda a: a.call("post", a.hook_path(a.hook(), "/recover"), SINCE)),
    Case(RECOVER, "post", 400, "bad time", lambda a: a.call("post", a.hook_path(a.hook(), "/recover"), {"since": "x"})),
    Case(RECOVER, "post", 400, "disabled", lambda a: a.call("post", a.hook_path(a.hook(active=False), "/recover"),
                                                              SINCE)),
    Case(RECOVER, "post", 401, "no token", lambda a: a.call("post", a.hook_path(a.hook(), "/recover"), SINCE,
                                                              auth=None)),
    Case(RECOVER, "post", 404, "unknown", lambda a: a.call("post", a.hook_path(UNKNOWN, "/recover"), SINCE)),
    Case(RECOVER, "post", 409, "running", lambda a: then(hook := a.hook(), recovery_of(a, hook),
                                                         a.call("post", a.hook_path(hook, "/recover"), SINCE))),
    Case(RECOVER, "post", 413, "too large", lambda a: a.raw("post", a.hook_path(a.hook(), "/recover"), TOO_BIG)),
    Case(RECOVER, "post", 415, "not JSON", lambda a: a.raw("post", a.hook_path(a.hook(), "/recover"), "x",
                                                           "text/plain")),
    Case(RECOVERY, "get", 200, "running", lambda a: a.call("get", recovery_of(a))),
    Case(RECOVERY, "get", 401, "no token", lambda a: a.call("get", recovery_of(a), auth=None)),
    Case(RECOVERY, "get", 404, "unknown", lambda a: a.call("get", a.hook_path(a.hook(), "/recoveries/999999"))),
    Case(CANCEL, "post", 200, "running", lambda a: a.call("post", f"{recovery_of(a)}/cancel")),
    Case(CANCEL, "post", 401, "no token", lambda a: a.call("post", f"{recovery_of(a)}/cancel", auth=None)),
    Case(CANCEL, "post", 404, "unknown", lambda a: a.call("post", a.hook_path(a.hook(), "/recoveries/9/cancel"))),
    Case(CANCEL, "post", 409, "ended", lambda a: a.call("post", f"{cancelled_recovery(a)}/cancel")),
    Case("/openapi.json", "get", 200, "no token", lambda a: a.call("get", "/openapi.json", auth=None)),
]
# fmt: on

# path, method, the scope it needs, the request (made with a token lacking that scope)
SCOPED: list[tuple[str, str, str, Callable[[Api], TestResponse]]] = [
    (WEBHOOKS, "get", scopes.WEBHOOKS_READ, lambda a: a.call("get", WEBHOOKS)),
    (WEBHOOKS, "post", scopes.WEBHOOKS_WRITE, lambda a: a.call("post", WEBHOOKS, new_webhook(a))),
    (WEBHOOK_PATH, "get", scopes.WEBHOOKS_READ, lambda a: a.call("get", a.hook_path(a.hook()))),
    (WEBHOOK_PATH, "put", scopes.WEBHOOKS_WRITE, lambda a: a.call("put", a.hook_path(a.hook()), {"label": "x"})),
    (WEBHOOK_PATH, "delete", scopes.WEBHOOKS_WRITE, lambda a: a.call("delete", a.hook_path(a.hook()))),
    (TRIGGER, "post", scopes.WEBHOOKS_WRITE, lambda a: a.trigger(a.hook())),
    (ATTEMPTS, "get", scopes.WEBHOOKS_READ, lambda a: a.call("get", a.hook_path(a.hook(), "/attempts"))),
    (REDELIVER, "post", scopes.WEBHOOKS_WRITE, lambda a: a.redeliver(a.hook(), 1)),
    (RECOVER, "post", scopes.WEBHOOKS_WRITE, lambda a: a.call("post", a.hook_path(a.hook(), "/recover"), SINCE)),
    (RECOVERY, "get", scopes.WEBHOOKS_READ, lambda a: a.call("get", a.hook_path(a.hook(), "/recoveries/1"))),
    (CANCEL, "post", scopes.WEBHOOKS_WRITE, lambda a: a.call("post", a.hook_path(a.hook(), "/recoveries/1/cancel"))),
    (NEXT_SECRET, "post", scopes.WEBHOOKS_SECRETS, lambda a: a.call("post", a.hook_path(a.hook(), "/next-secret"))),
    (NEXT_SECRET, "delete", scopes.WEBHOOKS_WRITE, lambda a: a.call("delete", a.hook_path(a.hook(), "/next-secret"))),
    (SWITCH_SECRET, "post", scopes.WEBHOOKS_SECRETS,
     lambda a: a.call("post", a.hook_path(a.hook(), "/next-secret/switch"))),
    ("/events", "post", scopes.EVENTS_WRITE, lambda a: a.event(a.hook())),
    ("/events", "get", scopes.EVENTS_READ, lambda a: a.call("get", "/events")),
    (EVENT_PATH, "get", scopes.EVENTS_READ, lambda a: a.call("get", "/events/EV-000-000-000-000")),
    ("/validations", "post", scopes.VALIDATIONS_WRITE, lambda a: a.validate(a.validator())),
    ("/audit", "get", scopes.AUDIT_READ, lambda a: a.call("get", "/audit")),
    ("/audit/{entry_id}", "get", scopes.AUDIT_READ, lambda a: a.call("get", "/audit/1")),
]  # fmt: skip
CASES += [
    Case(path, method, 403, f"without {scope}", lambda a, scope=scope, request=request: request(a.without(scope)))
    for path, method, scope, request in SCOPED
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_real_responses_conform_to_the_document(api: Api, case: Case):
    response = case.run(api)
    assert response.status_code == case.status, response.get_data(as_text=True)
    assert_conforms(response, case.path, case.method)
    if response.status_code < 300 and api.sent is not None:  # what the server accepted is documented as valid
        assert not request_errors(api.sent, case.path, case.method), api.sent


def test_every_documented_status_is_exercised():
    documented = {
        (path, method, status)
        for path, item in DOC["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
        for status in operation["responses"]
    }
    exercised = {
        (case.path, case.method, documented_status(case.status, DOC["paths"][case.path][case.method]["responses"]))
        for case in CASES
    }
    assert exercised == documented


def test_the_served_document_is_valid_openapi_3_1(client):
    response = client.get(f"{PREFIX}/openapi.json")  # no token, no login session
    assert response.status_code == 200 and response.mimetype == JSON
    served = response.get_json()
    assert served == json.loads(json.dumps(DOC))
    validate(served, cls=OpenAPIV31SpecValidator)
    assert served["openapi"] == "3.1.0"
    assert served["info"]["title"] == "webhookapp" and served["info"]["version"] == webhookapp.__version__
    assert served["servers"] == [{"url": PREFIX}]
    scheme = served["components"]["securitySchemes"]["ApiKey"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "Authorization")


def test_every_route_is_documented_with_its_methods_and_nothing_else(app):
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(PREFIX + "/"):
            path = re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", rule.rule.removeprefix(PREFIX))
            routes.setdefault(path, set()).update(method.lower() for method in rule.methods - {"HEAD", "OPTIONS"})
    documented = {path: set(item) & HTTP_METHODS for path, item in DOC["paths"].items()}
    assert routes == documented


def test_the_enums_are_the_catalogs():
    schemas = DOC["components"]["schemas"]
    webhook = schemas["Webhook"]["properties"]
    assert webhook["object_class"]["enum"] == list(catalog.OBJECT_CLASSES)
    assert sorted(webhook["type"]["enum"]) == sorted({entry.type for entry in catalog.CATALOG})
    assert webhook["status"]["enum"] == list(STATUS_KEYS.values())
    assert webhook["signature_format"]["enum"] == ["jwt", "standard"]
    assert webhook["signature_switch_pending"]["readOnly"] is True
    validation = {entry.type for entry in catalog.CATALOG if entry.kind == catalog.VALIDATION}
    assert set(schemas["ValidationRequest"]["properties"]["type"]["enum"]) == validation


def test_a_webhook_read_with_get_can_be_sent_back_with_every_documented_field(api: Api):
    hook = api.hook(data={"a": 1}, headers={"X-Key": "1"})
    body = api.call("get", api.hook_path(hook)).get_json()
    body |= {"product_id": hook.product_id, "product": {"id": hook.product_id, "name": "ignored"}, "events": 3}
    body["tls_client_key"] = ""  # write-only, so never read; empty keeps the stored key
    assert set(body) == set(DOC["components"]["schemas"]["WebhookUpdate"]["properties"])
    assert not request_errors(body, WEBHOOK_PATH, "put")
    response = api.call("put", api.hook_path(hook), body)
    assert response.status_code == 200
    assert assert_conforms(response, WEBHOOK_PATH, "put")["stats"]["events"] == 0


@pytest.mark.parametrize(
    ("path", "method", "body"),
    [
        (WEBHOOK_PATH, "put", {"colour": "red"}),
        (WEBHOOK_PATH, "put", {"active": "yes"}),
        (WEBHOOK_PATH, "put", {"label": None}),
        (WEBHOOK_PATH, "put", {"headers": {"X-Key": 1}}),
        (WEBHOOK_PATH, "put", {"data": []}),
        (WEBHOOK_PATH, "put", {"http_method": "PUT"}),
        (WEBHOOK_PATH, "put", {"signature_format": "hmac"}),
        (WEBHOOK_PATH, "put", {"object_class": "usage_file", "type": "nope"}),
        (WEBHOOK_PATH, "put", {"product": {"id": "x", "vendor": "y"}}),
        (WEBHOOKS, "post", {"label": "no product", "object_class": "usage_file", "type": "event"}),
        ("/events", "post", {"product_id": "PRD-1"}),
        ("/events", "post", {"object_class": "usage_file", "product_id": "PRD-1", "extra": 1}),
        ("/events", "post", {"object_class": "usage_file", "product_id": "PRD-1", "id": ""}),
        ("/validations", "post", {"type": "event", "product_id": "PRD-1", "request": {}}),
        ("/validations", "post", {"type": "validator", "product_id": "PRD-1"}),
    ],
)
def test_bodies_the_document_refuses_are_refused(api: Api, path: str, method: str, body: dict):
    assert request_errors(body, path, method)
    response = api.call(method, path.replace("{webhook_id}", api.hook().id), body)
    assert response.status_code == 400
    assert_conforms(response, path, method)
