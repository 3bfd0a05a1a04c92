#!/usr/bin/env bash
# Make sure Debian's chromium is installed for the browser tests (tests/health/test_health_browser.py).
# Playwright drives this binary directly; `playwright install` is never used.
# Nothing to do when the user left the browser tests out (COACHBRIDGE_TEST_SKIP=browser).
set -euo pipefail
skip="${COACHBRIDGE_TEST_SKIP:-}"
skip="${skip// /}"
case ",${skip,,}," in
  *,browser,*) exit 0 ;;
esac
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
  SUDO=sudo
else
  SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends chromium
