"""`pip install .` installs the service as the tree shows it, and nothing else."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tests.served import ROOT


def test_the_wheel_holds_the_service_modules_and_no_tests(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        cwd=tmp_path,
    )
    (wheel,) = tmp_path.glob("customer_api-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    source = {
        path.relative_to(ROOT).as_posix()
        for path in [
            ROOT / "app.py",
            ROOT / "db.py",
            ROOT / "business_client.py",
            *(ROOT / "customers").rglob("*.py"),
        ]
    }
    assert source <= names
    assert not any(name.startswith(("tests/", "bench/", "e2e/")) for name in names)
    metadata = next(name for name in names if name.endswith("METADATA"))
    requires = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "requires-dist: flask" in requires.lower()
    # MIT, as LICENSE says, and LICENSE itself in the wheel.
    assert "License-Expression: MIT" in requires.splitlines()
    assert "License-File: LICENSE" in requires.splitlines()
    license_file = next(name for name in names if name.endswith("licenses/LICENSE"))
    assert zipfile.ZipFile(wheel).read(license_file) == (ROOT / "LICENSE").read_bytes()
