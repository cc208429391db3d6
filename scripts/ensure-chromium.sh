#!/usr/bin/env sh
# Debian's chromium + chromium-driver for the end-to-end browser test (tests/test_web_browser.py).
# Playwright's python package drives /usr/bin/chromium; no browser is ever downloaded by Playwright.
# Installs with apt-get when missing (as root, or with password-less sudo); otherwise warns and the
# browser test is skipped with a message.
set -eu

if [ -x /usr/bin/chromium ] && command -v chromedriver >/dev/null 2>&1; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "warning: chromium is missing and there is no apt-get; install chromium yourself" \
         "(the browser test will be skipped)" >&2
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        echo "warning: chromium is missing; run as root: apt-get install -y chromium chromium-driver" \
             "(the browser test will be skipped)" >&2
        exit 0
    fi
fi
echo "installing chromium + chromium-driver with apt-get"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends chromium chromium-driver
/usr/bin/chromium --version
