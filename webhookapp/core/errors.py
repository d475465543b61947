"""The one error type of the services and the engine (docs/architecture.md, "Errors").

A service raises :class:`ServiceError` for a request it refuses; the API renders every one as
``{"error_code": ..., "errors": [...]}`` with its status in one place (``api/routes.py``), and
pages show its messages. Views never format errors themselves.
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """A refused request: an HTTP ``status``, a machine-readable ``error_code`` and messages."""

    def __init__(self, status: int, error_code: str, *errors: str):
        super().__init__(" ".join(errors))  # the messages alone, fit for a page or a form
        self.status = status
        self.error_code = error_code
        self.messages = list(errors)
        self.headers: dict[str, str] = {}  # sent with the API's answer

    def as_json(self) -> dict[str, Any]:
        """The API's error body."""
        return {"error_code": self.error_code, "errors": self.messages}


class Unauthenticated(ServiceError):
    """No valid API token (or, where one is accepted, delivery JWT) was presented."""

    def __init__(self, message: str = "A valid API token is required (Authorization: ApiKey <token>).") -> None:
        super().__init__(401, "AUTH_001", message)
        self.headers = {"WWW-Authenticate": 'Bearer realm="webhookapp"'}
