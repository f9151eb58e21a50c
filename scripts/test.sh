#!/usr/bin/env bash
# Set up everything the tests need (LibreOffice included), lint, and run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
# LibreOffice, and its Python bridge for the live tests (in the system Python: python3-uno)
if ! command -v soffice >/dev/null || ! /usr/bin/python3 -c "import uno" 2>/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libreoffice-calc-nogui python3-uno >/dev/null
  else
    echo "LibreOffice is needed: sudo apt-get install libreoffice-calc-nogui python3-uno" >&2
    exit 1
  fi
fi
bash scripts/setup.sh
python3 -m ruff check excelnet tests bench scripts
python3 -m ruff format --check excelnet tests bench scripts
python3 -m pytest -q
