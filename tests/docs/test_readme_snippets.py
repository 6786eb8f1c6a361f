"""Every runnable README snippet runs as written, twice in a row, on a fresh embedded
SQLite: the library examples (```python) and the CLI invocations (```sh, ```bash,
```console). A block that cannot run here says why in the comment before it,
``<!-- snippet: skip (reason) -->``; ``<!-- snippet: setup `command` -->`` runs a
command once before the block's first run (a tenant the block works on)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
RUNNABLE = {"python": "python", "sh": "shell", "bash": "shell", "console": "shell"}
_MARK = re.compile(r"^<!--\s*snippet:\s*(skip|setup)\s*(.*?)\s*-->\s*$")
_SETUP = re.compile(r"^`(.+)`$")
# Top-level ``await`` and ``async with`` (as in a notebook) run inside an event loop.
_RUNNER = """
import ast, asyncio, inspect, sys
source = open(sys.argv[1], encoding="utf-8").read()
code = compile(source, sys.argv[1], "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
namespace = {"__name__": "__main__"}
result = eval(code, namespace)
if inspect.iscoroutine(result):
    asyncio.run(result)
"""


@dataclass(frozen=True)
class Snippet:
    """One fenced block of README.md that the test runs or skips."""

    line: int
    kind: str
    text: str
    skip: str | None
    setup: str | None


def snippets(markdown: str) -> list[Snippet]:
    """The python and shell blocks of ``markdown``, with the marker before each."""
    found, lines, index = [], markdown.splitlines(), 0
    while index < len(lines):
        fence = re.match(r"^```(\w*)\s*$", lines[index])
        if not fence:
            index += 1
            continue
        end = index + 1
        while not lines[end].startswith("```"):
            end += 1
        kind = RUNNABLE.get(fence.group(1))
        if kind:
            found.append(_snippet(lines, index, kind, "\n".join(lines[index + 1 : end])))
        index = end + 1
    return found


def _snippet(lines: list[str], fence: int, kind: str, text: str) -> Snippet:
    before = next((line for line in reversed(lines[:fence]) if line.strip()), "")
    mark = _MARK.match(before)
    skip = mark.group(2).strip("()") if mark and mark.group(1) == "skip" else None
    setup = None
    if mark and mark.group(1) == "setup":
        command = _SETUP.match(mark.group(2))
        assert command, f"README.md:{fence + 1}: setup takes one `command`"
        setup = command.group(1)
    return Snippet(line=fence + 1, kind=kind, text=text, skip=skip, setup=setup)


def _shell(text: str) -> str:
    """The commands of a shell block: a console block's ``$ `` prompts dropped, and
    the output lines after them left out."""
    if not any(line.startswith("$ ") for line in text.splitlines()):
        return text
    return "\n".join(line[2:] for line in text.splitlines() if line.startswith("$ "))


def _environment(workdir: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("TENANCY_")}
    env["TENANCY_DATABASE_URL"] = f"sqlite:///{workdir / 'data'}"
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _run(command: list[str], workdir: Path, what: str) -> None:
    done = subprocess.run(
        command, cwd=workdir, env=_environment(workdir), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"{what} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"


def _run_snippet(snippet: Snippet, workdir: Path, attempt: int) -> None:
    what = f"README.md:{snippet.line} (run {attempt})"
    if snippet.kind == "python":
        script = workdir / f"snippet_{snippet.line}.py"
        script.write_text(snippet.text, encoding="utf-8")
        _run([sys.executable, "-c", _RUNNER, str(script)], workdir, what)
    else:
        _run(["bash", "-euo", "pipefail", "-c", _shell(snippet.text)], workdir, what)


ALL = snippets(README.read_text(encoding="utf-8"))


@pytest.mark.parametrize("snippet", ALL, ids=lambda snippet: f"line{snippet.line}-{snippet.kind}")
def test_readme_snippet_runs_as_written_twice(snippet: Snippet, tmp_path: Path) -> None:
    if snippet.skip is not None:
        pytest.skip(f"README.md:{snippet.line}: {snippet.skip}")
    if snippet.setup:
        _run(["bash", "-euo", "pipefail", "-c", snippet.setup], tmp_path, "setup")
    for attempt in (1, 2):
        _run_snippet(snippet, tmp_path, attempt)


def test_every_skipped_snippet_says_why() -> None:
    assert all(snippet.skip for snippet in ALL if snippet.skip is not None)
    assert any(snippet.skip is None for snippet in ALL)


def test_snippets_read_markers_prompts_and_setups() -> None:
    markdown = (
        "<!-- snippet: skip (needs a cluster) -->\n```sh\nx\n```\n\n"
        "<!-- snippet: setup `tenancy-fixtures init-tenant acme` -->\n"
        "```console\n$ tenancy-fixtures list\nacme\n```\n```json\n{}\n```\n"
    )
    skipped, console = snippets(markdown)
    assert skipped.skip == "needs a cluster"
    assert console.setup == "tenancy-fixtures init-tenant acme"
    assert _shell(console.text) == "tenancy-fixtures list"
