import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codes import uscc

# The standard's own worked example, and codes of well-known companies as published.
VALID = ["91350100M000100Y43", "91110000600037341L", "91440300708461136T", "911100001000079554"]


@pytest.mark.parametrize("code", VALID)
def test_published_codes_are_valid(code):
    assert uscc.validate(code) == code


def test_normalises_case_and_whitespace():
    assert uscc.validate(" 91350100m000100y43\n") == "91350100M000100Y43"


@pytest.mark.parametrize(
    "code, reason, position, expected",
    [
        ("9135010", "uscc_length", None, None),
        ("91350100M000100Y431", "uscc_length", None, None),
        ("91350100M0001O0Y43", "uscc_illegal_character", 14, None),
        ("I1350100M000100Y43", "uscc_illegal_character", 1, None),
        ("91350100M000100Y4Z", "uscc_illegal_character", 18, None),
        ("91350100M000100Y44", "uscc_check_character", 18, "3"),
    ],
)
def test_rejections_say_why(code, reason, position, expected):
    with pytest.raises(uscc.UsccError) as info:
        uscc.validate(code)
    assert info.value.code == reason
    assert info.value.position == position
    assert info.value.expected == expected
    assert info.value.message  # a clerk-readable sentence


def test_check_character_message_names_the_expected_character():
    with pytest.raises(uscc.UsccError, match="expected 3"):
        uscc.validate("91350100M000100Y44")


valid_codes = st.builds(lambda seed: uscc.generate(random.Random(seed)), st.integers(0, 2**32))


@settings(max_examples=300, deadline=None)
@given(valid_codes)
def test_generated_codes_are_valid(code):
    assert uscc.is_valid(code)


@settings(max_examples=300, deadline=None)
@given(valid_codes, st.integers(0, 16), st.sampled_from(uscc.CHARSET))
def test_any_single_substitution_is_caught(code, position, char):
    # Weights are non-zero modulo the prime 31, so every single change in the body is caught.
    if code[position] == char:
        return
    changed = code[:position] + char + code[position + 1:]
    assert not uscc.is_valid(changed)


@settings(max_examples=300, deadline=None)
@given(valid_codes, st.integers(0, 15))
def test_any_adjacent_swap_is_caught(code, position):
    # Neighbouring weights differ (3^i - 3^(i+1) = -2*3^i is non-zero mod 31), so a swap of two
    # different adjacent body characters always changes the check character.
    a, b = code[position], code[position + 1]
    if a == b:
        return
    swapped = code[:position] + b + a + code[position + 2:]
    assert not uscc.is_valid(swapped)


def test_chain_key_is_domain_separated_and_never_the_plain_code():
    key = uscc.chain_key("91350100M000100Y43")
    assert len(key) == 32
    assert b"91350100M000100Y43" not in key
    assert key == uscc.chain_key("91350100m000100y43")
    assert key != uscc.chain_key("91110000600037341L")
