// alloc: the entry points shared by the public hak_* API and the malloc shim, as inline functions
// so that malloc and free carry the fast path without an extra call.
//
// Owns: routing by size (tiny ≤ 1 KiB, medium ≤ 64 KiB, huge above) and by map word on free.
// May use: tiny, heap, huge. The slow halves live in alloc.c.
#ifndef HAKMEM_ALLOC_H
#define HAKMEM_ALLOC_H

#include <stddef.h>

#include "hakmem/base.h"
#include "hakmem/heap.h"
#include "hakmem/size_class.h"
#include "hakmem/tiny/tiny.h"

HAK_EXTERN_C_BEGIN

HAK_NOINLINE void* hak_alloc_beyond_tiny(size_t n);
HAK_NOINLINE void hak_free_slow(void* p, uintptr_t map_word);

HAK_INLINE void* hak_alloc_inline(size_t n) {
  if (HAK_LIKELY(n <= HAK_TINY_MAX)) return hak_debug_note_alloc(hak_tiny_alloc(n), n);
  return hak_debug_note_alloc(hak_alloc_beyond_tiny(n), n);
}

HAK_INLINE void hak_free_inline(void* p) {
  hak_debug_note_free(p);
  uintptr_t word;
  if (HAK_LIKELY(hak_tiny_free(p, &word))) return;
  hak_free_slow(p, word);
}

HAK_EXTERN_C_END

#endif  // HAKMEM_ALLOC_H
