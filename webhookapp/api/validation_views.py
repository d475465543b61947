"""``POST /public/v1/validations``: synchronous validation webhooks (docs/architecture.md, "Validations")."""

from __future__ import annotations

from flask import g, jsonify
from werkzeug import Response

from webhookapp.api.routes import blueprint, json_body, token_required
from webhookapp.core import scopes
from webhookapp.core.errors import ServiceError
from webhookapp.engine.direct import validations


@blueprint.post("/validations")
@token_required(scopes.VALIDATIONS_WRITE)
def validate() -> tuple[Response, int]:
    """Answer with the handler's JSON and status; 502 when it fails or times out."""
    answer = validations.validate(g.api_token, json_body())
    if not answer.answered:
        raise ServiceError(502, "VAL_502", answer.error or "The validation handler did not answer.")
    # Any 2xx is "valid": answer 200, as a client expects; 400 and 422 are passed on as they are.
    return jsonify(answer.body), answer.status if answer.status and answer.status >= 300 else 200
