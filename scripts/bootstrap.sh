#!/usr/bin/env bash
# Idempotent set-up of the pip-only world: Debian libraries (when root) and a
# virtual environment with every pinned Python dependency (requirements.txt)
# and the project's ROS 2 interface packages built into it.
# Re-running it is cheap: pip runs again only when requirements.txt changed.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
DEBIAN_PACKAGES=(libusb-1.0-0 libegl1 libegl-mesa0 libgl1 libosmesa6 ffmpeg cmake g++)

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for p in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = "0" ]; then
    echo "[bootstrap] installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "[bootstrap] missing Debian packages; install them with:" >&2
    echo "    sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "[bootstrap] creating virtual environment $VENV"
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.requirements.sha256"
want=$(sha256sum requirements.txt setup.py | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  # The environment takes ~4.5 GB (torch, open3d, mujoco, ray); say so plainly
  # rather than let pip fail half-way with "No space left on device".
  free_kb=$(df -Pk "$VENV" | awk 'NR==2 {print $4}')
  if [ "${free_kb:-0}" -lt $((6 * 1024 * 1024)) ]; then
    echo "[bootstrap] only $((free_kb / 1024)) MB free where $VENV lives; the pinned" \
      "dependencies need ~4.5 GB (6 GB asked for headroom). Free some space and re-run." >&2
    exit 1
  fi
  echo "[bootstrap] installing pinned Python dependencies (first run takes a few minutes)"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q --no-cache-dir -r requirements.txt
  "$VENV/bin/python" -m pip install -q --no-deps --no-build-isolation -e .
  echo "$want" > "$stamp"
fi
# ROS 2 interface packages (robot_memory_interfaces, tf2_msgs): built into the
# venv with CMake; rebuilt only when an interface file changed.
"$VENV/bin/python" scripts/build_interfaces.py --venv "$VENV"
echo "[bootstrap] environment ready: $VENV"
