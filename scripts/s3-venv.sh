#!/bin/sh
# Idempotently create .venv-s3 (repo root) with a pinned moto for the S3 test
# server (scripts/s3-server.py). Needs only python3 (>= 3.9) and access to PyPI.
#
#   sh scripts/s3-venv.sh          # lean install (default, ~12 s, ~140 MB)
#   S3_VENV_FULL=1 sh scripts/s3-venv.sh   # full moto[server] (~32 s, ~320 MB)
#
# Lean = moto[s3] + Flask + flask-cors: exactly what moto's werkzeug app needs
# to serve S3. moto[server] additionally pulls cfn-lint, docker, sympy,
# aws-xray-sdk, ... for the other ~150 services, none of which S3 uses.
# Both variants are pinned to the same moto release.
#
# Re-running is a no-op once the venv holds the pinned versions (checked via a
# stamp file that records the exact requirement line).
set -eu

MOTO_VERSION=5.2.5
WERKZEUG_VERSION=3.1.9
FLASK_VERSION=3.1.3
FLASK_CORS_VERSION=6.0.5

ROOT=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
VENV="${S3_VENV_DIR:-$ROOT/.venv-s3}"
PYTHON="${PYTHON:-python3}"

if [ "${S3_VENV_FULL:-0}" = "1" ]; then
  REQS="moto[server]==$MOTO_VERSION Werkzeug==$WERKZEUG_VERSION Flask==$FLASK_VERSION flask-cors==$FLASK_CORS_VERSION"
else
  REQS="moto[s3]==$MOTO_VERSION Werkzeug==$WERKZEUG_VERSION Flask==$FLASK_VERSION flask-cors==$FLASK_CORS_VERSION"
fi
STAMP="$VENV/.s3-venv-stamp"

if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$REQS" ] \
   && "$VENV/bin/python" -c "import moto, flask, flask_cors, werkzeug; assert moto.__version__ == '$MOTO_VERSION'" 2>/dev/null; then
  echo "s3-venv: $VENV up to date (moto $MOTO_VERSION)"
  exit 0
fi

echo "s3-venv: installing $REQS into $VENV"
start=$(date +%s)

PSEUDO_MARK="$VENV/.s3-pseudo-venv"
if [ ! -x "$VENV/bin/python" ]; then
  # Debian/Ubuntu system pythons lack ensurepip unless python3-venv is
  # installed; fall back to a pip-less venv driven by the system pip.
  if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
    rm -rf "$VENV"
    if ! "$PYTHON" -m venv --without-pip "$VENV" 2>/dev/null; then
      # No usable venv module at all: a pseudo-venv, i.e. `pip install --target`
      # plus a bin/python wrapper that puts it first on sys.path.
      rm -rf "$VENV"
      echo "s3-venv: $PYTHON cannot create a venv; using pip --target with a bin/python wrapper"
      REAL_PYTHON=$("$PYTHON" -c 'import sys; print(sys.executable)')
      mkdir -p "$VENV/bin" "$VENV/site-packages"
      cat > "$VENV/bin/python" <<EOF
#!/bin/sh
# s3-venv.sh pseudo-venv: $REAL_PYTHON with $VENV/site-packages first on sys.path.
PYTHONPATH="$VENV/site-packages\${PYTHONPATH:+:\$PYTHONPATH}" PYTHONNOUSERSITE=1 exec "$REAL_PYTHON" "\$@"
EOF
      chmod +x "$VENV/bin/python"
      : > "$PSEUDO_MARK"
    fi
  fi
fi

if [ -f "$PSEUDO_MARK" ]; then
  # shellcheck disable=SC2086
  "$PYTHON" -m pip install --quiet --disable-pip-version-check --no-warn-conflicts --upgrade --target "$VENV/site-packages" $REQS
elif "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
  # shellcheck disable=SC2086
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check $REQS
else
  # pip >= 22.3 can install into another interpreter's environment.
  # shellcheck disable=SC2086
  "$PYTHON" -m pip --python "$VENV/bin/python" install --quiet --disable-pip-version-check $REQS
fi

"$VENV/bin/python" -c "import moto, flask, flask_cors, werkzeug; assert moto.__version__ == '$MOTO_VERSION', moto.__version__"
printf '%s' "$REQS" > "$STAMP"
echo "s3-venv: ready in $(( $(date +%s) - start ))s (moto $MOTO_VERSION)"
