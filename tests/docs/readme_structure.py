"""What a README translation must share with README.md, read from the markdown.

Prose is translated; its skeleton is not: the heading levels in order, the fenced code
blocks (commands, Python, output) byte for byte, the ``tenancy-fixtures …`` commands
named anywhere, the shape of every table and the ``<!-- snippet: … -->`` markers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

_FENCE = re.compile(r"^(```+|~~~+)(.*)$")
_HEADING = re.compile(r"^(#{1,6})\s+\S")
_TABLE_RULE = re.compile(r"^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
_INLINE_COMMAND = re.compile(r"`(tenancy-fixtures[^`]*)`")
_SNIPPET_MARK = re.compile(r"^<!--\s*snippet:.*-->\s*$")


@dataclass(frozen=True)
class CodeBlock:
    """One fenced block: its info string (``python``, ``sh``…) and its text."""

    info: str
    text: str
    line: int = field(compare=False)


@dataclass
class Skeleton:
    """The untranslatable parts of one README."""

    heading_levels: list[int] = field(default_factory=list)
    code_blocks: list[CodeBlock] = field(default_factory=list)
    commands: set[str] = field(default_factory=set)
    table_shapes: list[tuple[int, int]] = field(default_factory=list)
    snippet_marks: list[str] = field(default_factory=list)


def _cells(row: str) -> int:
    return len(row.strip().strip("|").split("|"))


def _commands_in_code(text: str) -> set[str]:
    found = set()
    for raw in text.splitlines():
        line = raw.strip().removeprefix("$ ")
        if line.startswith("tenancy-fixtures"):
            found.add(line.split("#")[0].strip())
    return found


def skeleton(markdown: str) -> Skeleton:
    """Read the skeleton of ``markdown`` (fenced blocks are never headings or tables)."""
    result = Skeleton()
    lines = markdown.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        fence = _FENCE.match(line)
        if fence:
            index = _read_block(lines, index, fence, result)
            continue
        if _HEADING.match(line):
            result.heading_levels.append(len(line) - len(line.lstrip("#")))
        elif _SNIPPET_MARK.match(line):
            result.snippet_marks.append(line.strip())
        elif (
            line.startswith("|") and index + 1 < len(lines) and _TABLE_RULE.match(lines[index + 1])
        ):
            index = _read_table(lines, index, result)
            continue
        result.commands.update(command.strip() for command in _INLINE_COMMAND.findall(line))
        index += 1
    return result


def _read_block(lines: list[str], start: int, fence: re.Match[str], result: Skeleton) -> int:
    marker = fence.group(1)
    end = start + 1
    while end < len(lines) and not lines[end].startswith(marker):
        end += 1
    text = "\n".join(lines[start + 1 : end])
    result.code_blocks.append(CodeBlock(info=fence.group(2).strip(), text=text, line=start + 1))
    result.commands.update(_commands_in_code(text))
    return end + 1


def _read_table(lines: list[str], start: int, result: Skeleton) -> int:
    columns = _cells(lines[start])
    end = start + 2
    while end < len(lines) and lines[end].startswith("|"):
        result.commands.update(command.strip() for command in _INLINE_COMMAND.findall(lines[end]))
        end += 1
    result.table_shapes.append((end - start - 1, columns))
    return end


def differences(original: str, translation: str) -> list[str]:
    """Every way ``translation``'s skeleton departs from ``original``'s (empty: in step)."""
    want, got = skeleton(original), skeleton(translation)
    problems = []
    if want.heading_levels != got.heading_levels:
        problems.append(f"heading levels differ: {want.heading_levels} vs {got.heading_levels}")
    for position, (a, b) in enumerate(zip(want.code_blocks, got.code_blocks, strict=False)):
        if a != b:
            problems.append(f"code block {position + 1} (line {a.line} vs {b.line}) differs")
            break
    if len(want.code_blocks) != len(got.code_blocks):
        problems.append(f"{len(want.code_blocks)} code blocks vs {len(got.code_blocks)}")
    if want.commands != got.commands:
        problems.append(
            f"commands differ: missing {sorted(want.commands - got.commands)}, "
            f"extra {sorted(got.commands - want.commands)}"
        )
    if want.table_shapes != got.table_shapes:
        problems.append(f"table shapes differ: {want.table_shapes} vs {got.table_shapes}")
    if want.snippet_marks != got.snippet_marks:
        problems.append(f"snippet markers differ: {want.snippet_marks} vs {got.snippet_marks}")
    return problems


def read(path: Path) -> str:
    """The README's text."""
    return path.read_text(encoding="utf-8")
