"""The package as a user gets it: a wheel built from this tree, installed with pip into a
fresh virtual environment, runs its CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.packaging


def run(*args: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=240, check=False
    )
    assert done.returncode == 0, f"{args} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_the_wheel_installs_into_a_fresh_venv_and_its_cli_works(tmp_path: Path) -> None:
    """Built with pip (hatchling), installed with its dependencies from their index: the
    CLI prints pyproject.toml's version (the one source: ``__version__`` reads the
    installed metadata) and creates a tenant on SQLite."""
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp_path / "dist", ROOT)
    (wheel,) = (tmp_path / "dist").glob("tenancy_fixtures-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "tenancy_fixtures/py.typed" in names
    assert any(n.endswith("licenses/LICENSE") for n in names)
    assert "tenancy_fixtures/templates/config_template.json" in names

    # A venv without pip of its own (ensurepip takes seconds): this pip installs into it,
    # without compiling every dependency's bytecode (the CLI compiles what it imports).
    venv.create(tmp_path / "venv", with_pip=False)
    bin_dir = tmp_path / "venv" / "bin"
    pip = (sys.executable, "-m", "pip", "--python", bin_dir / "python")
    run(*pip, "install", "-q", "--no-compile", "--disable-pip-version-check", wheel)
    cli = bin_dir / "tenancy-fixtures"
    data = f"sqlite:///{tmp_path / 'data'}"

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert f"tenancy-fixtures {version}\n" == run(cli, "--version")
    run(cli, "--database-url", data, "init-tenant", "wheel_check", cwd=tmp_path)
    listed = json.loads(run(cli, "list", "--json", "--database-url", data, cwd=tmp_path))
    assert ["wheel_check"] == [t["tenant_id"] for t in listed]
