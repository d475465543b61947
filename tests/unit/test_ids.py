"""Identifiers: an attempt's reference is its id, quotable, in the style of the other ids."""

from __future__ import annotations

import re

import pytest

from webhookapp.core import ids


@pytest.mark.parametrize(
    ("attempt_id", "reference"),
    [
        (1, "AT-000-001"),
        (123, "AT-000-123"),
        (999_999, "AT-999-999"),
        (1_000_000, "AT-001-000-000"),
        (1_234_567_890, "AT-001-234-567-890"),
    ],
)
def test_an_attempt_reference_is_its_id_in_groups_of_three(attempt_id, reference):
    assert ids.attempt_reference(attempt_id) == reference
    assert int(reference.removeprefix("AT-").replace("-", "")) == attempt_id  # read back without a table


def test_other_ids_keep_their_form():
    assert re.fullmatch(r"WH-\d{3}-\d{3}-\d{3}", ids.new_id("WH", ids.WEBHOOK_GROUPS))
