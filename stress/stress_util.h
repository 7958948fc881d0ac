// Shared by the stress targets: a run deadline, stamped blocks that prove their contents survived,
// and the end-of-run heap check. Targets call the hak_* API of the static library directly, so
// sanitizer builds instrument the allocator itself.
#ifndef HAKMEM_STRESS_STRESS_UTIL_H
#define HAKMEM_STRESS_STRESS_UTIL_H

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_util.h"
#include "hakmem/check.h"
#include "hakmem/hakmem.h"

#define STRESS_MIN_BLOCK 24  // room for the stamp and a distinct last byte

static double stress_deadline;
static atomic_ulong stress_ops;

// Reads --seconds (default `seconds`) and starts the clock.
static inline void stress_start(int argc, char** argv, double seconds) {
  stress_deadline = bench_now() + (double)bench_arg(argc, argv, "seconds", (long)seconds);
}

static inline int stress_running(void) { return bench_now() < stress_deadline; }

static inline uint64_t stress_stamp_of(const void* p, size_t n) {
  return ((uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ull) ^ n;
}

// Writes the block's size, a stamp of its address and size, and a last byte derived from both.
static inline void stress_stamp(void* p, size_t n) {
  uint64_t head[2] = {n, stress_stamp_of(p, n)};
  memcpy(p, head, sizeof head);
  ((unsigned char*)p)[n - 1] = (unsigned char)head[1];
}

// Aborts with a message unless p still holds the stamp that stress_stamp wrote; returns its size.
static inline size_t stress_verify(const void* p) {
  uint64_t head[2];
  memcpy(head, p, sizeof head);
  size_t n = (size_t)head[0];
  if (n < STRESS_MIN_BLOCK || n > ((size_t)1 << 30) || head[1] != stress_stamp_of(p, n) ||
      ((const unsigned char*)p)[n - 1] != (unsigned char)head[1]) {
    fprintf(stderr, "stress: block %p was overwritten (size field %zu)\n", p, n);
    abort();
  }
  return n;
}

static inline void* stress_alloc(size_t n) {
  void* p = hak_malloc(n);
  if (p == NULL) {
    fprintf(stderr, "stress: hak_malloc(%zu) failed\n", n);
    abort();
  }
  stress_stamp(p, n);
  return p;
}

static inline void stress_free(void* p) {
  if (p != NULL) stress_verify(p);
  hak_free(p);
}

// Sizes mostly tiny, some mid, a few above the mid range.
static inline size_t stress_size(uint64_t r) {
  unsigned pick = (unsigned)(r & 255);
  if (pick < 200) return STRESS_MIN_BLOCK + (size_t)((r >> 8) % 1000);
  if (pick < 252) return 1024 + (size_t)((r >> 8) % (63 * 1024));
  return 65536 + (size_t)((r >> 8) % (1 << 20));
}

// After the workers are joined and every block freed: trims (collecting every remote free and
// adopting every abandoned segment), walks the heap and checks nothing is left live or remote.
static inline int stress_finish(const char* name) {
  hak_trim();
  hak_check_report_t report;
  if (!hak_check_heap(&report)) {
    fprintf(stderr, "%s: heap check failed: %s\n", name, report.error);
    return 1;
  }
  if (report.live_blocks != 0 || report.large_blocks != 0 || report.huge_blocks != 0 ||
      report.remote_blocks != 0) {
    fprintf(stderr, "%s: after freeing everything: %zu live, %zu large, %zu huge, %zu remote\n",
            name, report.live_blocks, report.large_blocks, report.huge_blocks, report.remote_blocks);
    return 1;
  }
  printf("%s ok: %lu operations; %zu segments, %zu slabs, %zu free blocks%s\n", name,
         (unsigned long)atomic_load(&stress_ops), report.segments, report.slabs,
         report.free_blocks, report.counters_checked ? "; conservation counters agree" : "");
  return 0;
}

#endif  // HAKMEM_STRESS_STRESS_UTIL_H
