"""``POST /public/v1/validations``: synchronous validation webhooks (DESIGN §8)."""

from __future__ import annotations

from flask import g, jsonify
from werkzeug import Response

from ..services import validations
from .routes import ApiError, blueprint, json_body, token_required


@blueprint.post("/validations")
@token_required
def validate() -> tuple[Response, int]:
    """Answer with the handler's JSON and status; 502 when it fails or times out."""
    try:
        answer = validations.validate(g.api_token, json_body())
    except validations.ValidationRequestError as exc:
        raise ApiError(exc.status, exc.error_code, *exc.errors) from None
    if not answer.answered:
        raise ApiError(502, "VAL_502", answer.error or "The validation handler did not answer.")
    return jsonify(answer.body), answer.status
