// alloc: the entry points shared by the public hak_* API and the malloc shim, as inline functions
// so that malloc and free carry the fast path without an extra call.
//
// Owns: routing by size (tiny ≤ 1 KiB, mid ≤ 64 KiB, large and huge above) and by map word on
// free. May use: tiny, pool/mid, heap. The slow halves live in alloc.c.
#ifndef HAKMEM_ALLOC_H
#define HAKMEM_ALLOC_H

#include <stddef.h>

#include "hakmem/base.h"
#include "hakmem/heap.h"
#include "hakmem/segment.h"
#include "hakmem/slab.h"
#include "hakmem/size_class.h"
#include "hakmem/pool/mid.h"
#include "hakmem/tiny/tiny.h"

HAK_EXTERN_C_BEGIN

// Out of line, so that malloc's tiny and mid paths need no stack frame.
HAK_NOINLINE void* hak_alloc_beyond_mid(size_t n);
HAK_NOINLINE void hak_free_slow(void* p, uintptr_t map_word);

// ASan builds: a slab block the program holds is addressable from its start to the requested
// size; a free one only in its first word (the free-list link). Nothing in other builds.
HAK_INLINE void* hak_asan_mark_allocated(void* p, size_t n) {
#if HAK_ASAN
  if (p != NULL && n <= HAK_MID_MAX) {
    size_t block = hak_heap_usable_size(p, hak_map_word(p), NULL);  // 0: a huge block kept by realloc
    if (block == 0) return p;
    HAK_UNPOISON(p, n);
    HAK_POISON((char*)p + n, block - n);
  }
#else
  (void)n;
#endif
  return p;
}

HAK_INLINE void hak_asan_mark_freed(void* p) {
#if HAK_ASAN
  uintptr_t word = hak_map_word_checked(p);
  uintptr_t kind = word & HAK_KIND_MASK;
  if (word == 0 || (kind != HAK_KIND_SMALL && kind != HAK_KIND_MEDIUM)) return;
  hak_segment_t* seg = hak_segment_lookup(p, word);
  if (seg == NULL) return;
  hak_slab_t* s = hak_slab_of_shift(p, seg->slab_shift);
  if (!hak_slab_is_block(s, p)) return;  // the free path reports it
  HAK_POISON(p, s->block_size);
  HAK_UNPOISON(p, sizeof(hak_block_t));
#else
  (void)p;
#endif
}

HAK_INLINE void* hak_alloc_inline(size_t n) {
  if (HAK_LIKELY(n <= HAK_TINY_MAX)) {
    return hak_asan_mark_allocated(hak_debug_note_alloc(hak_tiny_alloc(n), n), n);
  }
  void* p = HAK_LIKELY(n <= HAK_MID_MAX) ? hak_mid_alloc(n) : hak_alloc_beyond_mid(n);
  return hak_asan_mark_allocated(hak_debug_note_alloc(p, n), n);
}

HAK_INLINE void hak_free_inline(void* p) {
  hak_debug_note_free(p);
  hak_asan_mark_freed(p);
  uintptr_t word;
  if (HAK_LIKELY(hak_tiny_free(p, &word))) return;
  if (hak_mid_free_local(p, word)) return;
  hak_free_slow(p, word);
}

HAK_EXTERN_C_END

#endif  // HAKMEM_ALLOC_H
