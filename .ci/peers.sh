#!/usr/bin/env bash
# Protocol peers that integration tests start themselves: PostgreSQL (tests/integration/peers.py
# runs initdb + pg_ctl in a temp dir). Idempotent and quiet: installs only what is missing.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

need=()
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
command -v runuser >/dev/null 2>&1 || need+=(util-linux)

if [ ${#need[@]} -gt 0 ]; then
    echo "peers.sh: installing ${need[*]}"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Headless Chromium for tests/integration/test_dashboard_browser.py (dashboard rendering).
if ! command -v chromium >/dev/null 2>&1; then
    echo "peers.sh: installing chromium"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

# Mosquitto for tests/integration/test_connectors_mqtt.py (started by the `mosquitto` fixture
# in tests/integration/peers.py on a free port with a generated config).
if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then
    echo "peers.sh: installing mosquitto"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends mosquitto >/dev/null
fi

# Tesseract with the simplified-Chinese model (connectors/documents OCR) and a CJK font the
# document tests render their scanned pages and PDFs with.
need=()
command -v tesseract >/dev/null 2>&1 || need+=(tesseract-ocr)
[ -f /usr/share/tesseract-ocr/5/tessdata/chi_sim.traineddata ] || compgen -G "/usr/share/tesseract-ocr/*/tessdata/chi_sim.traineddata" >/dev/null || need+=(tesseract-ocr-chi-sim)
[ -f /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc ] || need+=(fonts-wqy-zenhei)
if [ ${#need[@]} -gt 0 ]; then
    echo "peers.sh: installing ${need[*]}"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
