#!/usr/bin/env bash
# What `make test` needs from Debian, installed when missing (as root, or through sudo):
# - chromium: the browser tests drive Debian's Chromium through Playwright (never
#   `playwright install`);
# - postgresql + postgresql-common: the PostgreSQL store's tests start a throw-away server
#   (`pg_virtualenv`, or initdb/pg_ctl in a temporary folder) and fail, never skip, without one.
set -euo pipefail

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
if ! command -v pg_virtualenv >/dev/null; then
  missing+=(postgresql-common)
fi
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  missing+=(postgresql)
fi
if [ "${#missing[@]}" = 0 ]; then
  exit 0
fi

echo "installing Debian packages: ${missing[*]}" >&2
if [ "$(id -u)" = 0 ]; then
  as_root=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  as_root=(sudo)
else
  echo "install Debian's ${missing[*]} (apt-get install ${missing[*]}) to run the tests" >&2
  exit 1
fi
"${as_root[@]}" apt-get update -q
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
  "${missing[@]}"
