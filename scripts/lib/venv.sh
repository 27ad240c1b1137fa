# Sourced by scripts/ci.d/*.sh: one Python tool in a virtualenv of its own under the de-lab cache
# (~/.cache/de-lab/<dir>), so neither CI nor a user's Python gets packages it did not ask for.
#
#   ensure_venv NAME DIR CHECK WHY-IF-MISSING PIP-SPEC...
#
# NAME labels the messages; CHECK is Python that exits 0 when the install is whole (the right
# versions import); WHY-IF-MISSING says what goes without it. A no-op when installed. Complete only
# once the marker exists: a killed install is redone, never half-used. A missing python3 or venv
# module is a warning, not a failure: the tests that need the tool skip, or say what is missing.
ensure_venv() {
  local name=$1 dir=$2 check=$3 missing=$4
  shift 4
  local cache="${DE_LAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/de-lab}"
  local venv="$cache/$dir" py="$cache/$dir/bin/python" base="${VENV_BASE_PYTHON:-python3}"
  # Some tools make folders in the temp dir at import (fakesnow: fakesnow_bucket_*) that nothing
  # removes: every Python run here gets a TMPDIR of its own, removed on return.
  local tmp
  tmp=$(mktemp -d -t "de-lab-$name-XXXXXX")
  local status=0
  (
    export TMPDIR="$tmp"
    if [ -f "$venv/.complete" ] && "$py" -c "$check" 2>/dev/null; then exit 0; fi
    if ! command -v "$base" >/dev/null; then
      echo "$name: no python3 on PATH — $missing" >&2
      exit 0
    fi
    echo "$name: installing $* into $venv (once)"
    rm -rf "$venv"
    if ! "$base" -m venv "$venv"; then
      rm -rf "$venv"
      echo "$name: '$base -m venv' failed (on Debian: apt-get install python3-venv) — $missing" >&2
      exit 0
    fi
    "$py" -m pip install --quiet --disable-pip-version-check "$@"
    "$py" -c "$check"
    touch "$venv/.complete"
    echo "$name: ready"
  ) || status=$?
  rm -rf "$tmp"
  return $status
}
