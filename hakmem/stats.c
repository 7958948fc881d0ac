// stats: the hak_stats and hak_class_stats API and the report HAKMEM_STATS=1 prints at exit.
//
// Owns: nothing but reading. May use: heap, segment, huge, pool/large, os, config. Gathers the
// counters the boxes keep (slow-path counts in release, per-call counts only in the debug
// config) and formats them with snprintf into a stack buffer: printing never allocates.
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "hakmem/ace/policy.h"
#include "hakmem/config.h"
#include "hakmem/hakmem.h"
#include "hakmem/heap.h"
#include "hakmem/huge.h"
#include "hakmem/os/os.h"
#include "hakmem/pool/large.h"
#include "hakmem/segment.h"
#include "hakmem/size_class.h"

void hak_stats(hak_stats_t* out) {
  hak_segment_totals_t segments;
  hak_heap_totals_t heaps;
  hak_huge_totals_t huge;
  hak_large_totals_t large;
  hak_segment_totals(&segments);
  hak_heap_totals(&heaps);
  hak_huge_totals(&huge);
  hak_large_totals(&large);
  out->segments_mapped = segments.mapped_segments;
  out->segments_cached = segments.cached_segments;
  out->segments_abandoned = segments.abandoned_segments;
  out->slabs_in_use = heaps.slabs_in_use;
  out->slab_bytes_in_use = heaps.bytes_in_use_slabs;
  out->dirty_free_slabs = heaps.dirty_free_slabs;
  out->huge_blocks = huge.blocks;
  out->huge_bytes = huge.bytes;
  out->large_blocks = large.blocks;
  out->large_bytes = large.bytes;
  out->large_arenas = large.arenas;
  out->purged_bytes = segments.purged_bytes;
  out->thread_heaps = heaps.heaps;
  out->remote_takeovers = hak_heap_takeovers();
  out->rss_bytes = hak_os_rss_bytes();
  out->peak_rss_bytes = hak_os_peak_rss_bytes();
  hak_ace_engine_status_t ace = {0};
  if (hak_ace_engine_status_reader != NULL) hak_ace_engine_status_reader(&ace);
  out->ace_running = ace.running;
  out->ace_windows = ace.windows;
  out->ace_decisions = ace.decisions;
  out->ace_extra_class_size = ace.extra_class_size;
}

size_t hak_class_stats(hak_class_stats_t* out, size_t max) {
  hak_class_totals_t totals[HAK_CLASS_COUNT];
  hak_heap_class_totals(totals);
  for (size_t c = 0; c < max && c < HAK_CLASS_COUNT; c++) {
    const hak_class_counters_t* k = &totals[c].counters;
    hak_class_stats_t* s = &out[c];
    s->block_size = hak_class_size((unsigned)c);
    s->slabs = totals[c].slabs;
#define COPY(name, column, meaning) s->name = k->name;
    HAK_CLASS_COUNTERS(COPY)
#undef COPY
#if HAKMEM_DEBUG >= 2
    s->allocs = (long long)__atomic_load_n(&hak_debug_class_allocs[c], __ATOMIC_RELAXED);
    s->frees = (long long)__atomic_load_n(&hak_debug_class_frees[c], __ATOMIC_RELAXED);
    s->live = s->allocs - s->frees;
#else
    s->allocs = s->frees = s->live = -1;
#endif
  }
  return HAK_CLASS_COUNT;
}

// printf into a stack buffer, then one write: no stdio buffers, no allocation.
static __attribute__((format(printf, 2, 3))) void print(int fd, const char* fmt, ...) {
  char line[256];
  va_list args;
  va_start(args, fmt);
  int n = vsnprintf(line, sizeof line, fmt, args);
  va_end(args);
  if (n <= 0) return;
  size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
  for (size_t done = 0; done < len;) {
    ssize_t w = write(fd, line + done, len - done);
    if (w <= 0) return;
    done += (size_t)w;
  }
}

static double mib(size_t bytes) { return (double)bytes / (1024.0 * 1024.0); }

void hak_stats_print(int fd) {
  hak_stats_t s;
  hak_stats(&s);
  print(fd, "hakmem: stats (pid %d, profile %s)\n", (int)getpid(),
        hak_config_profile_name(hak_config.profile));
  print(fd, "  rss %.1f MiB, peak %.1f MiB; purged %.1f MiB since start; %zu thread heaps; "
        "remote batches of stopped threads handed over %llu times\n", mib(s.rss_bytes),
        mib(s.peak_rss_bytes), mib(s.purged_bytes), s.thread_heaps, s.remote_takeovers);
  print(fd, "  segments: %zu mapped, %zu cached, %zu abandoned; slabs in use %zu (%.1f MiB), "
        "%zu free not yet purged\n", s.segments_mapped, s.segments_cached, s.segments_abandoned,
        s.slabs_in_use, mib(s.slab_bytes_in_use), s.dirty_free_slabs);
  print(fd, "  large: %zu blocks, %.1f MiB in %zu arenas; huge: %zu blocks, %.1f MiB\n",
        s.large_blocks, mib(s.large_bytes), s.large_arenas, s.huge_blocks, mib(s.huge_bytes));
  print(fd, "  ace: %s, %llu windows, %llu decisions, extra class %zu B%s\n",
        s.ace_running ? "running" : hak_config.ace ? "not started" : "off", s.ace_windows,
        s.ace_decisions, s.ace_extra_class_size, s.ace_extra_class_size ? "" : " (none)");
  hak_class_stats_t classes[HAK_CLASS_COUNT];
  hak_class_stats(classes, HAK_CLASS_COUNT);
  int counted = classes[0].allocs >= 0;
  char line[256];
  int at = snprintf(line, sizeof line, "  %5s %6s %6s", "class", "size", "slabs");
#define COLUMN(name, column, meaning) at += snprintf(line + at, sizeof line - (size_t)at, " %9s", column);
  HAK_CLASS_COUNTERS(COLUMN)
#undef COLUMN
  print(fd, "%s%s\n", line, counted ? "     allocs      frees       live  hit%" : "");
  for (unsigned c = 0; c < HAK_CLASS_COUNT; c++) {
    const hak_class_stats_t* k = &classes[c];
    if (k->slabs == 0 && k->refills == 0 && k->allocs <= 0) continue;
    at = snprintf(line, sizeof line, "  %5u %6zu %6zu", c, k->block_size, k->slabs);
#define VALUE(name, column, meaning) at += snprintf(line + at, sizeof line - (size_t)at, " %9llu", k->name);
    HAK_CLASS_COUNTERS(VALUE)
#undef VALUE
    char debug[64] = "";
    if (counted) {
      // The front cache (the thread's free list, and the mid cache) misses once per refill.
      double hit = k->allocs > 0 ? 100.0 * (1.0 - (double)k->refills / (double)k->allocs) : 0.0;
      snprintf(debug, sizeof debug, " %10lld %10lld %10lld %5.1f", k->allocs, k->frees, k->live,
               hit < 0 ? 0.0 : hit);
    }
    print(fd, "%s%s\n", line, debug);
  }
  if (!counted) print(fd, "  (allocs, frees, live and hit rates: build with --config=debug)\n");
}

// HAKMEM_STATS=1: the report goes to stderr when the program exits (or the library unloads).
__attribute__((destructor)) static void print_stats_at_exit(void) {
  if (hak_config.stats) hak_stats_print(STDERR_FILENO);
}
