#!/usr/bin/env bash
# Install everything the tests need into a virtual environment, then run them all: unit, AppTest and browser tests.
# Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

# Packages go into a virtual environment only: the active one, else .venv (made here the first time).
if [ -n "${VIRTUAL_ENV:-}" ] && python -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)' 2>/dev/null; then
  echo "Installing into the active virtual environment $VIRTUAL_ENV"
else
  if [ ! -x .venv/bin/python ]; then
    base="$(command -v python3.11 || command -v python3)"
    echo "No virtual environment is active: making .venv with $("$base" --version) and installing there"
    "$base" -m venv .venv
  else
    echo "No virtual environment is active: installing into .venv"
  fi
  # shellcheck disable=SC1091
  . .venv/bin/activate
fi

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

# Four workers, a test file each at a time (a file's module fixtures, such as its server, are made once): the
# suite's tests spend much of their time waiting on servers, browsers and training processes, so four at once keep
# a 2-core machine busy. Files go out in collection order, the longest first (tests/conftest.py).
exec python -m pytest -n 4 --dist loadfile --no-loadscope-reorder "$@"
