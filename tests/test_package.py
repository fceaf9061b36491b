"""Packaging: flat lazy API, and a clear refusal when AdapterHub's 'adapters' is installed too."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import adapters


def test_flat_api() -> None:
    for name in adapters.__all__:
        assert getattr(adapters, name) is not None


def test_adapterhub_distribution_is_detected(tmp_path: Path) -> None:
    dist = tmp_path / "adapters-1.2.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: adapters\nVersion: 1.2.0\n")
    result = subprocess.run(
        [sys.executable, "-c", "import adapters"],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode != 0
    assert "AdapterHub" in result.stderr and "pip uninstall adapters" in result.stderr
