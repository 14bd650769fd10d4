"""Unified Social Credit Code (统一社会信用代码), GB 32100-2015.

18 characters from a 31-character set (digits and capitals without I, O, Z, S, V); the last is a
check character over the first 17 with weights 3^(i-1) mod 31. No I/O here.
"""

from __future__ import annotations

import random

from sha3 import keccak_256

from chain.errors import InputError

CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
# The shape of a USCC, for schemas (OpenAPI): 18 characters of the charset. The 18th is a check
# character, which a pattern cannot express: `validate` checks it and says which it should be.
PATTERN = "^[0-9A-HJ-NP-RTUWXY]{18}$"
_VALUE = {c: i for i, c in enumerate(CHARSET)}
WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
LENGTH = 18
# Domain tag for the on-chain key, so a USCC hash from another system never collides with ours.
_CHAIN_KEY_DOMAIN = b"qiyema.uscc.v1:"


class UsccError(InputError):
    """Why a string is not a valid USCC; `code` is a stable machine-readable reason, `position`
    and `expected` point at the wrong character when there is one."""

    def __init__(self, code: str, message: str, position: int | None = None, expected: str | None = None):
        super().__init__(code, message, position=position, expected=expected)
        self.position = position
        self.expected = expected


def check_character(first17: str) -> str:
    """The GB 32100-2015 check character for the first 17 characters."""
    total = sum(_VALUE[c] * w for c, w in zip(first17, WEIGHTS))
    return CHARSET[(31 - total % 31) % 31]


def validate(uscc: str) -> str:
    """Return the normalised USCC (upper case, stripped) or raise `UsccError` with the reason."""
    if not isinstance(uscc, str):
        raise UsccError("uscc_not_text", "统一社会信用代码必须是文本 / the USCC must be text")
    code = uscc.strip().upper()
    if len(code) != LENGTH:
        raise UsccError(
            "uscc_length",
            f"统一社会信用代码应为18位，实际{len(code)}位 / a USCC has 18 characters, this has {len(code)}",
        )
    for i, c in enumerate(code, start=1):
        if c not in _VALUE:
            raise UsccError(
                "uscc_illegal_character",
                f"第{i}位字符“{c}”不合法（不得使用 I、O、Z、S、V） / illegal character {c!r} at position {i}",
                position=i,
            )
    expected = check_character(code[:17])
    if code[17] != expected:
        raise UsccError(
            "uscc_check_character",
            f"校验码错误：第18位应为“{expected}”，实际为“{code[17]}” / bad check character: expected {expected}, got {code[17]}",
            position=18,
            expected=expected,
        )
    return code


def is_valid(uscc: str) -> bool:
    try:
        validate(uscc)
    except UsccError:
        return False
    return True


def chain_key(uscc: str) -> bytes:
    """The 32-byte key an enterprise has on chain: a domain-tagged keccak256 of its USCC."""
    # pysha3: eth_utils' keccak (pycryptodome) costs several times as much, on every scan
    return keccak_256(_CHAIN_KEY_DOMAIN + validate(uscc).encode("ascii")).digest()


def _organisation_code(rng: random.Random) -> str:
    # GB 11714 organisation code: 8 characters and its own check character.
    body = "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(8))
    weights = (3, 7, 9, 10, 5, 8, 4, 2)
    total = sum((int(c) if c.isdigit() else ord(c) - 55) * w for c, w in zip(body, weights))
    check = 11 - total % 11
    return body + {10: "X", 11: "0"}.get(check, str(check))


_AREAS = ("110105", "310110", "330106", "350100", "440101", "442000", "510104", "320102")


def generate(rng: random.Random | None = None, area: str | None = None) -> str:
    """A random valid USCC of a company registered by market regulation (prefix 91), in `area`
    (a 6-digit administrative division code, e.g. 310110 杨浦区) or a random one."""
    rng = rng or random.Random()
    first17 = "91" + (area or rng.choice(_AREAS)) + _organisation_code(rng)
    return first17 + check_character(first17)
