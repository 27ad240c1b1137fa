#!/usr/bin/env bash
# Debian's Chromium for tests/report-browser.test.ts (driven by playwright-core with
# executablePath /usr/bin/chromium; Playwright's own browser download does not work here).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  echo "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo present)"
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
  echo "chromium: $(/usr/bin/chromium --version 2>/dev/null)"
else
  echo "chromium: /usr/bin/chromium missing and not root with apt-get; the browser test will fail under CI=true" >&2
fi
