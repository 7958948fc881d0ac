#!/usr/bin/env bash
# The hakmem_config CLI and the hakmem launcher, end to end. Args: hakmem_config, docs/ENV.md,
# hakmem.sh, libhakmem.so.
set -uo pipefail
cli=$1 env_md=$2 launcher=$3 so=$4
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
out=$TEST_TMPDIR/out err=$TEST_TMPDIR/err

# expect STATUS COMMAND...: runs COMMAND with an empty environment but for what it sets.
expect() {
  local want=$1
  shift
  env -i "$@" >"$out" 2>"$err"
  local got=$?
  [ "$got" -eq "$want" ] || fail "exit $got, expected $want: $* (stderr: $(cat "$err"))"
}

expect 0 "$cli" list
for name in HAKMEM_PURGE_DELAY_MS HAKMEM_STATS HAKMEM_CRASH_HANDLER HAKMEM_PROFILE; do
  grep -q "^$name " "$out" || fail "list lacks $name"
done

expect 0 "$cli" list --markdown
diff -u "$env_md" "$out" >&2 || fail "docs/ENV.md is stale: bazel run //tools:hakmem_config -- list --markdown > docs/ENV.md"

expect 0 HAKMEM_PURGE_DELAY_MS=5 "$cli" validate
grep -q "0 error(s), 0 warning(s)" "$out" || fail "clean environment: $(cat "$out")"

expect 1 HAKMEM_PURGE_DELAY_MS=soon "$cli" validate
grep -q 'hakmem: invalid HAKMEM_PURGE_DELAY_MS="soon"' "$err" || fail "no warning for a bad value"

expect 0 HAKMEM_PURGE_DELAY=5 "$cli" validate
grep -q "unknown variable HAKMEM_PURGE_DELAY ignored (did you mean HAKMEM_PURGE_DELAY_MS?)" "$err" ||
  fail "no closest name for an unknown variable: $(cat "$err")"
expect 1 HAKMEM_PURGE_DELAY=5 "$cli" validate --strict
expect 1 HAKMEM_PURGE_DELAY=5 "$cli" validate --strict --quiet
[ ! -s "$out" ] && [ ! -s "$err" ] || fail "--quiet printed something"
expect 1 HAKMEM_PROFILE=fast "$cli" validate

cat >"$TEST_TMPDIR/good.env" <<'CONF'
# comments and blank lines are skipped
HAKMEM_PROFILE=low-memory

export HAKMEM_SEGMENT_CACHE=4
CONF
expect 0 "$cli" validate --strict "$TEST_TMPDIR/good.env"
printf 'HAKMEM_MID_CACHE_KB=1k\nHAKMEM_STATZ=1\n' >"$TEST_TMPDIR/bad.env"
expect 1 "$cli" validate "$TEST_TMPDIR/bad.env"
grep -q "1 error(s), 1 warning(s)" "$out" || fail "file with one error and one warning: $(cat "$out")"
expect 2 "$cli" validate "$TEST_TMPDIR/missing.env"
expect 2 "$cli" frobnicate

expect 0 "$cli" explain HAKMEM_PURGE_DELAY_MS
grep -q "low-memory: 20" "$out" || fail "explain lacks the profile defaults: $(cat "$out")"
expect 0 "$cli" explain HAKMEM_PROFILE
expect 1 "$cli" explain HAKMEM_PURGE_DELAY
grep -q "did you mean HAKMEM_PURGE_DELAY_MS" "$err" || fail "explain of an unknown name"

# The launcher preloads hakmem, which reads the caller's HAKMEM_* variables.
expect 0 HAKMEM_BOGUS_KNOB=1 PATH=/usr/bin:/bin "$launcher" "$so" ls /
grep -q "hakmem: unknown variable HAKMEM_BOGUS_KNOB" "$err" || fail "launcher: hakmem not preloaded"
expect 2 "$launcher" "$so"

# HAKMEM_STATS=1 prints the report at exit; nothing without it. (Not with coreutils: they close
# stderr in an atexit handler, before library destructors run.)
prog=(perl -e 'my @a = map { "x" x $_ } 1..2000; print scalar(@a), "\n"')
expect 0 HAKMEM_STATS=1 PATH=/usr/bin:/bin "$launcher" "$so" "${prog[@]}"
grep -q "^hakmem: stats (pid [0-9]*, profile default)" "$err" || fail "no stats report: $(cat "$err")"
grep -q "^  class " "$err" || fail "stats report without the class table"
expect 0 HAKMEM_PROFILE=debug PATH=/usr/bin:/bin "$launcher" "$so" "${prog[@]}"
grep -q "profile debug" "$err" || fail "the debug profile turns the report on"
expect 0 PATH=/usr/bin:/bin "$launcher" "$so" "${prog[@]}"
[ ! -s "$err" ] || fail "stderr without HAKMEM_STATS: $(cat "$err")"

[ "$failures" -eq 0 ] && echo PASS
exit $((failures > 0))
