#!/usr/bin/env bash
# The main job on the bundled Titanic data: set up, then build titanic.xlsx (live formulas).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
excelnet build titanic -o titanic.xlsx
