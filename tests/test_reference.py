"""docs/reference.md is what tables.py says: regenerate it with
scripts/gen-reference.py after changing a table (CI runs this test)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tatara_build import reference, tables

ROOT = Path(__file__).resolve().parents[1]


def test_the_committed_reference_is_current():
    assert (ROOT / "docs" / "reference.md").read_text() == reference.render(), \
        "docs/reference.md is stale: run scripts/gen-reference.py"


def test_the_script_checks_and_the_language_page_links_it():
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen-reference.py"), "--check"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "(reference.md)" in (ROOT / "docs" / "language.md").read_text()


def test_every_table_entry_is_in_it():
    text = reference.render()
    for name in [*tables.HELPERS, *tables.MAP_KINDS, *tables.PROGRAM_KINDS, *tables.HEADERS]:
        assert name in text, name
    for form in tables.HELPER_FORMS.values():
        assert form.usage in text
    for kind in tables.PROGRAM_KINDS.values():
        for action in kind.actions:
            assert f"`:{action}`" in text
        for f in kind.ctx_fields:
            assert f"`:{f}`" in text


def test_a_table_change_makes_it_stale(monkeypatch):
    before = reference.render()
    monkeypatch.setitem(tables.HELPER_SINCE, "jiffies64", tables.Since("9.9", "x"))
    assert reference.render() != before
