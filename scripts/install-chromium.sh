#!/usr/bin/env bash
# The old name: everything the tests need from Debian (Chromium and PostgreSQL) is installed by
# install-system-deps.sh.
set -euo pipefail
exec bash "$(dirname "$0")/install-system-deps.sh" "$@"
