"""The OpenAPI paths and schemas of Recover (:mod:`.recovery_views`, :mod:`.openapi`)."""

from __future__ import annotations

from typing import Any

from webhookapp.api.openapi_parts import content, error, json_errors, operation, parameter, shared
from webhookapp.api.openapi_schemas import DATE_TIME, closed, nullable, ref
from webhookapp.core import scopes
from webhookapp.models.recovery import STATES

WEBHOOK_PATH = "/notifications/webhooks/{webhook_id}"
RECOVERY_PATH = f"{WEBHOOK_PATH}/recoveries/{{recovery_id}}"
READ = (scopes.WEBHOOKS_READ,)
WRITE = (scopes.WEBHOOKS_WRITE,)


def recovery_parameter() -> dict[str, Any]:
    return {
        "name": "recovery_id",
        "in": "path",
        "required": True,
        "description": "A recovery of this webhook, as POST .../recover answered.",
        "schema": {"type": "integer", "minimum": 1, "examples": [7]},
    }


def recovery_schemas() -> dict[str, Any]:
    return {
        "RecoverRequest": closed(
            {
                "since": {**DATE_TIME, "description": "The range's start (included); ISO 8601, UTC if no zone."},
                "until": {**DATE_TIME, "description": "The range's end (excluded); now if left out, and never later."},
            },
            required=["since"],
        ),
        "Recovery": closed(
            {
                "id": {"type": "integer"},
                "webhook": closed({"id": {"type": "string"}}),
                "since": DATE_TIME,
                "until": DATE_TIME,
                "state": {"type": "string", "enum": list(STATES)},
                "total": {"type": "integer", "minimum": 0,
                          "description": "The failed triggers the range held when it started."},
                "sent": {"type": "integer", "minimum": 0, "description": "Requests sent so far."},
                "succeeded": {"type": "integer", "minimum": 0, "description": "Of those, the handler's 2xx."},
                "note": {"type": ["string", "null"], "description": "Why it stopped early, if it did by itself."},
                "created_at": DATE_TIME,
                "finished_at": nullable(DATE_TIME),
            }
        ),
    }  # fmt: skip


def recovery_paths() -> dict[str, Any]:
    recovery = {"description": "The recovery.", "content": content(ref("Recovery"))}
    not_found = error("No such webhook in the token's account, or no such recovery of it.", "WH_404", "REC_404")
    return {
        f"{WEBHOOK_PATH}/recover": {
            "parameters": [parameter("webhook_id")],
            "post": operation(
                "recoverWebhook",
                "webhooks",
                "Recover failed deliveries of a time range",
                {
                    "202": {"description": "Started: the workers send the range in the background.",
                            "content": content(ref("Recovery"))},
                    **json_errors(),
                    "404": shared("WebhookNotFound"),
                    "409": error("A recovery of this webhook is running already.", "REC_409"),
                },
                body="RecoverRequest",
                description="Every trigger of the webhook whose final attempt failed and started in [since, until) is "
                "sent once more, as Redeliver sends an attempt: with the webhook's current HTTP settings and a freshly "
                "signed JWT, counting no event and leaving the statistics and the retry schedule alone. Oldest first, "
                "at most WEBHOOK_RECOVER_RATE requests per second, by the workers. Each request is recorded as an "
                "attempt whose redelivery_of is the failed attempt. Follow the progress with GET .../recoveries/{id}. "
                "A 400 also answers an empty range, a disabled webhook and a validation webhook.",
                needs=WRITE,
            ),
        },
        RECOVERY_PATH: {
            "parameters": [parameter("webhook_id"), recovery_parameter()],
            "get": operation(
                "getRecovery", "webhooks", "Read a recovery's progress", {"200": recovery, "404": not_found},
                needs=READ,
            ),
        },
        f"{RECOVERY_PATH}/cancel": {
            "parameters": [parameter("webhook_id"), recovery_parameter()],
            "post": operation(
                "cancelRecovery",
                "webhooks",
                "Cancel a recovery",
                {"200": recovery, "404": not_found, "409": error("The recovery has ended already.", "REC_409")},
                description="Stops a running recovery: a request in flight still ends and is recorded; no other "
                "starts. Takes no body.",
                needs=WRITE,
            ),
        },
    }  # fmt: skip
