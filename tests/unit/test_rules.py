"""Unit tests for the field rules (``webhookapp.core.rules``)."""

from __future__ import annotations

import json

import pytest

from webhookapp.core import rules
from webhookapp.core.rules import RuleError


def test_rule_error_is_a_value_error():
    """WTForms treats ValueError as a validation failure, so rules double as validators."""
    assert issubclass(RuleError, ValueError)


# --- label (the "Name") -------------------------------------------------------------------------


def test_label_is_stripped():
    assert rules.label("  Orders  ") == "Orders"


@pytest.mark.parametrize("value", ["", "   ", None])
def test_label_is_required(value):
    with pytest.raises(RuleError, match=r"^Name is required\.$"):
        rules.label(value)


def test_label_of_exactly_100_chars_is_accepted():
    assert rules.label("x" * 100) == "x" * 100


def test_label_over_100_chars_is_refused():
    with pytest.raises(RuleError, match=r"^Name must be at most 100 characters \(it has 101\)\.$"):
        rules.label("x" * 101)


def test_label_with_control_characters_is_refused():
    with pytest.raises(RuleError, match="control characters"):
        rules.label("bad\x00name")


# --- external_url (the "Endpoint URL") ------------------------------------------------------------


@pytest.mark.parametrize("url", ["http://handler.example.com/hook", "https://handler.example.com:8443/a?b=c"])
def test_http_and_https_urls_are_accepted(url):
    assert rules.external_url(f"  {url} ") == url


@pytest.mark.parametrize(
    "url", ["ftp://files.example.com/hook", "javascript:alert(1)", "file:///etc/passwd", "handler.example.com/hook"]
)
def test_url_with_another_scheme_is_refused(url):
    with pytest.raises(RuleError, match=r"^Endpoint URL must start with http:// or https://\.$"):
        rules.external_url(url)


def test_url_is_required():
    with pytest.raises(RuleError, match=r"^Endpoint URL is required\.$"):
        rules.external_url("  ")


def test_url_of_exactly_4096_chars_is_accepted():
    url = "https://handler.example.com/" + "a" * (4096 - len("https://handler.example.com/"))
    assert rules.external_url(url) == url


def test_url_over_4096_chars_is_refused():
    url = "https://handler.example.com/" + "a" * 4096
    with pytest.raises(RuleError, match=rf"^Endpoint URL must be at most 4096 characters \(it has {len(url)}\)\.$"):
        rules.external_url(url)


@pytest.mark.parametrize("url", ["https://user:secret@handler.example.com/", "https://user@handler.example.com/"])
def test_url_with_credentials_is_refused(url):
    with pytest.raises(RuleError, match=r"^Endpoint URL may not contain a user name or password; use a header\.$"):
        rules.external_url(url)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://", "Endpoint URL must name a host."),
        ("https://handler.example.com:99999/", "Endpoint URL is not a valid URL."),
        ("https://handler.example.com/a b", "Endpoint URL may not contain spaces or control characters."),
        ("https://handler.example.com/\r\nX: y", "Endpoint URL may not contain spaces or control characters."),
    ],
)
def test_malformed_urls_are_refused(url, message):
    with pytest.raises(RuleError) as error:
        rules.external_url(url)
    assert str(error.value) == message


# --- jwt_secret and http_method ------------------------------------------------------------------


def test_jwt_secret_limits():
    assert rules.jwt_secret("  " + "x" * 100 + " ") == "x" * 100
    with pytest.raises(RuleError, match=r"^JWT secret must be at most 100 characters\.$"):
        rules.jwt_secret("x" * 101)
    with pytest.raises(RuleError, match=r"^JWT secret is required\.$"):
        rules.jwt_secret("")


@pytest.mark.parametrize(("value", "expected"), [("get", "GET"), (" POST ", "POST")])
def test_http_method_is_normalised(value, expected):
    assert rules.http_method(value) == expected


@pytest.mark.parametrize("value", ["PUT", "DELETE", "", None])
def test_http_method_other_than_get_or_post_is_refused(value):
    with pytest.raises(RuleError, match=r"^Method must be GET or POST\.$"):
        rules.http_method(value)


# --- headers -------------------------------------------------------------------------------------


def test_valid_headers_keep_their_order_and_skip_blank_rows():
    pairs = [("X-Api-Key", " abc "), ("", ""), ("X-Trace_Id.1", "tab\tinside")]
    assert rules.headers(pairs) == {"X-Api-Key": "abc", "X-Trace_Id.1": "tab\tinside"}
    assert list(rules.headers(pairs)) == ["X-Api-Key", "X-Trace_Id.1"]


def test_headers_accept_a_dict():
    assert rules.headers({"X-One": "1"}) == {"X-One": "1"}


@pytest.mark.parametrize("name", ["X Api Key", "X-Api:Key", "X-Ünicode", "X-Api-Kéy", "X(Y)"])
def test_invalid_header_names_are_refused(name):
    with pytest.raises(RuleError, match=r"is not a valid header name"):
        rules.headers([(name, "value")])


def test_header_value_without_a_name_is_refused():
    with pytest.raises(RuleError, match=r"^Header name is required\.$"):
        rules.headers([("", "orphan value")])


@pytest.mark.parametrize("value", ["a\rb", "a\nb", "a\r\nInjected: yes", "trailing\n"])
def test_header_values_with_cr_or_lf_are_refused(value):
    with pytest.raises(RuleError, match=r"^Header values may not contain line breaks\.$"):
        rules.headers([("X-Api-Key", value)])


def test_header_value_with_other_control_characters_is_refused():
    with pytest.raises(RuleError, match=r"^Header values may not contain control characters\.$"):
        rules.header_value("a\x00b")


@pytest.mark.parametrize(
    "name",
    [
        "Authorization",
        "authorization",
        "AUTHORIZATION",
        "Host",
        "HOST",
        "Content-Length",
        "content-length",
        "Content-Type",
        "CoNtEnT-tYpE",
    ],
)
def test_forbidden_header_names_are_refused_in_any_case(name):
    with pytest.raises(RuleError) as error:
        rules.headers([(name, "value")])
    assert str(error.value) == f"The {name} header is set by the webhook service and cannot be overridden."


@pytest.mark.parametrize(("first", "second"), [("X-Api-Key", "X-Api-Key"), ("X-Api-Key", "x-api-key")])
def test_duplicate_header_names_are_refused(first, second):
    with pytest.raises(RuleError) as error:
        rules.headers([(first, "1"), (second, "2")])
    assert str(error.value) == f"The {second} header is given twice."


def test_more_than_50_headers_are_refused():
    assert len(rules.headers([(f"X-H{i}", "v") for i in range(50)])) == 50
    with pytest.raises(RuleError, match=r"^At most 50 headers are allowed\.$"):
        rules.headers([(f"X-H{i}", "v") for i in range(51)])


# --- data (the "Additional data") ----------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", None])
def test_empty_data_text_means_an_empty_object(text):
    assert rules.data_text(text) == {}


def test_data_text_parses_a_json_object():
    assert rules.data_text('{"purpose": "demo", "n": [1, 2]}') == {"purpose": "demo", "n": [1, 2]}


@pytest.mark.parametrize("text", ["{", "{'single': 'quotes'}", '{"a": 1,}', "not json"])
def test_invalid_json_is_refused_with_the_position(text):
    with pytest.raises(RuleError, match=r"^Additional data is not valid JSON: .+ \(line \d+, column \d+\)\.$"):
        rules.data_text(text)


@pytest.mark.parametrize("text", ["[1, 2]", "[]", '"text"', "42", "3.5", "true"])
def test_json_that_is_not_an_object_is_refused(text):
    with pytest.raises(RuleError) as error:
        rules.data_text(text)
    assert str(error.value) == 'Additional data must be a JSON object, such as {"purpose": "demo"}.'


@pytest.mark.parametrize("value", [[1], "text", 7])
def test_data_object_refuses_parsed_values_that_are_not_objects(value):
    with pytest.raises(RuleError, match="must be a JSON object"):
        rules.data_object(value)


def test_data_over_64_kib_is_refused():
    text = json.dumps({"k": "a" * (64 * 1024)})
    with pytest.raises(RuleError, match=r"^Additional data must be at most 64 KiB\.$"):
        rules.data_text(text)
    with pytest.raises(RuleError, match=r"^Additional data must be at most 64 KiB\.$"):
        rules.data_object({"k": "a" * (64 * 1024)})


def test_data_just_under_64_kib_is_accepted():
    value = {"k": "a" * (64 * 1024 - 20)}
    assert rules.data_text(json.dumps(value, separators=(",", ":"))) == value


def test_non_ascii_data_under_64_kib_is_accepted():
    """Additional data is limited to 64 KiB of text; Cyrillic takes 2 bytes a letter in UTF-8, not 6."""
    text = json.dumps({"greeting": "я" * 20_000}, ensure_ascii=False)
    assert len(text.encode()) < 64 * 1024
    assert rules.data_text(text) == {"greeting": "я" * 20_000}


def test_deeply_nested_additional_data_is_refused_not_a_crash():
    with pytest.raises(rules.RuleError, match="nested too deeply"):
        rules.data_text("[" * 20_000 + "]" * 20_000)
