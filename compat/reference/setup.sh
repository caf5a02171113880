#!/usr/bin/env bash
# Installs the pinned Python reference from PyPI into two virtualenvs (quiet; safe to run again):
#   $SPALLOC_REF_HOME/server   spalloc-server==1!7.0.0 (the reference server)
#   $SPALLOC_REF_HOME/client   spalloc==1!7.4.1 (the reference tools and spalloc_client library)
# Two venvs, because the server pins older versions of the SpiNNaker packages both depend on.
# SPALLOC_REF_HOME defaults to /tmp/spalloc-ref; PYTHON (default python3) makes the venvs. A venv
# that already holds its pinned version is kept, so this returns at once after the first time
# (about 20 s). Where `python3 -m venv` is missing (Debian without python3-venv) it installs that
# package with apt-get when it can (as root or with password-less sudo).
set -euo pipefail
home=${SPALLOC_REF_HOME:-/tmp/spalloc-ref}
python=${PYTHON:-python3}
mkdir -p "$home"

installed() {  # installed VENV DISTRIBUTION VERSION: the venv has exactly that version
  [ -x "$1/bin/python" ] &&
    "$1/bin/python" -c 'import sys; from importlib.metadata import version
sys.exit(version(sys.argv[1]) != sys.argv[2])' "$2" "$3" 2>/dev/null
}

apt_install_venv() {  # installs python3-venv with apt-get, if this machine allows it
  local minor apt=()
  command -v apt-get >/dev/null || return 0
  if [ "$(id -u)" = 0 ]; then apt=(apt-get); elif sudo -n true 2>/dev/null; then apt=(sudo -n apt-get); fi
  [ ${#apt[@]} -gt 0 ] || return 0
  minor=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  echo "compat/reference/setup.sh: installing python$minor-venv (apt-get)" >&2
  "${apt[@]}" update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -qq "python$minor-venv" >/dev/null 2>&1 ||
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -qq python3-venv >/dev/null 2>&1 || true
}

make_venv() {  # make_venv DIR
  rm -rf "$1"
  "$python" -m venv "$1" >/dev/null 2>&1 && return 0
  apt_install_venv
  rm -rf "$1"
  "$python" -m venv "$1" ||
    { echo "compat/reference/setup.sh: '$python -m venv' failed (install python3-venv)" >&2; exit 1; }
}

install() {  # install NAME DISTRIBUTION VERSION
  local venv=$home/$1
  installed "$venv" "$2" "$3" && return 0
  echo "compat/reference/setup.sh: installing $2==$3 into $venv" >&2
  make_venv "$venv"
  if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$2==$3" \
      > "$home/pip-$1.log" 2>&1; then
    echo "compat/reference/setup.sh: pip install $2==$3 failed; see $home/pip-$1.log" >&2
    rm -rf "$venv"
    exit 1
  fi
}

install server spalloc-server '1!7.0.0'
install client spalloc '1!7.4.1'
