#!/usr/bin/env bash
# Real programs must produce byte-identical output with and without LD_PRELOAD=libhakmem.so.
set -uo pipefail
so="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
work="${TEST_TMPDIR:-$(mktemp -d)}"
cd "$work"
seq 1 200000 | awk '{print ($1 * 7919) % 100003, "line", $1}' > input.txt
cat > prog.c <<'C'
#include <stdio.h>
int main(void) { printf("hello from gcc\n"); return 0; }
C
git init -q repo && git -C repo -c user.email=t@t -c user.name=t commit -q --allow-empty -m init

commands=(
  "python3 -c 'import json,random;random.seed(1);d=[{str(i):[random.random()]*(i%50)} for i in range(100000)];print(len(json.dumps(d)))'"
  "perl -e 'my %h; \$h{\$_}=[1..10] for 1..100000; my \$s=0; \$s+=scalar(@{\$h{\$_}}) for keys %h; print \"\$s\\n\"'"
  "sort -n input.txt | md5sum"
  "sort -k3 input.txt | tail -3"
  "sqlite3 :memory: 'create table t(a,b); insert into t select value, hex(randomblob(20)) from generate_series(1,50000); select count(*), sum(a) from t; select count(distinct b) > 49000 from t;'"
  "git -C repo log --format=%s"
  "sh -c 'gcc -O2 prog.c -o prog && ./prog'"
)
failed=0
for cmd in "${commands[@]}"; do
  expected=$(bash -c "$cmd" 2>&1)
  actual=$(LD_PRELOAD="$so" bash -c "$cmd" 2>&1)
  if [ "$expected" == "$actual" ] && [ -n "$expected" ]; then
    echo "same: $cmd"
  else
    echo "DIFFERENT: $cmd"
    echo "  without: $(echo "$expected" | tail -2)"
    echo "  with:    $(echo "$actual" | tail -2)"
    failed=1
  fi
done
# Proof that the preload is in effect: hakmem, unlike glibc, names a foreign pointer and aborts.
message=$(LD_PRELOAD="$so" python3 -c 'import ctypes; ctypes.CDLL(None).free(ctypes.c_void_p(0x7000dead0000))' 2>&1)
if [[ "$message" != *"hakmem: free of an invalid pointer at 0x7000dead0000"* ]]; then
  echo "DIFFERENT: foreign free was not caught by hakmem: $message"
  failed=1
fi
exit $failed
