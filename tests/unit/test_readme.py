"""The README documents every setting with its current default."""

from __future__ import annotations

from kernel_memory.settings import Settings
from scripts.settings_table import iter_settings
from tests.conftest import REPO_ROOT


def test_readme_lists_every_setting_with_default():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    for variable, default, _ in iter_settings(Settings):
        assert f"| `{variable}` | `{default}` |" in readme, variable
