#!/usr/bin/env bash
# Chromium for the browser tests (tests/test_page.py): Debian's package, installed when missing and we may
# (root with apt-get). Anywhere else, say what to install; the browser tests then skip with that reason.
set -u
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || [[ -n ${CARMASK_CHROMIUM:-} ]]; then
    exit 0
fi
if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium for the browser tests (apt-get install chromium)"
    if (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/tmp/carmask-chromium.log 2>&1; then
        exit 0
    fi
    echo "could not install chromium (see /tmp/carmask-chromium.log); the browser tests will skip"
else
    echo "no chromium: install it (Debian: sudo apt-get install chromium) to run the browser tests; they skip"
fi
exit 0
