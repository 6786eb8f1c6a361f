"""Function shape: no function in ``src/tenancy_fixtures`` is longer than 60 lines or has
more than 15 branches, unless a ``# shape: <reason>`` comment next to it says why.

What is counted, per function (its nested functions and classes included, and each
nested function is also measured on its own):

- lines: from the ``def`` line to the last line of the body (decorators not counted,
  the docstring counted);
- branches: one for each ``if``/``elif``, conditional expression (``a if c else b``),
  ``for``/``async for`` (comprehension ``for`` clauses included), ``while``, ``try``,
  ``except`` handler, ``with``/``async with``, ``case`` of a ``match``, and boolean
  operator (an ``and``/``or`` chain counts once).

The ``# shape:`` comment goes on the ``def`` line or on the line above it.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

import tenancy_fixtures

MAX_LINES = 60
MAX_BRANCHES = 15
SRC = Path(tenancy_fixtures.__file__).parent
_REASON = re.compile(r"#\s*shape:\s*\S")
_BRANCHES = (
    ast.If,
    ast.IfExp,
    ast.For,
    ast.AsyncFor,
    ast.comprehension,
    ast.While,
    ast.Try,
    ast.TryStar,
    ast.ExceptHandler,
    ast.With,
    ast.AsyncWith,
    ast.match_case,
    ast.BoolOp,
)


@dataclass(frozen=True)
class Shape:
    """One function's size."""

    where: str
    lines: int
    branches: int
    excused: bool

    @property
    def too_big(self) -> bool:
        return self.lines > MAX_LINES or self.branches > MAX_BRANCHES


def measure(source: str, relative: str) -> list[Shape]:
    """The shape of every function in ``source`` (the module at ``relative``)."""
    lines = source.splitlines()
    shapes: list[Shape] = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        assert node.end_lineno is not None
        around = lines[max(node.lineno - 2, 0) : node.lineno]
        shapes.append(
            Shape(
                f"{relative}:{node.name}",
                node.end_lineno - node.lineno + 1,
                sum(isinstance(n, _BRANCHES) for n in ast.walk(node)),
                any(_REASON.search(line) for line in around),
            )
        )
    return shapes


def every_shape() -> list[Shape]:
    """The shape of every function of the package."""
    return [
        shape
        for path in sorted(SRC.rglob("*.py"))
        for shape in measure(path.read_text(encoding="utf-8"), path.relative_to(SRC).as_posix())
    ]


def test_no_function_is_over_60_lines_or_15_branches_without_a_reason() -> None:
    """Every function too long or too branchy carries a ``# shape:`` reason."""
    shapes = every_shape()
    longest = max(shapes, key=lambda s: s.lines)
    branchiest = max(shapes, key=lambda s: s.branches)
    print(
        f"longest: {longest.where} {longest.lines} lines; "
        f"most branches: {branchiest.where} {branchiest.branches}"
    )
    offenders = {s.where for s in shapes if s.too_big and not s.excused}

    assert [] == sorted(offenders)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("    return 1\n", (2, 0)),
        ("    if a and b:\n        pass\n    elif c:\n        pass\n", (5, 3)),
        ("    return [x for x in y if x]\n", (2, 1)),
        ("    try:\n        pass\n    except E:\n        pass\n", (5, 2)),
        ("    async with a, b:\n        pass\n", (3, 1)),
        (
            "    match a:\n        case 1:\n            pass\n        case _:\n            pass\n",
            (6, 2),
        ),
    ],
)
def test_lines_and_branches_are_counted_as_documented(body: str, expected: tuple[int, int]) -> None:
    """Lines run from the def to the end of the body; each documented construct is one
    branch."""
    (shape,) = measure("async def probe():\n" + body, "probe.py")

    assert expected == (shape.lines, shape.branches)


def test_a_shape_comment_on_or_above_the_def_excuses_it() -> None:
    """``# shape: <reason>`` on the def line or the line above excuses the function; a
    bare ``# shape:`` without a reason does not."""
    source = (
        "# shape: one table of cases\ndef a():\n    pass\n"
        "def b():  # shape: generated\n    pass\n"
        "# shape:\ndef c():\n    pass\n"
    )

    assert [True, True, False] == [s.excused for s in measure(source, "probe.py")]
