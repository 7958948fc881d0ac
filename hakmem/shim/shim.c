// shim: the glibc malloc symbols, exported from libhakmem.so for LD_PRELOAD.
//
// Owns: the exported symbol list (hakmem.map) and nothing else. May use: alloc (inline fast
// paths) and the hak_* API. Everything here is hidden except the names in hakmem.map.
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "hakmem/alloc.h"
#include "hakmem/base.h"
#include "hakmem/hakmem.h"
#include "hakmem/pool/large.h"
#include "hakmem/segment.h"

#define EXPORT __attribute__((visibility("default")))

// Removed from glibc's headers in 2.26, still exported by its libc.so for old binaries.
void cfree(void* ptr);
// C23; declared by glibc's headers from 2.39 on.
void free_sized(void* ptr, size_t size);
void free_aligned_sized(void* ptr, size_t alignment, size_t size);

EXPORT void* malloc(size_t size) { return hak_alloc_inline(size); }
EXPORT void free(void* ptr) { hak_free_inline(ptr); }
EXPORT void cfree(void* ptr) { hak_free_inline(ptr); }
EXPORT void* calloc(size_t count, size_t size) { return hak_calloc(count, size); }
EXPORT void* realloc(void* ptr, size_t size) { return hak_realloc(ptr, size); }
EXPORT void* reallocarray(void* ptr, size_t count, size_t size) {
  return hak_reallocarray(ptr, count, size);
}
EXPORT int posix_memalign(void** out, size_t alignment, size_t size) {
  return hak_posix_memalign(out, alignment, size);
}
EXPORT void* aligned_alloc(size_t alignment, size_t size) {
  return hak_aligned_alloc(alignment, size);
}
EXPORT void* memalign(size_t alignment, size_t size) { return hak_memalign(alignment, size); }
EXPORT void* valloc(size_t size) { return hak_valloc(size); }
EXPORT void* pvalloc(size_t size) { return hak_pvalloc(size); }
EXPORT size_t malloc_usable_size(void* ptr) { return hak_usable_size(ptr); }

// Checked and secure builds hold the caller to its word: a block is at least the size it was
// asked for (realloc may keep a larger one, never a smaller), and as aligned as promised.
static void check_sized_free(void* p, size_t alignment, size_t size) {
#if HAKMEM_DEBUG || HAKMEM_SECURE
  if (p == NULL) return;
  if (size > hak_usable_size(p)) hak_fatal("free_sized of a block", p, "smaller than the size given");
  if (alignment != 0 && (uintptr_t)p % alignment != 0) {
    hak_fatal("free_aligned_sized of a block", p, "not aligned as the alignment given");
  }
#else
  (void)p, (void)alignment, (void)size;
#endif
}

EXPORT void free_sized(void* ptr, size_t size) {
  check_sized_free(ptr, 0, size);
  hak_free_inline(ptr);
}

EXPORT void free_aligned_sized(void* ptr, size_t alignment, size_t size) {
  check_sized_free(ptr, alignment, size);
  hak_free_inline(ptr);
}

EXPORT int malloc_trim(size_t pad) {
  (void)pad;
  hak_trim();
  return 1;
}

// What hakmem knows without walking live blocks: mapped segments and large arenas (arena), huge
// mappings (hblks/hblkhd), bytes in slabs that hold blocks, live large spans and huge blocks
// (uordblks), and the rest of the segments and arenas (fordblks).
EXPORT struct mallinfo2 mallinfo2(void) {
  hak_stats_t s;
  hak_stats(&s);
  struct mallinfo2 info = {0};
  info.arena = s.segments_mapped * HAK_SEGMENT_SIZE + s.large_arenas * HAK_LARGE_ARENA_SIZE;
  info.hblks = s.huge_blocks;
  info.hblkhd = s.huge_bytes;
  size_t in_arena = s.slab_bytes_in_use + s.large_bytes;
  info.uordblks = in_arena + s.huge_bytes;
  info.fordblks = info.arena > in_arena ? info.arena - in_arena : 0;
  info.ordblks = s.segments_mapped + s.large_arenas;
  return info;
}

EXPORT void malloc_stats(void) { hak_stats_print(STDERR_FILENO); }

// glibc's XML shape, with one "heap" for all of hakmem's memory: "rest" is free memory in
// segments and arenas, "mmap" the huge blocks, "system" what is mapped.
EXPORT int malloc_info(int options, FILE* fp) {
  if (options != 0) {
    errno = EINVAL;
    return -1;
  }
  struct mallinfo2 m = mallinfo2();
  size_t system = m.arena + m.hblkhd;
  const char* totals =
      "<total type=\"fast\" count=\"0\" size=\"0\"/>\n"
      "<total type=\"rest\" count=\"%zu\" size=\"%zu\"/>\n";
  fprintf(fp, "<malloc version=\"1\">\n<heap nr=\"0\">\n<sizes>\n</sizes>\n");
  fprintf(fp, totals, m.ordblks, m.fordblks);
  fprintf(fp, "<system type=\"current\" size=\"%zu\"/>\n<system type=\"max\" size=\"%zu\"/>\n"
          "<aspace type=\"total\" size=\"%zu\"/>\n<aspace type=\"mprotect\" size=\"%zu\"/>\n"
          "</heap>\n", system, system, system, system);
  fprintf(fp, totals, m.ordblks, m.fordblks);
  fprintf(fp, "<total type=\"mmap\" count=\"%zu\" size=\"%zu\"/>\n", m.hblks, m.hblkhd);
  fprintf(fp, "<system type=\"current\" size=\"%zu\"/>\n<system type=\"max\" size=\"%zu\"/>\n"
          "<aspace type=\"total\" size=\"%zu\"/>\n<aspace type=\"mprotect\" size=\"%zu\"/>\n"
          "</malloc>\n", system, system, system, system);
  return 0;
}

// hakmem is tuned by its HAKMEM_* variables (docs/ENV.md), read once at start-up: no mallopt
// parameter changes anything, and the return says so (0, glibc's "not done").
EXPORT int mallopt(int param, int value) {
  (void)param, (void)value;
  return 0;
}

static int clamp_int(size_t v) { return v > (size_t)0x7fffffff ? 0x7fffffff : (int)v; }

EXPORT struct mallinfo mallinfo(void) {
  struct mallinfo2 m = mallinfo2();
  struct mallinfo info = {0};
  info.arena = clamp_int(m.arena);
  info.ordblks = clamp_int(m.ordblks);
  info.hblks = clamp_int(m.hblks);
  info.hblkhd = clamp_int(m.hblkhd);
  info.uordblks = clamp_int(m.uordblks);
  info.fordblks = clamp_int(m.fordblks);
  return info;
}
