"""Value formats: what a column's ``info={"format": ...}`` may name, and the registry.

A format is a Python expression over the value with the names it uses. The engine's
own (``email``, ``country``) are here; a domain adds its own with
:func:`register_value_format`. This module imports no SQLAlchemy: the compiled path's
plan carries a column's format to the parse workers, which import what its names come
from, and a format whose functions live in a module free of SQLAlchemy (as these and
the Spotify domain's do) keeps the workers free of it too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["COUNTRY_CODES", "FORMATS", "ValueFormat", "is_email", "register_value_format"]

# ISO 3166-1 alpha-2: every officially assigned code (249), plus XK (Kosovo, a
# user-assigned code in wide use, Spotify's markets among others).
COUNTRY_CODES: frozenset[str] = frozenset(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ
    BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ
    CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ
    DE DJ DK DM DO DZ
    EC EE EG EH ER ES ET
    FI FJ FK FM FO FR
    GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY
    HK HM HN HR HT HU
    ID IE IL IM IN IO IQ IR IS IT
    JE JM JO JP
    KE KG KH KI KM KN KP KR KW KY KZ
    LA LB LC LI LK LR LS LT LU LV LY
    MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ
    NA NC NE NF NG NI NL NO NP NR NU NZ
    OM
    PA PE PF PG PH PK PL PM PN PR PS PT PW PY
    QA
    RE RO RS RU RW
    SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ
    TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ
    UA UG UM US UY UZ
    VA VC VE VG VI VN VU
    WF WS
    XK
    YE YT
    ZA ZM ZW
    """.split()  # noqa: SIM905 - the codes read as a table, by first letter
)

# One "@", a local part, a domain of dot-separated labels; no whitespace or control
# characters anywhere. Deliberately pragmatic: RFC 5322 admits far more.
_EMAIL = re.compile(r"[^@\s\x00-\x1f\x7f]+@(?:[^@\s\x00-\x1f\x7f.]+\.)+[^@\s\x00-\x1f\x7f.]+")
_MAX_EMAIL = 320


def is_email(value: str) -> bool:
    """A pragmatic e-mail check: one ``@``, a local part, a dotted domain, no spaces."""
    return len(value) <= _MAX_EMAIL and _EMAIL.fullmatch(value) is not None


@dataclass(frozen=True)
class ValueFormat:
    """A value format: a Python expression over ``v`` (a ``str``) true when it is valid.

    ``names`` are the constants and functions the expression uses (their names must be
    unique among formats). ``max_length``: the expression accepts nothing longer and
    nothing holding NUL, so the plain length and NUL checks can be skipped.
    """

    name: str
    expression: str
    description: str
    names: Mapping[str, Any] = field(default_factory=dict)
    max_length: int | None = None

    def accepts(self, value: str) -> bool:
        """Whether ``value`` is in this format (the compiled check, for one value)."""
        return bool(eval(self.expression, {**self.names}, {"v": value}))  # noqa: S307 - our own expression


#: The formats a column's ``info["format"]`` may name, by name: the engine's own, and
#: those domains added with :func:`register_value_format`.
FORMATS: dict[str, ValueFormat] = {
    f.name: f
    for f in (
        ValueFormat(
            "country",
            "v in FORMAT_COUNTRIES",
            "an ISO 3166-1 alpha-2 country code",
            {"FORMAT_COUNTRIES": COUNTRY_CODES},
            max_length=2,
        ),
        ValueFormat(
            "email",
            "FORMAT_EMAIL(v)",
            "an e-mail address",
            {"FORMAT_EMAIL": is_email},
        ),
    )
}


def register_value_format(form: ValueFormat) -> ValueFormat:
    """Make ``form`` available to columns as ``info={"format": form.name}``.

    Registering the same format again does nothing; another format under a name that
    is taken, or using a name another format's expression uses, is a :class:`ValueError`.
    """
    known = FORMATS.get(form.name)
    if known == form:
        return form
    if known is not None:
        raise ValueError(f"value format {form.name!r} is registered already")
    taken = {name for other in FORMATS.values() for name in other.names}
    clashing = sorted(taken & set(form.names))
    if clashing:
        raise ValueError(
            f"value format {form.name!r} uses names another format uses: {', '.join(clashing)}"
        )
    FORMATS[form.name] = form
    return form
