#!/usr/bin/env bash
# demo.sh: set up everything (idempotent) and run the demo pipeline.
# Open http://127.0.0.1:8080 for the live preview; Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec bin/pipeline run "${@:-pipelines/demo.yaml}"
