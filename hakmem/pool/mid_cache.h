// pool/mid_cache: the per-thread LIFO of recently freed mid blocks of one class, so the next
// malloc of the class gets a block still in cache (a slab's free list hands out blocks freed long
// ago). Blocks in it still count as used in their slabs.
//
// Owns: hak_mid_cache_t and its list operations. May use: base, segment (the medium class map),
// slab (block links). Must not touch slab headers or lists: whoever cuts blocks out of a cache
// gives them back to their slabs (heap). Besides its length a cache counts the blocks ever
// pushed (a count that only grows), so that the adaptive cache engine can tell blocks taken out
// (pushes - count) and idleness (neither moved) from another thread, at one add on the free
// fast path.
#ifndef HAKMEM_POOL_MID_CACHE_H
#define HAKMEM_POOL_MID_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "hakmem/base.h"
#include "hakmem/segment.h"
#include "hakmem/slab.h"

HAK_EXTERN_C_BEGIN

typedef struct hak_mid_cache_s {
  hak_block_t* head;
  uint32_t count;
  uint32_t limit;        // from HAKMEM_MID_CACHE_KB and the class size, or the engine's policy
  // Not next to count: gcc would merge the two increments of the free path into SSE code.
  uint32_t pushes;       // blocks freed into it, ever (wraps)
  uint32_t block_size;   // 0: the extra class, not placed yet (nothing can be freed into it)
  // The block test (slab.h) with the class's geometry: any block start of a MEDIUM slab of the
  // class passes, carved or not (the slab header, which knows, is not read on the fast path).
  uint64_t block_magic;
  uint64_t capacity_limit;
} hak_mid_cache_t;

// An empty cache for blocks of `block_size` (0: the extra class, not placed) holding at most
// HAKMEM_MID_CACHE_KB of them.
void hak_mid_cache_setup(hak_mid_cache_t* cache, size_t block_size);

// The link of b, a block on the mid cache of class `cls`. The cache holds blocks of many slabs:
// secure builds check that the link leads to a block of the same class.
HAK_INLINE hak_block_t* hak_mid_cache_link(const hak_block_t* b, unsigned cls) {
  hak_block_t* next = hak_block_next(b);
#if HAKMEM_SECURE
  if (HAK_UNLIKELY(next != NULL && hak_medium_class_checked(next) != cls)) hak_block_corrupted(b);
#else
  (void)cls;
#endif
  return next;
}

// Pops the head of the mid cache of class `cls`; NULL if it is empty.
HAK_INLINE hak_block_t* hak_mid_cache_pop(hak_mid_cache_t* cache, unsigned cls) {
  hak_block_t* b = cache->head;
  if (b == NULL) return NULL;
  cache->head = hak_mid_cache_link(b, cls);
  hak_block_handed_out(b);
  cache->count--;
  return b;
}

HAK_INLINE void hak_mid_cache_push(hak_mid_cache_t* cache, void* p) {
  hak_block_t* b = (hak_block_t*)p;
  hak_block_set_next(b, cache->head);
  cache->head = b;
  cache->count++;
  cache->pushes++;
}

// Keeps the newest `keep` blocks of the cache of class `cls` and returns the others as a list
// (linked with hak_mid_cache_link), for the caller to give back to their slabs; NULL if the
// cache holds no more than `keep`.
hak_block_t* hak_mid_cache_cut(hak_mid_cache_t* cache, unsigned cls, uint32_t keep);

HAK_EXTERN_C_END

#endif  // HAKMEM_POOL_MID_CACHE_H
