"""The distribution maps its folders to non-generic import names, installed and editable alike."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IMPORT_NAMES = (
    "coachbridge",
    "coachbridge_csv",
    "coachbridge_bamboohr",
    "coachbridge_workday",
    "coachbridge_webhooks",
)
GENERIC = ("core", "plugins", "webhook_server")

PROBE = """
import importlib, importlib.util, json, sys
names, generic = json.loads(sys.argv[1])
out = {name: importlib.import_module(name).__file__ for name in names}
out["generic"] = [g for g in generic if importlib.util.find_spec(g) is not None]
from importlib.metadata import entry_points
out["entry_points"] = sorted(ep.name for ep in entry_points(group="coachbridge"))
import coachbridge.store.db as db
from pathlib import Path
out["migrations"] = sorted(p.name for p in (Path(db.MIGRATIONS) / "versions").glob("0*.py"))
print(json.dumps(out))
"""


def _probe(cwd: Path, env_path: str | None = None) -> dict:
    import json
    import os

    env = dict(os.environ)
    if env_path:
        env["PYTHONPATH"] = env_path
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps([IMPORT_NAMES, GENERIC])],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


def test_editable_install_imports_from_the_source_folders(tmp_path: Path) -> None:
    out = _probe(tmp_path)
    assert Path(out["coachbridge"]).parent == ROOT / "core"
    assert Path(out["coachbridge_csv"]).parent == ROOT / "plugins" / "csv"
    assert out["generic"] == []
    assert {"csv", "bamboohr", "workday", "generic"} <= set(out["entry_points"])


@pytest.mark.slow
def test_wheel_has_only_project_names_and_imports_when_installed(tmp_path: Path) -> None:
    wheel_dir = tmp_path / "wheel"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(wheel_dir),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    (wheel,) = wheel_dir.glob("coachbridge-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == set(IMPORT_NAMES)
    assert any(n.startswith("coachbridge/store/migrations/versions/0001") for n in names)
    assert "coachbridge/store/migrations/script.py.mako" in names

    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    assert not any((target / g).exists() for g in GENERIC)
    out = _probe(tmp_path, env_path=str(target))
    assert Path(out["coachbridge"]).parent == target / "coachbridge"
    assert out["generic"] == []
    assert out["migrations"] and out["migrations"][0].startswith("0001")
