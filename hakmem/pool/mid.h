// pool/mid: the malloc and free fast paths for blocks above 1 KiB up to HAK_MID_MAX (64 KiB).
//
// Owns: nothing but these inline functions. May use: base, size_class, segment (map), slab,
// heap. Mid blocks use the same sharded free lists as tiny ones, in 1 MiB slabs of MEDIUM
// segments; only the class lookup (a clz instead of a table) and the slab size differ.
#ifndef HAKMEM_POOL_MID_H
#define HAKMEM_POOL_MID_H

#include <stddef.h>

#include "hakmem/base.h"
#include "hakmem/heap.h"
#include "hakmem/segment.h"
#include "hakmem/size_class.h"
#include "hakmem/slab.h"

HAK_EXTERN_C_BEGIN

// REQUIRES: HAK_TINY_MAX < n <= HAK_MID_MAX.
HAK_INLINE void* hak_mid_alloc(size_t n) {
  hak_heap_t* heap = hak_tls.heap;
  if (HAK_LIKELY(heap != NULL)) {
    unsigned cls = hak_mid_class(n);
    hak_mid_cache_t* cache = &heap->mid_cache[cls - HAK_TINY_CLASSES];
    hak_block_t* b = hak_mid_cache_pop(cache, cls);
    if (HAK_LIKELY(b != NULL)) return b;
    hak_slab_t* s = heap->current[cls];
    b = s->free;
    if (HAK_LIKELY(b != NULL)) {
      s->free = hak_block_pop(b, HAK_MEDIUM_SLAB_SHIFT);
      hak_block_handed_out(b);
      return b;
    }
  }
  return hak_heap_alloc_slow(n);
}

// Frees p if it lies in a MEDIUM segment owned by this thread (map_word == hak_map_word(p)),
// into the class's mid cache; returns 0 (nothing done) otherwise. Touches no slab header: the
// class comes from the medium class map, the block-start check from the class's geometry in
// the cache (a multiplication, no division). The same block freed twice in a row is the common
// double free and is caught here; blocks past the slab's carved end are caught when the cache
// hands them back to their slab.
HAK_INLINE int hak_mid_free_local(void* p, uintptr_t map_word) {
  if (map_word != (hak_thread_id() | HAK_KIND_MEDIUM)) return 0;
  // A slab serving no class reads 0, whose index wraps past the table.
  unsigned index = hak_medium_class_at(p) - HAK_TINY_CLASSES;
  if (HAK_UNLIKELY(index >= HAK_MID_CLASSES)) hak_heap_invalid_free(p);
  hak_heap_t* heap = hak_tls.heap;  // set: this thread owns p's segment
  hak_mid_cache_t* cache = &heap->mid_cache[index];
  uint64_t offset = (uintptr_t)p & (HAK_MEDIUM_SLAB_SIZE - 1);
  uint64_t block = (offset * cache->block_recip) >> HAK_RECIP_SHIFT;
  if (HAK_UNLIKELY(block * cache->block_size != offset || offset >= cache->blocks_end ||
                   cache->head == (hak_block_t*)p)) {
    hak_heap_invalid_free(p);
  }
#if HAKMEM_SECURE
  hak_block_t* link = hak_block_next((hak_block_t*)p);
  if (HAK_UNLIKELY(link == NULL || hak_medium_class_checked(link) == index + HAK_TINY_CLASSES)) {
    hak_heap_confirm_double_free(hak_slab_of_shift(p, HAK_MEDIUM_SLAB_SHIFT), p);
  }
#endif
  if (HAK_UNLIKELY(cache->count >= cache->limit)) {
    hak_heap_mid_cache_overflow(heap, index + HAK_TINY_CLASSES, p);
    return 1;
  }
  hak_block_t* b = (hak_block_t*)p;
  hak_block_set_next(b, cache->head);
  cache->head = b;
  cache->count++;
  cache->pushes++;
  return 1;
}

HAK_EXTERN_C_END

#endif  // HAKMEM_POOL_MID_H
