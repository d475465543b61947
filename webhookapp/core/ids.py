"""Connect-style identifiers: ``VA-123-456``, ``PRD-123-456-789``, ``WH-123-456-789``."""

import secrets

ACCOUNT_GROUPS = 2
PRODUCT_GROUPS = 3
WEBHOOK_GROUPS = 3


def new_id(prefix: str, groups: int) -> str:
    """Return ``prefix`` followed by ``groups`` random three-digit groups."""
    digits = f"{secrets.randbelow(1000**groups):0{3 * groups}d}"  # one draw from the system's source
    return "-".join([prefix, *(digits[i : i + 3] for i in range(0, 3 * groups, 3))])
