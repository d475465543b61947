"""The operations blueprint, apart from its routes so that they can import it."""

from flask import Blueprint
from werkzeug import Response

blueprint = Blueprint("ops", __name__)


@blueprint.after_request
def never_cached(response: Response) -> Response:
    """A health answer or a scrape is true only now: no cache may keep it."""
    response.headers["Cache-Control"] = "no-store"
    return response
