"""The attempt page's JWT view: the header and claims of the JWT that was sent, decoded from the
recorded (signature-redacted) Authorization header, never verified."""

from __future__ import annotations

import base64
import html
import json
import re
from datetime import UTC, datetime

import jwt
import pytest

from tests.conftest import make_webhook
from tests.engine import api_token, post_event, run_worker
from webhookapp.core.times import utcnow
from webhookapp.engine import signing
from webhookapp.infra.extensions import db
from webhookapp.models import Attempt

SECRET = "a secret of thirty-two characters!"
NOT_UTF8 = b"\xff\xfe"


def segment(value: object) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_a_signed_jwt_reads_back_as_header_and_claims_once_redacted():
    moment = datetime(2026, 11, 22, 9, 54, 3, tzinfo=UTC)
    token = signing.sign({"webhook_id": "WH-1", "data": {"ü": [1, 2]}}, SECRET, triggered_at=moment,
                         processing_timeout=600)  # fmt: skip
    decoded = signing.decode_logged({"authorization": f"Bearer {signing.redact(token)}"})
    assert decoded.header == {"alg": "HS256", "typ": "JWT"}
    assert decoded.claims == {"webhook_id": "WH-1", "data": {"ü": [1, 2]}, "exp": int(moment.timestamp()) + 600}
    assert decoded.expires_at == datetime(2026, 11, 22, 10, 4, 3, tzinfo=UTC)


@pytest.mark.parametrize(
    "headers",
    [
        None,
        {},
        {"X-Other": "Bearer a.b.c"},
        {"Authorization": "Basic dXNlcjpwdw=="},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer only.two"},
        {"Authorization": "Bearer a.b.c.d"},
        {"Authorization": "Bearer !!!.???.REDACTED"},
        {"Authorization": f"Bearer {segment(b'not json')}.{segment({'a': 1})}.REDACTED"},
        {"Authorization": f"Bearer {segment([1, 2])}.{segment({'a': 1})}.REDACTED"},
        {"Authorization": f"Bearer {segment({'alg': 'HS256'})}.{segment(NOT_UTF8)}.REDACTED"},
        {"Authorization": f"Bearer {segment({'alg': 'HS256'})}.{segment(b'[' * 100_000)}.REDACTED"},
    ],
)
def test_anything_else_is_no_jwt_and_never_an_error(headers):
    assert signing.decode_logged(headers) is None


@pytest.mark.parametrize("exp", [None, "soon", True, 10**30, -(10**30), float("nan")])
def test_an_exp_that_is_not_a_time_has_no_expiry(exp):
    claims = {} if exp is None else {"exp": exp}
    assert signing.DecodedJwt({"alg": "HS256"}, claims).expires_at is None


def test_a_get_attempt_shows_the_claims_the_handler_got(app, client, auth, vendor, handler):
    hook = make_webhook(vendor, label="Get <b>hook</b>", external_url=handler.behave("/get"), http_method="GET")
    post_event(client, api_token(vendor.account), object_class="fulfillment_request", product_id=hook.product_id,
               api_url="https://api.test/v1/")  # fmt: skip
    run_worker(app)
    [sent] = handler.wait_for("/get")
    token = sent.headers["Authorization"].removeprefix("Bearer ")
    claims = jwt.decode(token, hook.jwt_secret, algorithms=["HS256"])
    attempt = db.session.scalars(db.select(Attempt).where(Attempt.webhook_id == hook.id)).one()
    auth.login()
    raw = client.get(f"/webhooks/{hook.id}/attempts/{attempt.id}").get_data(as_text=True)
    assert "Get <b>hook</b>" not in raw and "Get &lt;b&gt;hook&lt;/b&gt;" in raw  # the label is escaped
    text = html.unescape(raw)
    shown_header = re.search(r'<pre class="code" id="jwt-header">(.*?)</pre>', text, re.S).group(1)
    shown_claims = re.search(r'<pre class="code" id="jwt-claims">(.*?)</pre>', text, re.S).group(1)
    assert json.loads(shown_header) == {"typ": "JWT", "alg": "HS256"}
    assert json.loads(shown_claims) == claims and claims["api_url"] == "https://api.test/v1/"
    expires = datetime.fromtimestamp(claims["exp"], UTC)
    assert f'<time datetime="{expires.isoformat()}">{expires:%Y-%m-%d %H:%M:%S} UTC</time>' in text
    assert "A GET request has no body: these claims are all the handler gets." in text
    assert token.split(".")[2] not in text  # the signature is still never shown


def test_an_unreadable_recorded_jwt_is_said_so(client, auth, vendor):
    hook = make_webhook(vendor)
    attempt = Attempt(webhook_id=hook.id, number=1, started_at=utcnow(), duration_ms=3.0, success=False,
                      request_method="POST", request_url="https://h.test/",
                      request_headers={"Authorization": "Bearer <script>.x.REDACTED"})  # fmt: skip
    db.session.add(attempt)
    db.session.commit()
    auth.login()
    response = client.get(f"/webhooks/{hook.id}/attempts/{attempt.id}")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "No readable JWT was recorded for this request." in text and 'id="jwt-claims"' not in text
    assert "<script>.x" not in text
