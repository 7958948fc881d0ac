// shim: the glibc malloc symbols, exported from libhakmem.so for LD_PRELOAD.
//
// Owns: the exported symbol list (hakmem.map) and nothing else. May use: alloc (inline fast
// paths) and the hak_* API. Everything here is hidden except the names in hakmem.map.
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>

#include "hakmem/alloc.h"
#include "hakmem/hakmem.h"

#define EXPORT __attribute__((visibility("default")))

// Removed from glibc's headers in 2.26, still exported by its libc.so for old binaries.
void cfree(void* ptr);

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

EXPORT int malloc_trim(size_t pad) {
  (void)pad;
  hak_trim();
  return 1;
}

// What hakmem knows without walking live blocks: mapped segments (arena), huge mappings
// (hblks/hblkhd), bytes in slabs that hold blocks plus huge blocks (uordblks), and the rest of
// the mapped segment bytes (fordblks).
EXPORT struct mallinfo2 mallinfo2(void) {
  hak_stats_t s;
  hak_stats(&s);
  struct mallinfo2 info = {0};
  info.arena = s.segments_mapped * HAK_SEGMENT_SIZE;
  info.hblks = s.huge_blocks;
  info.hblkhd = s.huge_bytes;
  info.uordblks = s.slab_bytes_in_use + s.huge_bytes;
  info.fordblks = info.arena > s.slab_bytes_in_use ? info.arena - s.slab_bytes_in_use : 0;
  info.ordblks = s.segments_mapped;
  return info;
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
