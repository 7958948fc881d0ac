#include "hakmem/pool/mid.h"

#include "hakmem/init.h"
#include "hakmem/purge_hint.h"
#include "hakmem/wrap.h"

// Rounding: a block cached for a larger class, at most mid_rounding_pct of n, rather than
// refilling class `cls` from its slabs (which may carve fresh memory). NULL if none.
static void* take_cached_larger(hak_heap_t* heap, unsigned cls, size_t n) {
  for (unsigned c = cls + 1; c < HAK_REGULAR_CLASSES; c++) {  // sorted by size: not the extra
    if ((uint64_t)hak_class_size(c) * 100 > (uint64_t)n * heap->mid_rounding_pct) break;
    hak_block_t* b = hak_mid_cache_pop(&heap->mid_cache[c - HAK_TINY_CLASSES], c);
    if (b) return b;
  }
  return NULL;
}

static void* alloc_slow(size_t n, int may_round) {
  uint32_t calls;
  hak_heap_t* heap = hak_slow_path_heap(&calls);
  if (heap == NULL) return NULL;
  // A routed range never gets a current slab or cached block: all its requests come here.
  if (HAK_UNLIKELY(hak_wrap_routes(n))) return hak_wrap_malloc(n);
  unsigned cls = hak_size_class(n);
  if (cls == HAK_EXTRA_CLASS) hak_heap_sync_extra_class(heap);
  if (heap->current[cls]->free == NULL) {
    heap->counters[cls].cache_misses++;
    heap->mid_sizes[(n - 1) >> 7]++;
    void* rounded = may_round ? take_cached_larger(heap, cls, n) : NULL;
    if (rounded) return rounded;
  }
  return hak_heap_alloc_from_slabs(heap, cls, calls);
}

void* hak_mid_alloc_slow(size_t n) { return alloc_slow(n, 1); }

void* hak_mid_alloc_unrounded(size_t n) {
  hak_heap_t* heap = hak_tls.heap;
  unsigned cls = hak_mid_class(n);
  hak_block_t* b = hak_mid_cache_pop(&heap->mid_cache[cls - HAK_TINY_CLASSES], cls);
  if (b != NULL) return b;
  return alloc_slow(n, 0);
}

void hak_mid_cache_overflow(hak_heap_t* heap, unsigned cls, void* p) {
  hak_mid_cache_t* cache = &heap->mid_cache[cls - HAK_TINY_CLASSES];
  heap->counters[cls].cache_overflows++;
  if (cache->limit == 0) {
    hak_heap_free_to_slab(heap, (hak_block_t*)p);
    hak_purge_safe_point();
    return;
  }
  // p joins the cache (the next malloc of this class wants it: it is the warmest block); the
  // older half goes back to the slabs.
  hak_mid_cache_push(cache, p);
  hak_heap_trim_mid_cache(heap, cls, (cache->limit + 1) / 2);
  hak_purge_safe_point();
}
