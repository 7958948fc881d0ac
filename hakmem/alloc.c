// The hak_* API: everything beyond the inline fast paths of alloc.h.
#include "hakmem/alloc.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "hakmem/hakmem.h"
#include "hakmem/heap.h"
#include "hakmem/huge.h"
#include "hakmem/init.h"
#include "hakmem/os/os.h"
#include "hakmem/pool/large.h"
#include "hakmem/purge_hint.h"
#include "hakmem/segment.h"
#include "hakmem/wrap.h"

void* hak_alloc_beyond_mid(size_t n) {
  hak_init();  // a program's first allocation may be a large one
  size_t large_max = hak_large_max();
  if (HAK_UNLIKELY(hak_wrap_routes(n))) return hak_wrap_malloc(n);
  if (n <= large_max) return hak_large_alloc(n, 0);
  return hak_huge_alloc(n, HAK_PAGE_SIZE, 0);
}

static HAK_NORETURN HAK_COLD void foreign_pointer(const void* p, const char* op) {
  char detail[96];
  snprintf(detail, sizeof detail, "%s() of a pointer not allocated by hakmem", op);
  hak_fatal("invalid pointer", p, detail);
}

// p lies in hakmem's large or huge pool, but no block there starts at p or the block is free.
static HAK_NORETURN HAK_COLD void held_pointer_expected(const void* p, const char* op) {
  char detail[192];
  snprintf(detail, sizeof detail, "%s() of a pointer into hakmem's memory that is no block it "
           "holds for the program (freed already, or not a block's start)", op);
  hak_fatal("invalid pointer", p, detail);
}

// Nonzero if p is no hakmem block's, but the next allocator's: some HAKMEM_WRAP_* range is routed
// there and p lies outside hakmem's memory.
static int next_allocators(const void* p, uintptr_t map_word) {
  return (!hak_map_in_range(p) || map_word == 0) && hak_wrap_active();
}

// A free that is no slab block's: NULL, the next allocator's, a large or huge block, or foreign.
static HAK_NOINLINE void free_beyond_slabs(void* p, uintptr_t map_word) {
  if (p == NULL) return;
  if (HAK_UNLIKELY(next_allocators(p, map_word))) {
    hak_wrap_free(p);
    return;
  }
  if (!hak_map_in_range(p) || map_word == 0) foreign_pointer(p, "free");
  if ((map_word & HAK_KIND_MASK) == HAK_KIND_LARGE) {
    hak_large_free(p);
  } else {
    hak_huge_free(p);
  }
  hak_purge_safe_point();
}

// A thread's first free of a slab block, with no heap yet: one for its remote batches.
static HAK_NOINLINE void free_without_heap(void* p, uintptr_t map_word) {
  hak_heap_free_slow(hak_init_freeing_thread(), p, map_word);
}

// Only tail calls, so that a cross-thread free pays for no stack frame here.
void hak_free_slow(void* p, uintptr_t map_word) {
  uintptr_t kind = map_word & HAK_KIND_MASK;
  if (HAK_UNLIKELY(map_word == 0 || kind > HAK_KIND_MEDIUM || !hak_map_in_range(p))) {
    free_beyond_slabs(p, map_word);
    return;
  }
  hak_heap_t* heap = hak_tls.heap;  // a slab block's owner is another thread, or this one
  if (HAK_UNLIKELY(heap == HAK_EMPTY_HEAP)) {
    free_without_heap(p, map_word);
    return;
  }
  hak_heap_free_slow(heap, p, map_word);  // it reaches a safe point where it may free memory
}

void* hak_malloc(size_t size) { return hak_alloc_inline(size); }

void hak_free(void* ptr) { hak_free_inline(ptr); }

// The usable size of p, a block the program holds; aborts naming the error for anything else,
// in `op`'s name.
static size_t usable_size(const void* p, const char* op) {
  uintptr_t word = hak_map_word_checked(p);
  if (HAK_UNLIKELY(next_allocators(p, word))) return hak_wrap_usable_size((void*)p);
  if (!hak_map_in_range(p) || word == 0) foreign_pointer(p, op);
  uintptr_t kind = word & HAK_KIND_MASK;
  size_t n = kind == HAK_KIND_LARGE  ? hak_large_usable_size(p)
             : kind == HAK_KIND_HUGE ? hak_huge_usable_size(p)
                                     : hak_heap_usable_size(p, word, op);
  if (n == 0) held_pointer_expected(p, op);
#if HAK_ASAN
  // Only the requested bytes are addressable (see hak_asan_mark_allocated): report those, as
  // ASan's own malloc_usable_size does, so callers that use the whole usable size stay valid.
  const char* poisoned = (const char*)__asan_region_is_poisoned((void*)p, n);
  if (poisoned != NULL) n = (size_t)(poisoned - (const char*)p);
#endif
  return n;
}

size_t hak_usable_size(const void* p) {
  if (p == NULL) return 0;
  return usable_size(p, "malloc_usable_size");
}

void* hak_calloc(size_t count, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  if (total > HAK_MID_MAX) {
    hak_init();
    size_t large_max = hak_large_max();
    if (HAK_UNLIKELY(hak_wrap_routes(total))) return hak_wrap_calloc(count, size);
    if (total <= large_max) return hak_large_alloc(total, 1);
    return hak_huge_alloc(total, HAK_PAGE_SIZE, 1);
  }
  void* p = hak_alloc_inline(total);
  if (p != NULL) memset(p, 0, total);
  return p;
}

// realloc of a block of the next allocator (HAKMEM_WRAP_*): it keeps the block if the new size is
// routed there too, else the block moves to hakmem.
static void* realloc_from_next(void* p, size_t size) {
  if (hak_wrap_routes(size)) return hak_wrap_realloc(p, size);
  size_t old = hak_wrap_usable_size(p);
  void* q = hak_alloc_inline(size);
  if (q == NULL) return NULL;
  memcpy(q, p, size < old ? size : old);
  hak_wrap_free(p);
  return q;
}

void* hak_realloc(void* p, size_t size) {
  if (p == NULL) return hak_alloc_inline(size);
  if (size == 0) {  // glibc's behaviour: free and return NULL
    hak_free_inline(p);
    return NULL;
  }
  if (HAK_UNLIKELY(next_allocators(p, hak_map_word_checked(p)))) {
    return realloc_from_next(p, size);
  }
  size_t old = usable_size(p, "realloc");
  uintptr_t kind = hak_map_word(p) & HAK_KIND_MASK;
  int large_size = size > HAK_MID_MAX && size <= hak_large_max();
  if (kind == HAK_KIND_HUGE && size > hak_large_max()) return hak_huge_realloc(p, size);
  if (kind == HAK_KIND_LARGE && large_size && hak_large_resize_in_place(p, size)) return p;
  // Keep the block when it fits and at most half of it would go unused.
  if (size <= old && (size >= old / 2 || old <= 16)) return hak_asan_mark_allocated(p, size);
  void* q = hak_alloc_inline(size);
  if (q == NULL) return NULL;
  memcpy(q, p, size < old ? size : old);
  hak_free_inline(p);
  return q;
}

void* hak_reallocarray(void* p, size_t count, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  return hak_realloc(p, total);
}

// Smallest regular class whose blocks are multiples of `alignment` and hold `size` bytes; slabs
// are aligned to at least 64 KiB, so such blocks are all aligned. (The extra class may map the
// block size to itself: its blocks are multiples of 128 only.)
static void* aligned_from_classes(size_t alignment, size_t size) {
  size_t need = size > alignment ? size : alignment;
  for (unsigned c = 0; c < HAK_REGULAR_CLASSES; c++) {
    size_t block = hak_class_size(c);
    if (block >= need && block % alignment == 0 && hak_size_class(block) == c) {
      if (block <= HAK_TINY_MAX) return hak_alloc_inline(block);
      // Not rounded up to a larger class: its blocks need not be multiples of `alignment`.
      return hak_asan_mark_allocated(hak_debug_note_alloc(hak_mid_alloc_unrounded(block), block),
                                     block);
    }
  }
  hak_fatal("no size class fits an aligned request", NULL, "HAK_MID_MAX must be a power of two");
}

static void* aligned_alloc_checked(size_t alignment, size_t size) {
  if (size == 0) size = 1;  // a unique block, as for malloc(0)
  hak_init();
  if (HAK_UNLIKELY(hak_wrap_routes(size > alignment ? size : alignment))) {
    return hak_wrap_memalign(alignment, size);
  }
  if (alignment <= 8) return hak_alloc_inline(size);
  if (alignment <= 16) return hak_alloc_inline(size < 16 ? 16 : size);
  if (alignment <= HAK_MID_MAX && size <= HAK_MID_MAX) return aligned_from_classes(alignment, size);
  // Large spans start on page boundaries.
  if (alignment <= HAK_PAGE_SIZE && size <= hak_large_max()) return hak_large_alloc(size, 0);
  return hak_huge_alloc(size, alignment, 0);
}

void* hak_aligned_alloc(size_t alignment, size_t size) {
  if (!hak_is_power_of_two(alignment)) {
    errno = EINVAL;
    return NULL;
  }
  return aligned_alloc_checked(alignment, size);
}

int hak_posix_memalign(void** out, size_t alignment, size_t size) {
  if (!hak_is_power_of_two(alignment) || alignment % sizeof(void*) != 0) return EINVAL;
  int saved = errno;
  void* p = aligned_alloc_checked(alignment, size);
  if (p == NULL) return ENOMEM;
  errno = saved;
  *out = p;
  return 0;
}

void* hak_memalign(size_t alignment, size_t size) {
  // glibc rounds a non-power-of-two alignment up to the next power of two.
  if (!hak_is_power_of_two(alignment)) {
    if (alignment > ((size_t)1 << (sizeof(size_t) * 8 - 2))) {
      errno = EINVAL;
      return NULL;
    }
    size_t a = 1;
    while (a < alignment) a <<= 1;
    alignment = a;
  }
  return aligned_alloc_checked(alignment, size);
}

void* hak_valloc(size_t size) { return aligned_alloc_checked(HAK_PAGE_SIZE, size); }

void* hak_pvalloc(size_t size) {
  size_t rounded = (size + HAK_PAGE_SIZE - 1) & ~(HAK_PAGE_SIZE - 1);
  if (rounded < size) {
    errno = ENOMEM;
    return NULL;
  }
  return aligned_alloc_checked(HAK_PAGE_SIZE, rounded ? rounded : HAK_PAGE_SIZE);
}

void hak_trim(void) {
  hak_heap_t* heap = hak_init_thread();
  if (heap != NULL) hak_heap_trim(heap);
  hak_segment_purge_due(0, 1);  // every thread's free slabs, abandoned segments' too
  hak_large_trim();
  hak_huge_trim();
}
