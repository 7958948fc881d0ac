#!/usr/bin/env bash
# What a release libhakmem.so must not carry: debug strings (assert texts, debug counters) and
# getenv on allocation paths. Args: libhakmem.so, getenv_counter.so, getenv_probe, and "release"
# or "checked" (the default config, where the assert texts must be present: the string check
# proves it can fail).
set -uo pipefail
so=$(realpath "$1") counter=$(realpath "$2") probe=$3 mode=$4
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

asserts=$(strings -a "$so" | grep -c "assertion failed")
if [ "$mode" = release ]; then
  [ "$asserts" -eq 0 ] || fail "release .so holds assert strings: $(strings -a "$so" | grep "assertion failed" | head -3)"
  debug_symbols=$(nm "$so" 2>/dev/null | grep -c "hak_debug_")
  [ "$debug_symbols" -eq 0 ] || fail "release .so holds debug counters: $(nm "$so" | grep hak_debug_ | head -3)"
else
  [ "$asserts" -gt 0 ] || fail "checked build without assert strings: the release check would prove nothing"
fi

# Every call of getenv sits in the configuration box (config.c's functions), which runs once.
callers=$(objdump -d --no-show-raw-insn "$so" |
  awk '/^[0-9a-f]+ <.*>:$/ { fn = $2 } /call.*<getenv@plt>/ { print fn }' | sort -u)
[ -n "$callers" ] || fail "no getenv call found in $so: the objdump check is broken"
for fn in $callers; do
  case "$fn" in
    "<plain_getenv>:" | "<hak_config_init>:" | "<hak_config_init_once>:" | "<init_from_environment>:") ;;
    *) fail "getenv called from $fn" ;;
  esac
done

# And at run time: no getenv during 20000 rounds of every allocation path.
output=$(LD_PRELOAD="$so:$counter" "$probe" 2>&1) || fail "getenv_probe: $output"
echo "$output"

[ "$failures" -eq 0 ] && echo PASS
exit $((failures > 0))
