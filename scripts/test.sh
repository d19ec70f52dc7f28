#!/usr/bin/env bash
# Install everything the tests need, then run them all: unit, AppTest and browser tests.
# Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

python -m pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-test.txt

# Browser tests drive a system Chromium through Playwright ($CHROMIUM_PATH, else /usr/bin/chromium).
browser="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [ ! -x "$browser" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing Chromium from the distribution's packages..."
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "No Chromium at $browser; trying Playwright's own download..."
    python -m playwright install chromium
  fi
fi

exec python -m pytest "$@"
