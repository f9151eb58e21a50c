#!/usr/bin/env bash
# The main job on the bundled Titanic data: set up, build titanic.xlsx (live formulas), then
# train every model sheet with gradient descent and write the fitted weights into its cells.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
excelnet build titanic -o titanic.xlsx
excelnet fit titanic.xlsx
