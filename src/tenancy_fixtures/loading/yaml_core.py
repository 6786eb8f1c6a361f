"""PyYAML's safe loader resolving plain scalars by the YAML 1.2 core schema.

PyYAML implements YAML 1.1, whose implicit typing changes what a file shows without a
word: ``017`` is 15 (octal), ``1:30`` is 90 (sexagesimal), ``on``/``off``/``yes``/``no``
are booleans, ``0b101`` and ``1_000`` are integers. :class:`CoreLoader` resolves a
plain scalar as the 1.2 core schema does instead: null (``~``, ``null``, ``Null``,
``NULL``, empty), bool (``true``/``false`` in three capitalisations), int (decimal,
``0o`` octal, ``0x`` hex), float (``.inf``, ``.nan`` included); anything else is text,
which a typed column then accepts or refuses by its own rules.

Two 1.1 resolvers are kept, as the fixture files relied on them before: timestamps
(``2024-01-01``, ``2024-01-01 12:00:00+00:00`` read as dates and times, an impossible
one refused) and ``<<`` merge keys. The ``=`` value key of 1.1 is dropped (PyYAML could
not build it). Explicitly tagged scalars (``!!int``, ``!!float``, ``!!bool``) are built
by the same rules: a value outside them is a ValueError, as an impossible date is.

The module imports PyYAML: import it where a YAML file is read, not at start-up.
"""

from __future__ import annotations

import re

import yaml
from yaml.constructor import ConstructorError

__all__ = ["CoreLoader"]

_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
#: The YAML 1.1 resolvers kept (see the module's docstring).
_KEPT = ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:merge")

_NULL_TEXT = re.compile(r"(?:~|null|Null|NULL|)\Z")
_BOOL_TEXT = re.compile(r"(?:true|True|TRUE|false|False|FALSE)\Z")
_INT_TEXT = re.compile(r"(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)\Z")
_FLOAT_TEXT = re.compile(
    r"(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))\Z"
)
_DIGITS = "0123456789"


def _scalar_text(node: yaml.Node) -> str:
    """The text of a scalar node; another node under a scalar tag is malformed YAML."""
    if not isinstance(node, yaml.ScalarNode):
        raise ConstructorError(
            None, None, f"expected a scalar, found {type(node).__name__}", node.start_mark
        )
    return str(node.value)


def _core_int(loader: yaml.SafeLoader, node: yaml.Node) -> int:
    """A core-schema integer: decimal, ``0o`` octal or ``0x`` hex (PyYAML's 1.1 reads
    ``017`` as octal, ``1:30`` as sexagesimal, and drops underscores)."""
    text = _scalar_text(node)
    if not _INT_TEXT.match(text):
        raise ValueError(f"{text!r:.40} is not a YAML 1.2 integer")
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text)


def _core_float(loader: yaml.SafeLoader, node: yaml.Node) -> float:
    """A core-schema float, ``.inf`` and ``.nan`` included (refused later by rule)."""
    text = _scalar_text(node)
    if not _FLOAT_TEXT.match(text):
        raise ValueError(f"{text!r:.40} is not a YAML 1.2 float")
    if text.lower().lstrip("+-") in (".inf", ".nan"):
        return float(text.replace(".", "", 1))
    return float(text)


def _core_bool(loader: yaml.SafeLoader, node: yaml.Node) -> bool:
    """``true`` or ``false`` (three capitalisations), not 1.1's yes/no/on/off."""
    text = _scalar_text(node)
    if not _BOOL_TEXT.match(text):
        raise ValueError(f"{text!r:.40} is not a YAML 1.2 boolean")
    return text.lower() == "true"


class CoreLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` with the 1.2 core schema's implicit resolvers and constructors
    (and 1.1's timestamps and merge keys); its tables are built once, at import."""


CoreLoader.add_constructor(_INT, _core_int)
CoreLoader.add_constructor(_FLOAT, _core_float)
CoreLoader.add_constructor(_BOOL, _core_bool)


def _resolvers() -> None:
    """Fill :class:`CoreLoader`'s resolvers: the core schema's, then the 1.1 ones kept.
    Order matters where first characters overlap: an int is tried before a float."""
    CoreLoader.yaml_implicit_resolvers = {}  # none of PyYAML's: this class's own table
    CoreLoader.add_implicit_resolver(_NULL, _NULL_TEXT, ["~", "n", "N", ""])
    CoreLoader.add_implicit_resolver(_BOOL, _BOOL_TEXT, list("tTfF"))
    CoreLoader.add_implicit_resolver(_INT, _INT_TEXT, [*_DIGITS, "-", "+"])
    CoreLoader.add_implicit_resolver(_FLOAT, _FLOAT_TEXT, [*_DIGITS, "-", "+", "."])
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items():
        for tag, pattern in resolvers:
            if tag in _KEPT:
                CoreLoader.yaml_implicit_resolvers.setdefault(first, []).append((tag, pattern))


_resolvers()
