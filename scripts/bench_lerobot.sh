#!/usr/bin/env bash
# The policy chunk bench against LeRobot's own DiffusionPolicy (the honest peer,
# issue 18): a separate virtual environment with bench/requirements-lerobot.txt
# (LeRobot pins an older torch than .venv's; ~8 GB with its CUDA wheels, a few
# minutes the first time), then bench/bench_policy.py's chunk part run by it.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${LEROBOT_VENV:-out/lerobot-venv}
PYTHON=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
  echo "[bench-lerobot] creating virtual environment $VENV"
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.requirements.sha256"
want=$(sha256sum bench/requirements-lerobot.txt | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[bench-lerobot] installing bench/requirements-lerobot.txt (first run: several minutes)"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -r bench/requirements-lerobot.txt
  echo "$want" > "$stamp"
fi
PYTHONPATH=. "$VENV/bin/python" bench/bench_policy.py --skip-graph "$@"
