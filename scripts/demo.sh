#!/usr/bin/env bash
# The main job: set up, then build examples/drop-syn.tlisp and verify it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/tatara-build check examples/drop-syn.tlisp
