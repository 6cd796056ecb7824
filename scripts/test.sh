#!/usr/bin/env bash
# Set up .venv if needed, check style, and run the whole test suite. Run as root where apt-get
# exists, it also installs the broker, the browser and Aravis (its fake GigE Vision camera, and
# what PyGObject builds against) that the system, page and camera tests need; otherwise the run
# ends by naming what was skipped and the command that installs it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
missing=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium chromium-driver)
command -v arv-fake-gv-camera-0.8 >/dev/null 2>&1 || missing+=(aravis-tools gir1.2-aravis-0.8 \
    libgirepository1.0-dev libcairo2-dev pkg-config)
if [ ${#missing[@]} -gt 0 ] && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${missing[*]} for the system and page tests"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# The genicam extra (PyGObject) builds against the GObject-introspection packages above.
if ! .venv/bin/python -c "import gi" 2>/dev/null && command -v arv-fake-gv-camera-0.8 >/dev/null 2>&1; then
    .venv/bin/python -m pip install --quiet -e ".[genicam]" || echo "genicam extra not installed"
fi
.venv/bin/ruff check .
.venv/bin/python -m pytest "$@"
