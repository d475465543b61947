"""Connect-style identifiers: ``VA-123-456``, ``PRD-123-456-789``, ``WH-123-456-789``, and the
reference of an attempt (``AT-000-123``)."""

import secrets

ACCOUNT_GROUPS = 2
PRODUCT_GROUPS = 3
WEBHOOK_GROUPS = 3


def new_id(prefix: str, groups: int) -> str:
    """Return ``prefix`` followed by ``groups`` random three-digit groups."""
    digits = f"{secrets.randbelow(1000**groups):0{3 * groups}d}"  # one draw from the system's source
    return "-".join([prefix, *(digits[i : i + 3] for i in range(0, 3 * groups, 3))])


ATTEMPT_PREFIX = "AT"


def attempt_reference(attempt_id: int) -> str:
    """An attempt's id as a person quotes it, in the same style: ``AT-000-123`` for 123, with
    more groups as ids grow (``AT-001-234-567``). The number is the id itself, so it never changes."""
    digits = str(attempt_id).zfill(6)
    digits = digits.zfill(-(-len(digits) // 3) * 3)  # whole groups of three
    return "-".join([ATTEMPT_PREFIX, *(digits[i : i + 3] for i in range(0, len(digits), 3))])
