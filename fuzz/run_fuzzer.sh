#!/usr/bin/env bash
# Test driver for the targets of hakmem_fuzzer (fuzz/fuzz.bzl).
#
#   run_fuzzer.sh --mode=fuzz|replay --fuzzer=BIN [--runner=WRAPPER] [--dict=FILE]
#                 [--max_total_time=S] [--rss_limit_mb=M] [--malloc_limit_mb=M]
#                 [--fuzzer_arg=FLAG]... -- SEED_FILE...
#
# replay (every build without libFuzzer): BIN is the replay main; it runs each seed once.
# fuzz (--config=fuzz): BIN is a libFuzzer binary. It fuzzes a scratch copy of the seeds in
# $TEST_TMPDIR for S seconds within the memory bounds, writing crash/leak/timeout/oom reproducers
# to $TEST_UNDECLARED_OUTPUTS_DIR (bazel-testlogs/<pkg>/<test>/test.outputs/), then runs the
# checked-in seeds once more as they are.
# WRAPPER (the aarch64 config's qemu wrapper) runs BIN where this machine cannot run it directly.
set -euo pipefail

mode=
fuzzer=
runner=()
dict=
max_total_time=20
rss_limit_mb=2560
malloc_limit_mb=1024
fuzzer_args=()
while [ "$#" -gt 0 ]; do
  case "$1" in
    --mode=*) mode=${1#*=} ;;
    --fuzzer=*) fuzzer=${1#*=} ;;
    --runner=*) runner=("${1#*=}") ;;
    --dict=*) dict=${1#*=} ;;
    --max_total_time=*) max_total_time=${1#*=} ;;
    --rss_limit_mb=*) rss_limit_mb=${1#*=} ;;
    --malloc_limit_mb=*) malloc_limit_mb=${1#*=} ;;
    --fuzzer_arg=*) fuzzer_args+=("${1#*=}") ;;
    --) shift; break ;;
    *) echo "run_fuzzer.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
seeds=("$@")
if [ -z "$fuzzer" ] || [ "${#seeds[@]}" -eq 0 ]; then
  echo "run_fuzzer.sh: need --fuzzer and at least one seed file" >&2
  exit 2
fi

case "$mode" in
  replay)
    exec "${runner[@]}" "$fuzzer" "${seeds[@]}"
    ;;
  fuzz)
    scratch="${TEST_TMPDIR:-$(mktemp -d)}/corpus"
    artifacts="${TEST_UNDECLARED_OUTPUTS_DIR:-${TEST_TMPDIR:-/tmp}}"
    rm -rf "$scratch"
    mkdir -p "$scratch" "$artifacts"
    cp -- "${seeds[@]}" "$scratch/"
    chmod -R u+w "$scratch"
    flags=(
      "-max_total_time=$max_total_time"
      "-rss_limit_mb=$rss_limit_mb"
      "-malloc_limit_mb=$malloc_limit_mb"
      "-timeout=60"
      "-print_final_stats=1"
      "-artifact_prefix=$artifacts/"
    )
    [ -n "$dict" ] && flags+=("-dict=$dict")
    flags+=("${fuzzer_args[@]}")
    echo "run_fuzzer.sh: $fuzzer ${flags[*]} $scratch" >&2
    if ! "${runner[@]}" "$fuzzer" "${flags[@]}" "$scratch"; then
      echo "run_fuzzer.sh: the fuzzer failed; reproducers are in $artifacts" \
        "(bazel-testlogs/<pkg>/<test>/test.outputs/)" >&2
      exit 1
    fi
    echo "run_fuzzer.sh: $(ls "$scratch" | wc -l) inputs in the scratch corpus;" \
      "replaying the checked-in seeds" >&2
    exec "${runner[@]}" "$fuzzer" "${fuzzer_args[@]}" "${seeds[@]}"
    ;;
  *)
    echo "run_fuzzer.sh: --mode must be fuzz or replay, not '$mode'" >&2
    exit 2
    ;;
esac
