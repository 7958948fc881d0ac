#!/usr/bin/env bash
# hakmem: runs a command with libhakmem.so preloaded, in the directory `bazel run` was called
# from, with the caller's environment (HAKMEM_* included).
#   bazel run --config=release //tools:hakmem -- python3 script.py
set -euo pipefail
so=$1  # passed by the BUILD rule, relative to the runfiles directory
shift
[ "$#" -gt 0 ] || { echo "usage: bazel run //tools:hakmem -- COMMAND [ARGS...]" >&2; exit 2; }
so=$(realpath "$so")
cd "${BUILD_WORKING_DIRECTORY:-.}"
export LD_PRELOAD="$so${LD_PRELOAD:+:$LD_PRELOAD}"
exec "$@"
