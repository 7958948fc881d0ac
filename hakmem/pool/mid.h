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
// The mid cache of `cls` is full: pushes p, keeps the newer half and frees the rest to their slabs.
HAK_NOINLINE void hak_mid_cache_overflow(hak_heap_t* heap, unsigned cls, void* p);
// Aborts with a message naming p, a pointer into a MEDIUM slab of this thread that is not a
// block start, or a block freed twice.
HAK_NORETURN HAK_COLD void hak_mid_invalid_free(const void* p);

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
// class comes from the medium class map, the block-start check from the class's geometry in
// the cache (a multiplication, no division). The same block freed twice in a row is the common
// double free and is caught here; blocks past the slab's carved end are caught when the cache
// hands them back to their slab.
HAK_INLINE int hak_mid_free_local(void* p, uintptr_t map_word) {
  if (map_word != (hak_thread_id() | HAK_KIND_MEDIUM)) return 0;
  // A slab serving no class reads 0, whose index wraps past the table.
  unsigned index = hak_medium_class_at(p) - HAK_TINY_CLASSES;
  if (HAK_UNLIKELY(index >= HAK_MID_CLASSES)) hak_mid_invalid_free(p);
  hak_heap_t* heap = hak_tls.heap;  // a real one: this thread owns p's segment
  hak_mid_cache_t* cache = &heap->mid_cache[index];
  uint64_t offset = (uintptr_t)p & (HAK_MEDIUM_SLAB_SIZE - 1);
  uint64_t block = (offset * cache->block_recip) >> HAK_RECIP_SHIFT;
  if (HAK_UNLIKELY(block * cache->block_size != offset || offset >= cache->blocks_end ||
                   cache->head == (hak_block_t*)p)) {
    hak_mid_invalid_free(p);
  }
#if HAKMEM_SECURE
  hak_block_t* link = hak_block_next((hak_block_t*)p);
  if (HAK_UNLIKELY(link == NULL || hak_medium_class_checked(link) == index + HAK_TINY_CLASSES)) {
    hak_heap_confirm_double_free(hak_slab_of_shift(p, HAK_MEDIUM_SLAB_SHIFT), p);
  }
#endif
  if (HAK_UNLIKELY(cache->count >= cache->limit)) {
    hak_mid_cache_overflow(heap, index + HAK_TINY_CLASSES, p);
    return 1;
  }
  hak_mid_cache_push(cache, p);
  return 1;
}

HAK_EXTERN_C_END

#endif  // HAKMEM_POOL_MID_H
