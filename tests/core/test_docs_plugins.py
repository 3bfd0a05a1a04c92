"""docs/plugins.md shows the example connector and its kit test exactly as they are tested."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _blocks(text: str) -> dict[str, str]:
    """Python code blocks of the page by the file named in their first line."""
    out = {}
    for block in re.findall(r"```python\n(.*?)```", text, re.S):
        first, _, rest = block.partition("\n")
        out[first.removeprefix("# ").strip()] = rest
    return out


def test_the_example_on_the_page_is_the_tested_one() -> None:
    blocks = _blocks((ROOT / "docs" / "plugins.md").read_text(encoding="utf-8"))
    plugin = (ROOT / "tests" / "core" / "peoplebook.py").read_text(encoding="utf-8")
    test = (ROOT / "tests" / "core" / "test_peoplebook_contract.py").read_text(encoding="utf-8")
    assert blocks["coachbridge_peoplebook/plugin.py"] == plugin
    assert blocks["tests/test_peoplebook_contract.py"] == test.replace(
        "from tests.core.peoplebook import", "from coachbridge_peoplebook.plugin import"
    )
