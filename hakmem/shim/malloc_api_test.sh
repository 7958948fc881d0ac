#!/usr/bin/env bash
# Runs malloc_api_client with libhakmem.so preloaded, then its free_sized misuse, which a checked
# build ("checked": the default and debug configs, or secure) must abort with hakmem's line.
# Args: libhakmem.so, malloc_api_client, "release" or "checked", "secure" or "plain".
set -uo pipefail
so="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
LD_PRELOAD="$so" "$2" || exit 1
output=$(LD_PRELOAD="$so" "$2" oversized 2>&1)
status=$?
if [ "$3" = checked ] || [ "$4" = secure ]; then
  [ "$status" -ne 0 ] || { echo "FAIL: oversized free_sized was accepted"; exit 1; }
  grep -q "^hakmem: free_sized of a block" <<<"$output" || { echo "FAIL: message: $output"; exit 1; }
else
  [ "$status" -eq 0 ] || { echo "FAIL: release build checked free_sized: $output"; exit 1; }
fi
echo PASS
