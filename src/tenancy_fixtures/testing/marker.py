"""The ``tenant_fixtures`` marker, read into what the test's tenant should be.

A marker mistake (no path, a misspelled keyword, a string where a list belongs) is a
:class:`pytest.UsageError` that quotes the marker's signature, never a ``TypeError``
from deep inside the plugin or a value quietly read another way (``features="ai"`` as
the features ``a`` and ``i``).
"""

from __future__ import annotations

import difflib
import os
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

__all__ = ["MARKER", "SIGNATURE", "MarkedTenant", "read_marker"]

MARKER = "tenant_fixtures"
SIGNATURE = (
    f"@pytest.mark.{MARKER}(path, *, tier='free', features=(), limits={{}}, format=None, "
    "options=None, shared=None)"
)
_KEYWORDS = ("path", "tier", "features", "limits", "format", "options", "shared")


@dataclass(frozen=True)
class MarkedTenant:
    """What a marker asks for: the set and how to make the tenant; ``shared`` is None
    when the marker leaves fresh-or-shared to the fixtures the test asks for."""

    fixtures: Path
    tier: str = "free"
    features: tuple[str, ...] = ()
    limits: Mapping[str, Any] | None = None
    format: str | None = None
    options: Mapping[str, Any] | None = None
    shared: bool | None = None


def _refuse(problem: str) -> pytest.UsageError:
    return pytest.UsageError(f"@pytest.mark.{MARKER}: {problem}; it takes {SIGNATURE}")


def _path(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if args and "path" in kwargs:
        raise _refuse("the path is given twice, as an argument and as path=")
    if len(args) > 1:
        raise _refuse(f"one path, not {len(args)} arguments {args!r}")
    path = args[0] if args else kwargs.pop("path", None)
    kwargs.pop("path", None)
    if path is None:
        raise _refuse("no fixture set named")
    if not isinstance(path, str | os.PathLike):
        raise _refuse(f"path must be a str or a Path, not {type(path).__name__} {path!r}")
    if not os.fspath(path).strip():
        raise _refuse(
            f"an empty path {path!r} names no fixture set (it would be the test's folder)"
        )
    return path


def _check(name: str, value: Any, wanted: type | types.UnionType, what: str) -> None:
    if not isinstance(value, wanted):
        raise _refuse(f"{name} must be {what}, not {type(value).__name__} {value!r}")


def read_marker(
    args: tuple[Any, ...], kwargs: Mapping[str, Any], resolve: Callable[[Path], Path]
) -> MarkedTenant:
    """The tenant a marker's ``args`` and ``kwargs`` ask for, its path through ``resolve``
    (relative to the test file); refuses any mistake with :class:`pytest.UsageError`."""
    options = dict(kwargs)
    for name in options:
        if name not in _KEYWORDS:
            close = difflib.get_close_matches(name, _KEYWORDS, n=1)
            hint = f" (did you mean {close[0]}=?)" if close else ""
            raise _refuse(f"unknown keyword {name}={options[name]!r}{hint}")
    path = Path(_path(args, options))
    features = options.pop("features", ())
    if isinstance(features, str | bytes) or not isinstance(features, list | tuple | set):
        raise _refuse(f"features must be a list of feature names, not {features!r}")
    for feature in features:
        _check("each feature", feature, str, "a str")
    _check("tier", options.get("tier", "free"), str, "a str")
    _check("limits", options.get("limits", {}), Mapping, "a mapping of limit to value")
    _check("format", options.get("format"), str | None, "a format name or None")
    _check("options", options.get("options"), Mapping | None, "a mapping or None")
    _check("shared", options.get("shared"), bool | None, "True, False or None")
    return MarkedTenant(fixtures=resolve(path), features=tuple(features), **options)
