"""A file nested a hundred thousand levels deep (200 KB of brackets) is refused in
bounded memory wherever it is read: telling a table file from a source file, reading a
table file's records, streaming a source file's documents.

ijson's prefixed events cost memory quadratic in the depth within one read buffer: an
upload of a few hundred gzipped bytes had the service killed for lack of memory. Each
case runs in a child process whose address space is capped at 2 GiB.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

DEPTH = 100_000

_PROBE = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 31, 1 << 31))
from pathlib import Path
from tenancy_fixtures.errors import TenancyFixturesError
from tenancy_fixtures.loading.opening import open_loaders
from tenancy_fixtures.loading.readers import iter_records
from tenancy_fixtures.loading.sources import SourceFile, iter_documents
from tenancy_fixtures.spotify.schema import spotify_metadata

what, path = sys.argv[1], Path(sys.argv[2])
try:
    if what == "table-file":
        loaders = open_loaders(path.parent, metadata=spotify_metadata(), batch_size=1000)
        for file in loaders[0].files:
            list(iter_records(file))
    else:
        source = SourceFile(path, path.name, "json", False, format="spotify-api")
        list(iter_documents(source))
    print(json.dumps({"outcome": "read"}))
except TenancyFixturesError as exc:
    print(json.dumps({"outcome": type(exc).__name__, "message": str(exc)}))
"""


def _probe(what: str, path: Path) -> dict[str, str]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, what, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert 0 == done.returncode, done.stderr[-2000:]
    found: dict[str, str] = json.loads(done.stdout)
    return found


@pytest.mark.parametrize(("what", "name"), [("table-file", "users.json"), ("source", "x.json")])
def test_a_file_nested_a_hundred_thousand_levels_is_refused_in_bounded_memory(
    tmp_path: Path, what: str, name: str
) -> None:
    path = tmp_path / "set" / name
    path.parent.mkdir()
    path.write_bytes(b"[" * DEPTH + b"]" * DEPTH)

    found = _probe(what, path)

    assert "FixtureFormatError" == found["outcome"], found
    assert "nested deeper than 100 levels" in found["message"]
    assert name in found["message"]
