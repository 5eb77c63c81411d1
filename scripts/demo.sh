#!/usr/bin/env bash
# The main job: set up, then build examples/drop-syn.tlisp and verify it in a
# VM booted on its target kernel, running its packet tests. It uses the C
# backend, the path that works offline with Debian packages alone; see the
# README for the aya (Rust) and Nix paths.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/tatara-build test examples/drop-syn.tlisp --backend c -o out/drop-syn "$@"
