"""Golden typed IR for every example: tests/golden/ir/<stem>.json.

After an intended change to the frontend or an example, regenerate with
    TATARA_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/frontend/test_golden.py
and review the diff. Paths are relative to the repository root, so spans
read `examples/<stem>.tlisp`.
"""

import os
from pathlib import Path

import pytest

from tatara_build import ir
from tatara_build.check import check
from tatara_build.frontend import load

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "golden" / "ir"
EXAMPLES = sorted(p.relative_to(REPO) for p in (REPO / "examples").glob("*.tlisp"))


def test_every_example_has_a_golden_file():
    assert EXAMPLES, "no examples found"
    missing = [p.stem for p in EXAMPLES if not (GOLDEN / f"{p.stem}.json").exists()]
    assert not missing or os.environ.get("TATARA_UPDATE_GOLDEN") == "1", f"no golden IR for {missing}"


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_golden_ir(example, monkeypatch):
    monkeypatch.chdir(REPO)
    actual = ir.to_json(check(load(example)))
    golden = GOLDEN / f"{example.stem}.json"
    if os.environ.get("TATARA_UPDATE_GOLDEN") == "1":
        golden.write_text(actual)
    assert actual == golden.read_text(), f"IR of {example} changed; see this file's docstring to regenerate"


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_golden_round_trips_exactly(example):
    text = (GOLDEN / f"{example.stem}.json").read_text()
    module = ir.from_json(text)
    assert ir.to_json(module) == text
    assert ir.from_json(ir.to_json(module)) == module
