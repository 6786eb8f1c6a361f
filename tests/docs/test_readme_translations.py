"""README.de.md and README.fr.md stay in step with README.md: same sections, code,
commands, tables and snippet markers (the prose is translated, nothing else)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.readme_structure import differences, read, skeleton

ROOT = Path(__file__).resolve().parents[2]
ENGLISH = ROOT / "README.md"
TRANSLATIONS = [ROOT / "README.de.md", ROOT / "README.fr.md"]
SWITCHER = "[English](README.md) | [Deutsch](README.de.md) | [Français](README.fr.md)"

BASE = """# Title

Intro with `tenancy-fixtures list`.

## Part one

| a | b |
| --- | --- |
| 1 | 2 |

<!-- snippet: skip (illustration) -->
```sh
tenancy-fixtures create acme
```
"""


@pytest.mark.parametrize("translation", TRANSLATIONS, ids=lambda path: path.name)
def test_translation_has_the_same_sections_code_commands_and_tables(translation: Path) -> None:
    assert differences(read(ENGLISH), read(translation)) == []


@pytest.mark.parametrize("readme", [ENGLISH, *TRANSLATIONS], ids=lambda path: path.name)
def test_every_readme_opens_with_the_same_language_switcher(readme: Path) -> None:
    lines = read(readme).splitlines()
    assert SWITCHER in lines[:3]


def test_the_skeleton_ignores_headings_and_commands_inside_code() -> None:
    found = skeleton(
        "# A\n\n```sh\n# a comment, not a heading\n$ tenancy-fixtures ls  # all\n```\n"
    )
    assert found.heading_levels == [1]
    assert found.commands == {"tenancy-fixtures ls"}


def test_a_translation_with_only_the_prose_translated_is_in_step() -> None:
    german = BASE.replace("# Title", "# Titel").replace("Intro with", "Einleitung mit")
    german = german.replace("## Part one", "## Teil eins")
    assert differences(BASE, german) == []


def test_a_section_the_translation_lacks_is_reported() -> None:
    grown = BASE + "\n## Part two\n\nMore.\n"
    assert any("heading levels" in problem for problem in differences(grown, BASE))


def test_a_code_block_the_translation_lacks_is_reported() -> None:
    grown = BASE + "\n```python\nprint(1)\n```\n"
    assert any("code blocks" in problem for problem in differences(grown, BASE))


def test_a_changed_command_in_code_is_reported() -> None:
    changed = BASE.replace("create acme", "create acme2")
    problems = differences(BASE, changed)
    assert any("code block 1" in problem for problem in problems)
    assert any("commands differ" in problem for problem in problems)


def test_an_inline_command_the_translation_lacks_is_reported() -> None:
    assert any(
        "commands" in p for p in differences(BASE, BASE.replace("`tenancy-fixtures list`", "x"))
    )


def test_a_table_of_another_shape_is_reported() -> None:
    wider = BASE.replace("| 1 | 2 |", "| 1 | 2 |\n| 3 | 4 |")
    assert any("table shapes" in problem for problem in differences(BASE, wider))


def test_a_missing_snippet_marker_is_reported() -> None:
    unmarked = BASE.replace("<!-- snippet: skip (illustration) -->\n", "")
    assert any("snippet markers" in problem for problem in differences(BASE, unmarked))
