// How a heap takes up the adaptive cache engine's policy: on its own thread's slow path, from the
// published snapshot (ace/policy). The engine never writes a heap.
#include "hakmem/ace/policy.h"
#include "hakmem/heap.h"
#include "hakmem/heap_slabs.h"

void hak_heap_apply_policy(hak_heap_t* heap) {
  hak_ace_policy_t policy;
  if (hak_ace_policy_read(&policy) == 0) return;
  heap->policy_version = policy.version;
  heap->mid_rounding_pct = policy.mid_round_pct;
  hak_heap_sync_extra_class(heap);
  for (unsigned i = 0; i < HAK_MID_CLASSES; i++) {
    hak_mid_cache_t* cache = &heap->mid_cache[i];
    if (cache->block_size == 0) continue;  // the extra class, not placed
    cache->limit = policy.mid_cache_limit[i];
    hak_heap_trim_mid_cache(heap, HAK_TINY_CLASSES + i, cache->limit);
  }
  // An idle class's cached blocks, its empty slabs and their pages go back now rather than after
  // the purge delay.
  for (unsigned c = 0; c < HAK_CLASS_COUNT; c++) {
    if (!hak_ace_policy_idle(&policy, c)) continue;
    if (c >= HAK_TINY_CLASSES) hak_heap_trim_mid_cache(heap, c, 0);
    hak_heap_release_class(heap, c);
  }
}
