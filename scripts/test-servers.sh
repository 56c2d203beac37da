#!/usr/bin/env bash
# Installs the real servers some tests drive, from Debian's packages, when they are
# missing: dovecot (the IMAP server of the bounce and PEC tests) and Chromium with
# its driver (the dashboard tests). It only installs; the tests start their own
# throw-away instances on loopback.
#
# Without root or apt-get (a developer laptop) it installs nothing and says so:
# those tests then skip with a message, unless GMP_TEST_REQUIRE_IMAP=1 /
# GMP_TEST_REQUIRE_CHROMIUM=1 (set by .ci/run) make the absence a failure.
set -uo pipefail

missing=()
command -v /usr/sbin/dovecot >/dev/null 2>&1 || missing+=(dovecot-imapd)
command -v /usr/bin/chromium >/dev/null 2>&1 || missing+=(chromium)
command -v /usr/bin/chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "test-servers: not installing ${missing[*]} (needs root and apt-get); the tests that need them will skip" >&2
  exit 0
fi
echo "test-servers: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# The package's own service must not start: the tests run their own instances.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/test-servers-apt.log 2>&1; then
  apt-get update -q >>/tmp/test-servers-apt.log 2>&1
  apt-get install -y -q --no-install-recommends "${missing[@]}" >>/tmp/test-servers-apt.log 2>&1 \
    || { echo "test-servers: apt-get failed, see /tmp/test-servers-apt.log" >&2; exit 1; }
fi
