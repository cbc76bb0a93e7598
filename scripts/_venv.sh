# Sourced by scripts/test and scripts/demo: create .venv/ at the repo root if missing and
# install the project with every extra. Re-installs only when pyproject.toml changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "creating $VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi
STAMP="$VENV/.simlens-installed"
HASH="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$HASH" ]; then
  echo "installing simlens + probe with extras [tf,test,dev,docs] into $VENV"
  "$VENV/bin/python" -m pip install --quiet -e "$ROOT[tf,test,dev,docs]"
  echo "$HASH" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
cd "$ROOT"
