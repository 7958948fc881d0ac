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
# HAKMEM_WRAP_*: with ranges routed to glibc, the same programs give the same output.
for wrap in "HAKMEM_WRAP_TINY=0" "HAKMEM_WRAP_MID=0 HAKMEM_WRAP_LARGE=0" \
    "HAKMEM_WRAP_TINY=0 HAKMEM_WRAP_MID=0 HAKMEM_WRAP_LARGE=0 HAKMEM_WRAP_HUGE=0"; do
  for cmd in "${commands[0]}" "${commands[2]}" "${commands[4]}"; do
    expected=$(bash -c "$cmd" 2>&1)
    actual=$(env $wrap LD_PRELOAD="$so" bash -c "$cmd" 2>&1)
    if [ "$expected" != "$actual" ]; then
      echo "DIFFERENT with $wrap: $cmd"
      echo "  with: $(echo "$actual" | tail -2)"
      failed=1
    fi
  done
done
# What strict overcommit charges a preloaded program (its private writable memory, VmData) stays
# near what the program uses: the 384 MiB address maps are read-only zero pages but for the few
# pages describing hakmem's regions (segment.h). They were .bss, charged in full: 438 MiB.
vm_data=$(LD_PRELOAD="$so" awk '/^VmData:/ {print $2}' /proc/self/status)
if [ -z "$vm_data" ] || [ "$vm_data" -gt 131072 ]; then
  echo "DIFFERENT: a preloaded awk has VmData of ${vm_data:-?} kB, above 128 MiB"
  failed=1
fi
# Proof that the preload is in effect: hakmem, unlike glibc, names a foreign pointer and aborts.
message=$(LD_PRELOAD="$so" python3 -c 'import ctypes; ctypes.CDLL(None).free(ctypes.c_void_p(0x7000dead0000))' 2>&1)
if [[ "$message" != *"hakmem: invalid pointer at 0x7000dead0000: free() of a pointer not allocated by hakmem"* ]]; then
  echo "DIFFERENT: foreign free was not caught by hakmem: $message"
  failed=1
fi
# The crash handler, preloaded: a fault in hakmem's code (free of a non-canonical pointer reads
# past the segment map) and one in the program's code on a hakmem page.
message=$(LD_PRELOAD="$so" python3 -c 'import ctypes; ctypes.CDLL(None).free(ctypes.c_void_p(0xffff800000001000))' 2>&1)
# (The kernel reports a non-canonical access as a protection fault at address 0.)
if [[ "$message" != *"hakmem: SIGSEGV (invalid memory access) at address "*" in hakmem's code; the address is not hakmem memory"* ]]; then
  echo "DIFFERENT: crash in hakmem's code: $message"
  failed=1
fi
message=$(LD_PRELOAD="$so" python3 -c '
import ctypes, mmap
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
p = libc.malloc(8192)
libc.mprotect(ctypes.c_void_p(p), 4096, 0)
ctypes.c_char.from_address(p).value = b"x"
' 2>&1)
if [[ "$message" != *"outside hakmem's code; the address is hakmem memory: a mid-block slab of 8192-byte blocks (class 55)"* ]]; then
  echo "DIFFERENT: crash on a hakmem page: $message"
  failed=1
fi
exit $failed
