#!/usr/bin/env bash
# Creates .venv and installs sftboot with everything it needs, at the exact versions in requirements.lock. Safe to rerun.
# torch is installed first from a pin (a CPU build here); GPU users override it, e.g.
#   TORCH_SPEC="torch==2.9.1 --index-url https://download.pytorch.org/whl/cu128" bash setup.sh
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
EXTRAS="${EXTRAS:-dev}"

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# shellcheck disable=SC2086
.venv/bin/python -m pip install --quiet $TORCH_SPEC
.venv/bin/python -m pip install --quiet -c requirements.lock -e ".[${EXTRAS}]"
echo "setup: .venv ready ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
