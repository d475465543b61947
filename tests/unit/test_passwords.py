"""The password policy (docs/security.md, "Passwords") and the one-time use of two-factor codes."""

from __future__ import annotations

import time

import pyotp
import pytest

from webhookapp.core import passwords
from webhookapp.services import two_factor


@pytest.mark.parametrize(
    "password",
    [
        "correct horse battery",
        "webhookapp-demo",
        "plum orchard telescope 42",
        "the quiet lighthouse keeper counts forty seven herons " * 20,  # longer than zxcvbn takes
    ],
)
def test_strong_passwords_pass(password):
    assert passwords.problems(password) == []


@pytest.mark.parametrize(
    ("password", "inputs", "said"),
    [
        ("short", (), "at least 12 characters (this one has 5)"),
        ("password1234", (), "This is a very common password."),
        ("qwertyuiop123", (), "too easy to guess"),
        ("aaaaaaaaaaaaaaaa", (), "too easy to guess"),
        ("alice@acme.test1", ("alice@acme.test",), "too easy to guess"),  # the user's own email
    ],
)
def test_weak_passwords_are_refused_with_advice(password, inputs, said):
    assert said in " ".join(passwords.problems(password, inputs))


def test_a_code_is_accepted_once_even_by_racing_requests(app, vendor):
    seed = pyotp.random_base32()
    codes = two_factor.confirm_enrolment(vendor.user, seed, pyotp.TOTP(seed).now())
    assert codes is not None and len(set(codes)) == 10
    following = pyotp.TOTP(seed).at(time.time() + 30)
    assert two_factor.check_code(vendor.user, following)
    assert not two_factor.check_code(vendor.user, following)  # the same step again
    assert two_factor.check_code(vendor.user, codes[3])
    assert not two_factor.check_code(vendor.user, codes[3])
    assert two_factor.recovery_codes_left(vendor.user) == 9
