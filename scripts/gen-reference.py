#!/usr/bin/env python3
"""Write docs/reference.md from tatara_build/tables.py (tatara_build.reference).
`--check`: write nothing, exit 1 when the committed file is stale."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tatara_build import reference  # noqa: E402

TARGET = ROOT / "docs" / "reference.md"


def main(argv: list[str]) -> int:
    text = reference.render()
    if "--check" in argv:
        if not TARGET.exists() or TARGET.read_text() != text:
            print(f"{TARGET.relative_to(ROOT)} is stale: run scripts/gen-reference.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
