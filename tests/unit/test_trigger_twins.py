"""The PostgreSQL twins of trigger transitions agree with the portable versions.

``engine/triggers/`` owns every transition; the fast paths on PostgreSQL run two of them inside
statements of their own (``engine/triggers/postgresql.py``): counting events (the event API) and
recording successes. Each scenario below is played twice on the same database, once through the
portable code and once through the fast path, on webhooks set up alike, and the resulting trigger
state and statistics must be the same (docs/architecture.md, "PostgreSQL fast paths").

Four things are written twice, once in Python and once in the raw SQL, and checked here: which
webhooks an event matches (:func:`.triggers.count_event` and the event statement's ``matched``
CTE), which tokens may post events (:func:`.tenancy.authorize` and ``USABLE_TOKEN_SQL``), how
counting makes a trigger due, and when a success releases a lease (the claim must still
hold it).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from tests.conftest import Tenant, make_tenant, make_webhook
from webhookapp.core import scopes
from webhookapp.core.errors import ServiceError
from webhookapp.core.times import utcnow
from webhookapp.engine import delivery, outcomes, triggers
from webhookapp.engine.ingest import postgresql as ingest_postgresql
from webhookapp.engine.types import AttemptResult, Finished
from webhookapp.infra.extensions import db
from webhookapp.models import ApiToken, Attempt, Webhook, tenancy
from webhookapp.services import tokens

pytestmark = pytest.mark.postgresql  # the twins are PostgreSQL's

FUTURE = timedelta(minutes=5)
STATE = (
    "active", "out_of_order", "events_count", "last_event_at", "next_trigger_at", "trigger_attempts",
    "last_event_api_url", "trigger_traceparent", "lease_id", "lease_expires_at", "lease_attempt", "triggers_count",
    "success_count", "failure_count", "failures_since_last_success", "last_success_at", "trigger_message_id",
    "trigger_serial",
)  # fmt: skip

# label → the webhook's state before the event (besides active event webhooks of the product)
COUNT_SCENARIOS: dict[str, dict[str, Any]] = {
    "idle": {},
    "retry pending": {"next_trigger_at": FUTURE, "trigger_attempts": 2},
    "out of order, pending": {"out_of_order": True, "next_trigger_at": FUTURE},
    "out of order, idle": {"out_of_order": True},
    "in flight": {"lease_id": "lease-1", "lease_expires_at": FUTURE, "lease_attempt": 1},
    "disabled": {"active": False},
}


def set_up(kind: str, label: str, scenarios: dict[str, dict[str, Any]]) -> tuple[Any, dict[str, str]]:
    """A vendor of its own with one product and a webhook per scenario; returns it and label → id."""
    tenant = make_tenant("vendor", f"{kind} {label}", f"{kind}-{label}@twins.test".replace(" ", "-"), [("P", False)])
    now = utcnow()
    ids = {}
    for name, state in scenarios.items():
        hook = make_webhook(tenant, label=name)
        values = {key: now + value if isinstance(value, timedelta) else value for key, value in state.items()}
        if values:
            db.session.execute(update(Webhook).where(Webhook.id == hook.id).values(values))
        ids[name] = hook.id
    db.session.commit()
    return tenant, ids


def state(ids: dict[str, str], since: datetime, presets: set[datetime]) -> dict[str, tuple]:
    """Each webhook's trigger state and statistics; times as "preset", "now" (since ``since``) or None."""
    db.session.expire_all()

    def label(value: Any) -> Any:
        if isinstance(value, str) and value.startswith("msg_"):
            return "a message id"  # named after its webhook: the same on both paths, not equal
        if not isinstance(value, datetime):
            return value
        if value in presets:
            return "preset"
        assert value >= since.replace(microsecond=0) - timedelta(seconds=1), value
        return "now"

    return {
        name: tuple(label(getattr(db.session.get(Webhook, webhook_id), column)) for column in STATE)
        for name, webhook_id in ids.items()
    }


def presets_of(ids: dict[str, str]) -> set[datetime]:
    rows = db.session.scalars(db.select(Webhook).where(Webhook.id.in_(ids.values())))
    return {getattr(row, column) for row in rows for column in STATE if isinstance(getattr(row, column), datetime)}


def events_for(product_id: str, count: int) -> list[dict[str, Any]]:
    return [
        {"object_class": "fulfillment_request", "product_id": product_id, "api_url": f"https://api.test/{n}",
         "traceparent": f"00-{n + 1:032x}-{n + 1:016x}-01"}
        for n in range(count)
    ]


def count_portably(token, bodies: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    matched, fresh = [], []
    for body in bodies:
        now = utcnow()
        matched, made_due = triggers.count_event(
            product_id=body["product_id"], object_class=body["object_class"],
            account_id=None if token.is_platform else token.account_id, now=now, api_url=body["api_url"],
            traceparent=body["traceparent"],
        )  # fmt: skip
        fresh += made_due
        db.session.commit()
    return matched, sorted(fresh)


def run_on_postgresql(token, bodies: list[dict[str, Any]]) -> list[ingest_postgresql.Outcome]:
    """One event: the single statement; more: the group statement, as group commit sends them."""
    waiting = [
        ingest_postgresql._Waiting(ingest_postgresql.parameters(token.token_hash, body, event_id=f"EV-TWIN-{n}",
                                                                now=utcnow(), traceparent=body["traceparent"]),
                                   wake=False)
        for n, body in enumerate(bodies)
    ]  # fmt: skip
    return ingest_postgresql._run(db.engine, waiting)


def count_on_postgresql(token, bodies: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    results = run_on_postgresql(token, bodies)
    return sorted(results[-1].webhook_ids or []), sorted({i for result in results for i in result.fresh_ids})


@pytest.mark.parametrize("events", [1, 3], ids=["one event", "a group of three"])
def test_counting_events_agrees(app, postgresql, events):
    outcomes_by_path = {}
    for path, count in (("portable", count_portably), ("postgresql", count_on_postgresql)):
        tenant, ids = set_up(path, f"count {events}", COUNT_SCENARIOS)
        token, _ = tokens.create_token(tenant.account, "twins")
        presets = presets_of(ids)
        since = utcnow()
        matched, fresh = count(token, events_for(tenant.products[0].id, events))
        names = {webhook_id: name for name, webhook_id in ids.items()}
        outcomes_by_path[path] = (
            sorted(names[i] for i in matched), sorted(names[i] for i in fresh), state(ids, since, presets)
        )
    assert outcomes_by_path["postgresql"] == outcomes_by_path["portable"]
    matched, fresh, _ = outcomes_by_path["portable"]
    assert "disabled" not in matched and fresh == ["idle", "in flight"]  # the scenarios do what they say


# label → whose webhook it is (of the world's vendor, distributor), its type and state. The event is
# a fulfillment_request of the vendor's first product.
MATCH_SCENARIOS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "vendor's": ("vendor", {}, {}),
    "vendor's, disabled": ("vendor", {}, {"active": False}),
    "vendor's, out of order": ("vendor", {}, {"out_of_order": True}),
    "vendor's, retry pending": ("vendor", {}, {"next_trigger_at": FUTURE, "trigger_attempts": 1}),
    "vendor's, other product": ("vendor", {"product": 1}, {}),
    "vendor's, other object class": ("vendor", {"type_key": "tier_config_request.event"}, {}),
    "vendor's, validation": ("vendor", {"type_key": "fulfillment_request.validator"}, {}),
    "vendor's, inquiring validation": ("vendor", {"type_key": "fulfillment_request.inquiring_validator"}, {}),
    "distributor's": ("distributor", {}, {}),
    "distributor's, disabled": ("distributor", {}, {"active": False}),
    "distributor's, other product": ("distributor", {"product": 1}, {}),
}
TOKENS = ("vendor", "distributor", "vendor platform", "other vendor")
# what each token's event matches and makes due, and whether the event API takes it at all
VENDORS = ["vendor's", "vendor's, out of order", "vendor's, retry pending"]
DISTRIBUTORS = ["distributor's"]
EXPECTED_MATCHES = {
    "vendor": (True, VENDORS, ["vendor's"]),
    "distributor": (True, DISTRIBUTORS, DISTRIBUTORS),
    "vendor platform": (True, sorted(VENDORS + DISTRIBUTORS), sorted(["vendor's", *DISTRIBUTORS])),
    "other vendor": (False, [], []),
}


def set_up_world(path: str) -> tuple[dict[str, Tenant], str, dict[str, str]]:
    """A vendor with two products, a distributor and another vendor of their own, and a webhook per
    matching scenario on the vendor's products; returns them, the event's product and label → id."""
    tenants = {
        "vendor": make_tenant("vendor", f"{path} vendor", f"{path}-vendor@twins.test", [("P", False), ("Q", False)]),
        "distributor": make_tenant("distributor", f"{path} distributor", f"{path}-distributor@twins.test"),
        "other vendor": make_tenant("vendor", f"{path} other", f"{path}-other@twins.test", [("O", False)]),
    }
    products = tenants["vendor"].products
    now = utcnow()
    ids = {}
    for name, (owner, fields, state_before) in MATCH_SCENARIOS.items():
        product = products[fields.get("product", 0)]
        type_key = fields.get("type_key", "fulfillment_request.event")
        hook = make_webhook(tenants[owner], label=name, product_id=product.id, type_key=type_key)
        values = {key: now + value if isinstance(value, timedelta) else value for key, value in state_before.items()}
        if values:
            db.session.execute(update(Webhook).where(Webhook.id == hook.id).values(values))
        ids[name] = hook.id
    db.session.commit()
    return tenants, products[0].id, ids


def token_of(tenants: dict[str, Tenant], kind: str) -> ApiToken:
    owner = kind.removesuffix(" platform")
    token, _ = tokens.create_token(tenants[owner].account, "twins", platform=owner != kind)
    return token


def product_found_portably(token: ApiToken, product_id: str, matched: list[str]) -> bool:
    """Whether the event API takes the event (else: 404), as :func:`.ingest.ingest_portable` decides."""
    return bool(matched) or bool(tenancy.usable_product(token.account, product_id, platform=token.is_platform))


@pytest.mark.parametrize("kind", TOKENS)
def test_matching_webhooks_agrees(app, postgresql, kind):
    """The event statement's ``matched`` CTE selects the webhooks :func:`.triggers.count_event` does."""
    outcomes_by_path = {}
    for path in ("portable", "postgresql"):
        tenants, product_id, ids = set_up_world(path)
        token = token_of(tenants, kind)
        presets = presets_of(ids)
        since = utcnow()
        bodies = events_for(product_id, 1)
        if path == "portable":
            matched, fresh = count_portably(token, bodies)
            found = product_found_portably(token, product_id, matched)
        else:
            [outcome] = run_on_postgresql(token, bodies)
            matched, fresh, found = outcome.webhook_ids or [], outcome.fresh_ids, outcome.found
        names = {webhook_id: name for name, webhook_id in ids.items()}
        outcomes_by_path[path] = (
            found,
            sorted(names[i] for i in matched),
            sorted(names[i] for i in fresh),
            state(ids, since, presets),
        )
    assert outcomes_by_path["postgresql"] == outcomes_by_path["portable"]
    found, matched, fresh, _ = outcomes_by_path["portable"]
    assert (found, matched, fresh) == EXPECTED_MATCHES[kind]  # the scenarios do what they say


SUCCESS_SCENARIOS: dict[str, dict[str, Any]] = {
    "first success": {},
    "after failures": {"failures_since_last_success": 3, "failure_count": 3, "triggers_count": 3},
    "lease handed on": {},
    "deleted meanwhile": {},
}


def success(started_at: datetime) -> AttemptResult:
    return AttemptResult(started_at=started_at, duration_ms=8.25, success=True, status=204, body="ok")


def test_recording_successes_agrees(app, postgresql):
    outcomes_by_path = {}
    paths = (("portable", outcomes.complete_successes_portable), ("postgresql", outcomes.complete_successes))
    for path, record in paths:
        _tenant, ids = set_up(path, "succeed", SUCCESS_SCENARIOS)
        for webhook_id in ids.values():
            triggers.make_due_now(db.session.get(Webhook, webhook_id), count_event=True)
        db.session.commit()
        claims = triggers.claim_due(10, list(ids.values()))
        started = utcnow().replace(microsecond=0)
        items = [Finished(claim, delivery.build_call(claim), success(started)) for claim in claims]
        db.session.execute(update(Webhook).where(Webhook.id == ids["lease handed on"]).values(lease_id="another"))
        db.session.delete(db.session.get(Webhook, ids.pop("deleted meanwhile")))
        db.session.commit()
        presets = presets_of(ids)
        record(items)
        rows = state(ids, started, presets)
        infos = {name: db.session.get(Webhook, webhook_id).last_success_info for name, webhook_id in ids.items()}
        attempts = {
            name: db.session.scalars(db.select(Attempt).where(Attempt.webhook_id == webhook_id)).one()
            for name, webhook_id in ids.items()
        }
        for name, info in infos.items():
            assert info.pop("attempt_id") == attempts[name].id
        logged = {
            name: {column: getattr(attempt, column) for column in ("kind", "number", "success", "response_status",
                                                                   "response_body", "duration_ms", "request_url")}
            for name, attempt in attempts.items()
        }  # fmt: skip
        outcomes_by_path[path] = (rows, infos, logged)
    assert outcomes_by_path["postgresql"] == outcomes_by_path["portable"]
    rows = outcomes_by_path["portable"][0]
    lease_id = STATE.index("lease_id")
    assert rows["lease handed on"][lease_id] == "another" and rows["first success"][lease_id] is None
    message = STATE.index("trigger_message_id")  # a success ends the trigger's message, if the lease was its
    assert rows["lease handed on"][message] == "a message id" and rows["first success"][message] is None


# label → the token's scopes and state; the event statement must accept exactly those tenancy.authorize accepts
TOKEN_SCENARIOS: dict[str, dict[str, Any]] = {
    "every scope": {},
    "events:write alone": {"scopes": "events:write"},
    "without events:write": {"scopes": " ".join(s for s in scopes.ALL_SCOPES if s != scopes.EVENTS_WRITE)},
    "a scope that contains it": {"scopes": "events:writes webhooks:read"},  # no such scope: no prefix match
    "expires later": {"expires_at": FUTURE},
    "expired": {"expires_at": -FUTURE},
    "revoked": {"revoked_at": -FUTURE},
}


@pytest.mark.parametrize("label", TOKEN_SCENARIOS)
def test_token_checks_agree(app, postgresql, label):
    """The event statement's ``token`` CTE (:data:`.tenancy.USABLE_TOKEN_SQL`) accepts the tokens
    :func:`.tenancy.authorize` accepts for ``events:write``, and notes their use alike."""
    accepted = {}
    for path in ("portable", "postgresql"):
        tenant, _ids = set_up(path, f"token {label}", {"idle": {}})
        token, plain = tokens.create_token(tenant.account, "twins")
        now = utcnow()
        values = {key: now + value if isinstance(value, timedelta) else value
                  for key, value in TOKEN_SCENARIOS[label].items()}  # fmt: skip
        if values:
            db.session.execute(update(ApiToken).where(ApiToken.id == token.id).values(values))
            db.session.commit()
        if path == "portable":
            try:
                tenancy.authorize(f"ApiKey {plain}", scopes.EVENTS_WRITE, "198.51.100.1")
                accepted[path] = True
            except ServiceError:
                accepted[path] = False
        else:
            waiting = ingest_postgresql._Waiting(ingest_postgresql.parameters(
                token.token_hash, events_for(tenant.products[0].id, 1)[0], event_id="EV-TWIN-TOKEN", now=utcnow(),
                address="198.51.100.1"), wake=False)  # fmt: skip
            [outcome] = ingest_postgresql._run(db.engine, [waiting])
            accepted[path] = outcome.account_id is not None
        db.session.expire_all()
        used = db.session.get(ApiToken, token.id)
        assert (used.last_used_address == "198.51.100.1") is accepted[path], path
    assert accepted["postgresql"] == accepted["portable"]
    assert accepted["portable"] is (label in ("every scope", "events:write alone", "expires later"))
