#!/usr/bin/env bash
# Runs every check the project has: formatting, lints, and all tests
# (unit, property, TCP integration and CLI process tests).
# This is the README's test command; CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is required: install Rust from https://rustup.rs" >&2
  exit 1
fi
# rustfmt and clippy ship with rustup's default profile; add them if missing.
if command -v rustup >/dev/null 2>&1; then
  cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
  cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
# --- web dashboard: headless Chromium (web/test/browser.sh installs chromium and
# chromium-driver with apt-get when missing). SPALLOC_SKIP_BROWSER=1 skips it.
if [ "${SPALLOC_SKIP_BROWSER:-}" = 1 ]; then
  echo "== web/test/browser.sh skipped (SPALLOC_SKIP_BROWSER=1)"
else
  echo "== web/test/browser.sh"
  bash web/test/browser.sh
fi
# --- end of the web dashboard block
# Two-way compatibility with the Python reference (compat/README.md): installs the reference
# from PyPI with ../shared/ref/setup.sh, then runs its tools against our server, ours against it,
# and a differential run. SPALLOC_SKIP_COMPAT=1 skips it (e.g. offline).
if [ "${SPALLOC_SKIP_COMPAT:-}" = 1 ]; then
  echo "== compat/run.sh skipped (SPALLOC_SKIP_COMPAT=1)"
else
  echo "== compat/run.sh"
  bash compat/run.sh
fi
