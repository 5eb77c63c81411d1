"""Golden files per dialect: every example and fixture, side by side.

Regenerate after an intended change with TATARA_UPDATE_GOLDEN=1 and review
the diff."""

from __future__ import annotations

import os

import pytest

from tatara_build.backends import render

from .helpers import GOLDEN, SOURCES, ids, load

UPDATE = os.environ.get("TATARA_UPDATE_GOLDEN") == "1"


def golden_files(backend: str, stem: str, files: dict[str, str]) -> dict[str, str]:
    if backend == "c":
        return {rel: str(GOLDEN / "c" / rel) for rel in files}
    # The crate scaffolding is the same for every source: kept once, for drop-syn.
    keep = files if stem == "drop-syn" else [r for r in files if r in ("Cargo.toml", "src/main.rs")]
    return {rel: str(GOLDEN / "aya" / stem / rel) for rel in keep}


@pytest.mark.parametrize("backend", ["c", "aya"])
@pytest.mark.parametrize("source", SOURCES, ids=ids(SOURCES))
def test_matches_golden(source, backend):
    files = render(load(source), backend)
    for rel, path in golden_files(backend, source.stem, files).items():
        if UPDATE:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(files[rel])
        with open(path, encoding="utf-8") as f:
            assert files[rel] == f.read(), f"{rel} differs from {path} (TATARA_UPDATE_GOLDEN=1 to accept)"
