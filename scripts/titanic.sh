#!/usr/bin/env bash
# The main job on the bundled Titanic data: set up, build titanic.xlsx (live formulas), then
# train every model sheet and write the fitted weights into its cells. Run again, it trains
# the workbook further: a build never replaces a fitted workbook unless told (--force).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -e titanic.xlsx ]; then
  echo "titanic.xlsx is there: training it further (excelnet build titanic --force starts afresh)"
else
  excelnet build titanic -o titanic.xlsx
fi
excelnet fit titanic.xlsx
