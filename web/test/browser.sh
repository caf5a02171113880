#!/usr/bin/env bash
# The dashboard in a real browser (crates/spalloc-server/tests/web_browser.rs):
# headless Chromium over WebDriver logs in, opens a machine's map, sees a job made
# through the API appear without a reload, destroys it from the job page and checks
# the map again; and an administrator takes a board out of service on the admin boards
# page, sees it marked on the map and puts it back (about 10 s for both). Installs
# Debian's chromium and chromium-driver with apt-get when missing (never downloads a
# browser otherwise). Screenshots of every page go to
# $SPALLOC_SCREENSHOTS (default target/web-screenshots; not committed).
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v chromedriver >/dev/null 2>&1 || ! [ -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "web/test/browser.sh: needs chromium and chromedriver (Debian: apt-get install chromium chromium-driver)" >&2
    exit 1
  fi
  echo "== installing chromium and chromium-driver"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi

export SPALLOC_SCREENSHOTS="${SPALLOC_SCREENSHOTS:-$PWD/target/web-screenshots}"
cargo test -p spalloc-server --locked --test web_browser -- --ignored
echo "screenshots: $SPALLOC_SCREENSHOTS"
