#!/usr/bin/env bash
# Runs preload_client with libhakmem.so preloaded; it checks itself and exits non-zero on failure.
set -euo pipefail
so="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
plugin="$(cd "$(dirname "$3")" && pwd)/$(basename "$3")"
LD_PRELOAD="$so" "$2" "$plugin"
