"""Checking real API responses against the OpenAPI document (``webhookapp.api.openapi``).

``assert_conforms(response, "/notifications/webhooks/{webhook_id}", "get")`` fails unless the
status is documented for that operation, the JSON body validates against the documented schema
($refs to ``#/components/...`` resolved through a ``referencing`` registry, formats checked),
and the documented headers are present and well-formed. Usable from any test.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from werkzeug.test import TestResponse

from webhookapp.api.openapi import document

PREFIX = "/public/v1"
JSON = "application/json"
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
DOC = document()
URI = "urn:webhookapp:openapi"
REGISTRY = Registry().with_resource(URI, Resource(contents=DOC, specification=DRAFT202012))


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def _at(pointer: str) -> Any:
    node: Any = DOC
    for part in pointer.lstrip("/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _follow(pointer: str) -> tuple[dict[str, Any], str]:
    """The object at ``pointer`` with its $refs followed, and the pointer where it really is."""
    node = _at(pointer)
    while "$ref" in node:
        pointer = node["$ref"].removeprefix("#")
        node = _at(pointer)
    return node, pointer


def _schema_errors(instance: Any, schema_pointer: str) -> list[str]:
    validator = Draft202012Validator(
        {"$ref": f"{URI}#{schema_pointer}"}, registry=REGISTRY, format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    return [f"{list(error.absolute_path)}: {error.message}" for error in validator.iter_errors(instance)]


def _operation_pointer(path_template: str, method: str) -> str:
    assert method.lower() in DOC["paths"][path_template], f"{method} {path_template} is not documented"
    return f"/paths/{_escape(path_template)}/{method.lower()}"


def documented_status(status: int, responses: dict[str, Any]) -> str | None:
    """The key of ``responses`` that covers ``status``: the status itself, else its range (``2XX``)."""
    for key in (str(status), f"{status // 100}XX"):
        if key in responses:
            return key
    return None


def assert_conforms(response: TestResponse, path_template: str, method: str) -> Any:
    """The status is documented for the operation, the body validates against its schema, and the
    documented headers (Content-Range, WWW-Authenticate) are there and well-formed."""
    operation = _operation_pointer(path_template, method)
    status = documented_status(response.status_code, _at(operation)["responses"])
    body = response.get_data(as_text=True)
    assert status, f"{method.upper()} {path_template}: undocumented {response.status_code} {body}"
    documented, pointer = _follow(f"{operation}/responses/{status}")
    if "content" not in documented:
        assert body == "", f"{status} is documented without a body"
    else:
        assert response.mimetype == JSON
        errors = _schema_errors(response.get_json(), f"{pointer}/content/{_escape(JSON)}/schema")
        assert not errors, f"{method.upper()} {path_template} {status}: {errors} in {body}"
    for name in documented.get("headers", {}):
        header, header_pointer = _follow(f"{pointer}/headers/{_escape(name)}")
        value = response.headers.get(name)
        assert value is not None or not header.get("required"), f"{name} header missing"
        if value is not None:
            assert not _schema_errors(value, f"{header_pointer}/schema"), f"{name}: {value}"
    return response.get_json(silent=True)


def request_errors(body: Any, path_template: str, method: str) -> list[str]:
    """What is wrong with ``body`` as the operation's documented request body."""
    pointer = f"{_operation_pointer(path_template, method)}/requestBody/content/{_escape(JSON)}/schema"
    return _schema_errors(body, pointer)
