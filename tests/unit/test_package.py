"""The package's public names, and that importing it loads nothing heavy."""

from __future__ import annotations

import subprocess
import sys

import kernel_memory


def test_package_exports_resolve():
    for name in kernel_memory.__all__:
        assert getattr(kernel_memory, name) is not None, name


def test_package_import_is_lazy():
    code = "import sys, kernel_memory; print(','.join(m for m in ('numpy', 'pydantic', 'openai') if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == ""
