#!/usr/bin/env bash
# libhakmem.so must export exactly the glibc malloc family and nothing else.
set -euo pipefail
so="$1"
expected="aligned_alloc calloc cfree free free_aligned_sized free_sized mallinfo mallinfo2 malloc malloc_info malloc_stats malloc_trim malloc_usable_size mallopt memalign posix_memalign pvalloc realloc reallocarray valloc"
actual=$(nm -D --defined-only "$so" | awk '$2 ~ /^[A-Z]$/ && $2 != "A" {print $3}' | sort | tr '\n' ' ' | sed 's/ $//')
if [ "$actual" != "$expected" ]; then
  echo "exported symbols differ"
  echo "  expected: $expected"
  echo "  actual:   $actual"
  exit 1
fi
echo "exports OK: $actual"
