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

# Free space where the builds go, printed between stages: a full disk shows up as a linker
# crash (SIGBUS), so the log should say how much room each stage left.
disk_left() { df -h "${CARGO_TARGET_DIR:-target}" 2>/dev/null | awk 'NR == 2 { print "   (disk: " $4 " free)" }'; }
mkdir -p "${CARGO_TARGET_DIR:-target}"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
disk_left
cargo test --workspace --locked
# ---- Installing the tools: scripts/install.sh, and the Python wheel (packaging/python) --------
# install.sh into a temporary prefix (binaries, man pages, completions). Then the wheel: built
# with maturin (from PyPI, in a throw-away virtualenv), installed into a fresh virtualenv, and
# `spalloc --version` run from there. Debug builds reusing the cargo target dir above, so this
# adds seconds, not a release build. SPALLOC_SKIP_WHEEL=1 skips the wheel (e.g. offline).
echo "== scripts/install.sh"
disk_left
install_tmp="$(mktemp -d)"
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}" \
  scripts/install.sh --prefix "$install_tmp" --debug >/dev/null 2>&1 ||
  { echo "scripts/install.sh failed" >&2; exit 1; }
for installed in bin/spalloc share/man/man1/spalloc.1 share/bash-completion/completions/spalloc \
  share/zsh/site-functions/_spalloc share/fish/vendor_completions.d/spalloc.fish; do
  [ -s "$install_tmp/$installed" ] || { echo "scripts/install.sh did not install $installed" >&2; exit 1; }
done
"$install_tmp/bin/spalloc" --version
rm -rf "$install_tmp"
if [ "${SPALLOC_SKIP_WHEEL:-}" = 1 ]; then
  echo "== python wheel skipped (SPALLOC_SKIP_WHEEL=1)"
else
  echo "== python wheel"
  disk_left
  wheel_tmp="$(mktemp -d)"
  python3 -m venv "$wheel_tmp/build"
  "$wheel_tmp/build/bin/pip" install --quiet "maturin>=1.5,<2"
  (cd packaging/python &&
    CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/../../target}" \
      "$wheel_tmp/build/bin/maturin" build --locked --quiet --out "$wheel_tmp/dist")
  python3 -m venv "$wheel_tmp/fresh"
  "$wheel_tmp/fresh/bin/pip" install --quiet --no-index "$wheel_tmp"/dist/*.whl
  version="$("$wheel_tmp/fresh/bin/spalloc" --version)"
  echo "installed from the wheel: $version"
  case "$version" in
    "spalloc "[0-9]*) ;;
    *) echo "spalloc --version from the wheel printed: $version" >&2; exit 1 ;;
  esac
  rm -rf "$wheel_tmp"
fi
# ---- end of the Python wheel block -----------------------------------------------------------
# --- web dashboard: headless Chromium (web/test/browser.sh installs chromium and
# chromium-driver with apt-get when missing). SPALLOC_SKIP_BROWSER=1 skips it.
if [ "${SPALLOC_SKIP_BROWSER:-}" = 1 ]; then
  echo "== web/test/browser.sh skipped (SPALLOC_SKIP_BROWSER=1)"
else
  echo "== web/test/browser.sh"
  disk_left
  bash web/test/browser.sh
fi
# --- end of the web dashboard block
# Two-way compatibility with the Python reference (compat/README.md): installs the reference
# from PyPI with compat/reference/setup.sh, then runs its tools against our server, ours against
# it, and a differential run. SPALLOC_SKIP_COMPAT=1 skips it (e.g. offline).
if [ "${SPALLOC_SKIP_COMPAT:-}" = 1 ]; then
  echo "== compat/run.sh skipped (SPALLOC_SKIP_COMPAT=1)"
else
  echo "== compat/run.sh"
  disk_left
  bash compat/run.sh
fi
echo "== done"
disk_left
