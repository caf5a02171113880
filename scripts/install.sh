#!/usr/bin/env bash
# Installs the spalloc command-line tools, their man pages and their shell completions.
#
#   scripts/install.sh [--prefix DIR] [--with-server] [--debug]
#
# --prefix DIR    where to install (default: ~/.local): DIR/bin, DIR/share/man/man1,
#                 DIR/share/bash-completion/completions, DIR/share/zsh/site-functions,
#                 DIR/share/fish/vendor_completions.d
# --with-server   also install spalloc-server
# --debug         an unoptimised build (quicker to build; for trying the script out)
#
# Needs cargo (https://rustup.rs). Re-running it upgrades in place.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,13s/^# \{0,1\}//p' "$0"; }

prefix="${HOME:?HOME is not set}/.local"
with_server=0
profile=()
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || { echo "--prefix needs a folder" >&2; exit 2; }; prefix="$2"; shift 2 ;;
    --prefix=*) prefix="${1#--prefix=}"; shift ;;
    --with-server) with_server=1; shift ;;
    --debug) profile=(--debug); shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
done
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is required: install Rust from https://rustup.rs" >&2
  exit 1
fi
mkdir -p "$prefix"
prefix="$(cd "$prefix" && pwd)"

cargo install --locked --force ${profile[@]+"${profile[@]}"} --path crates/spalloc-cli --root "$prefix"
if [ "$with_server" = 1 ]; then
  cargo install --locked --force ${profile[@]+"${profile[@]}"} --path crates/spalloc-server --root "$prefix"
fi

docs="$(mktemp -d)"
trap 'rm -rf "$docs"' EXIT
"$prefix/bin/spalloc-cli-docs" "$docs"
man_dir="$prefix/share/man/man1"
bash_dir="$prefix/share/bash-completion/completions"
zsh_dir="$prefix/share/zsh/site-functions"
fish_dir="$prefix/share/fish/vendor_completions.d"
mkdir -p "$man_dir" "$bash_dir" "$zsh_dir" "$fish_dir"
for page in "$docs"/man/*.1; do
  install -m 644 "$page" "$man_dir/"
done
for tool in spalloc spalloc-job spalloc-ps spalloc-machine spalloc-where-is spalloc-config; do
  install -m 644 "$docs/completions/$tool.bash" "$bash_dir/$tool"
  install -m 644 "$docs/completions/_$tool" "$zsh_dir/_$tool"
  install -m 644 "$docs/completions/$tool.fish" "$fish_dir/$tool.fish"
done

echo "Installed the spalloc tools in $prefix/bin, man pages in $man_dir,"
echo "completions for bash, zsh and fish under $prefix/share."
case ":$PATH:" in
  *":$prefix/bin:"*) ;;
  *) echo "Add $prefix/bin to your PATH, e.g.: export PATH=\"$prefix/bin:\$PATH\"" ;;
esac
