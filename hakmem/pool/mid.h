// pool/mid: blocks above 1 KiB up to HAK_MID_MAX (64 KiB): the malloc and free fast paths, and
// everything the thread's mid caches (pool/mid_cache.h) do beyond them.
//
// Owns: the mid fast paths, the allocation slow path with rounding (a cached block of a larger
// class, at most HAKMEM_MID_ROUND_PCT of the request, rather than fresh memory) and the cache
// overflow (mid.c). May use: base, size_class, segment (map), slab, pool/mid_cache, heap (TLS,
// slab queues), init (the thread's heap), wrap. Must not touch tiny/. Mid blocks use the same
// sharded free lists as tiny ones, in 1 MiB slabs of MEDIUM segments; only the class lookup and
// the slab size differ, and a thread's freed blocks go to its cache first.
#ifndef HAKMEM_POOL_MID_H
#define HAKMEM_POOL_MID_H

#include <stddef.h>

#include "hakmem/base.h"
#include "hakmem/heap.h"
#include "hakmem/pool/mid_cache.h"
#include "hakmem/segment.h"
#include "hakmem/size_class.h"
#include "hakmem/slab.h"

HAK_EXTERN_C_BEGIN

// Neither the cache nor the current slab of n's class has a block (or the thread has no heap
// yet). Sets errno on failure. REQUIRES: HAK_TINY_MAX < n <= HAK_MID_MAX.
HAK_NOINLINE void* hak_mid_alloc_slow(size_t n);
// A block of n's own class, never a larger class's (rounding): for aligned requests, which pick
// n among the sizes whose blocks are all aligned. REQUIRES: HAK_TINY_MAX < n <= HAK_MID_MAX.
void* hak_mid_alloc_unrounded(size_t n);
// The mid cache of `cls` is full: pushes p, keeps the newer half and frees the rest to their slabs.
HAK_NOINLINE void hak_mid_cache_overflow(hak_heap_t* heap, unsigned cls, void* p);

// REQUIRES: HAK_TINY_MAX < n <= HAK_MID_MAX. No test for a heap: a thread without one reads the
// static empty heap, whose caches and current slabs are empty.
HAK_INLINE void* hak_mid_alloc(size_t n) {
  hak_heap_t* heap = hak_tls.heap;
  unsigned cls = hak_mid_class(n);
  hak_block_t* b = hak_mid_cache_pop(&heap->mid_cache[cls - HAK_TINY_CLASSES], cls);
  if (HAK_LIKELY(b != NULL)) return b;
  hak_slab_t* s = heap->current[cls];
  b = s->free;
  if (HAK_UNLIKELY(b == NULL)) return hak_mid_alloc_slow(n);
  s->free = hak_block_pop(b, HAK_MEDIUM_SLAB_SHIFT);
  hak_block_handed_out(b);
  return b;
}

// Frees p if it lies in a MEDIUM segment owned by this thread (map_word == hak_map_word(p)),
// into the class's mid cache; returns 0 (nothing done) otherwise. Touches no slab header: the
// class comes from the medium class map, the block test from the class's geometry beside its
// cache, the free mark from the address (slab.h). Interior, misaligned and double frees abort
// here; a block start past its slab's carved blocks (never handed out) aborts only when the
// cache gives it back to its slab (if the cache hands it out first, that goes unseen).
HAK_INLINE int hak_mid_free_local(void* p, uintptr_t map_word) {
  if (map_word != (hak_thread_id() | HAK_KIND_MEDIUM)) return 0;
  // A slab serving no class reads 0, whose index wraps past the table.
  unsigned index = hak_medium_class_at(p) - HAK_TINY_CLASSES;
  hak_heap_t* heap = hak_tls.heap;  // a real one: this thread owns p's segment
  hak_mid_cache_t* cache = &heap->mid_cache[index];
  uint64_t offset = (uintptr_t)p & (HAK_MEDIUM_SLAB_SIZE - 1);
  if (HAK_UNLIKELY(index >= HAK_MID_CLASSES || offset * cache->block_magic >= cache->capacity_limit ||
                   hak_block_is_free((hak_block_t*)p, HAK_MEDIUM_SLAB_SHIFT))) {
    hak_slab_reject_free(p, HAK_MEDIUM_SLAB_SHIFT);
    return 1;
  }
  hak_block_mark_free((hak_block_t*)p, HAK_MEDIUM_SLAB_SHIFT);
  if (HAK_UNLIKELY(cache->count >= cache->limit)) {
    hak_mid_cache_overflow(heap, index + HAK_TINY_CLASSES, p);
    return 1;
  }
  hak_mid_cache_push(cache, p);
  return 1;
}

HAK_EXTERN_C_END

#endif  // HAKMEM_POOL_MID_H
