// What other threads read of the heaps: the adaptive cache engine's observation and the totals
// for stats, summed over the registry (heap.c) under its lock.
#include <string.h>

#include "hakmem/heap.h"

#if HAKMEM_DEBUG >= 2
uint64_t hak_debug_blocks_allocated;
uint64_t hak_debug_blocks_freed;
uint64_t hak_debug_class_allocs[HAK_CLASS_COUNT];
uint64_t hak_debug_class_frees[HAK_CLASS_COUNT];
#endif

void hak_class_counters_add(hak_class_counters_t* to, const hak_class_counters_t* from) {
#define ADD(name, column, meaning) to->name += from->name;
  HAK_CLASS_COUNTERS(ADD)
#undef ADD
}

static void add_heap_totals(hak_heap_t* heap, void* arg) {
  hak_heap_totals_t* out = (hak_heap_totals_t*)arg;
  out->heaps++;
  for (unsigned k = 0; k < 2; k++) {
    for (hak_segment_t* seg = heap->segments[k]; seg; seg = seg->next) {
      size_t in_use = (size_t)(seg->slab_count - seg->free_count);
      out->slabs_in_use += in_use;
      out->bytes_in_use_slabs += in_use * hak_segment_slab_size(seg);
      out->dirty_free_slabs += hak_segment_dirty_slabs(seg);
    }
  }
}

void hak_heap_totals(hak_heap_totals_t* out) {
  memset(out, 0, sizeof *out);
  hak_heap_for_each(add_heap_totals, out, NULL);
}

static void count_slabs_by_class(hak_segment_t* seg, void* arg) {
  hak_class_totals_t* out = (hak_class_totals_t*)arg;
  for (unsigned i = 0; i < seg->slab_count; i++) {
    if (seg->free_mask & ((uint64_t)1 << i)) continue;
    unsigned cls = hak_slab_at(seg, i)->class_idx;
    if (cls < HAK_CLASS_COUNT) out[cls].slabs++;
  }
}

static void add_class_totals(hak_heap_t* heap, void* arg) {
  hak_class_totals_t* out = (hak_class_totals_t*)arg;
  for (unsigned c = 0; c < HAK_CLASS_COUNT; c++) {
    hak_class_counters_add(&out[c].counters, &heap->counters[c]);
  }
  for (unsigned k = 0; k < 2; k++) {
    for (hak_segment_t* seg = heap->segments[k]; seg; seg = seg->next) count_slabs_by_class(seg, out);
  }
}

void hak_heap_class_totals(hak_class_totals_t out[HAK_CLASS_COUNT]) {
  hak_heap_gone_t gone;
  memset(out, 0, sizeof(hak_class_totals_t) * HAK_CLASS_COUNT);
  hak_heap_for_each(add_class_totals, out, &gone);
  for (unsigned c = 0; c < HAK_CLASS_COUNT; c++) {
    hak_class_counters_add(&out[c].counters, &gone.counters[c]);
  }
  hak_segment_for_each_unowned(count_slabs_by_class, out);
}

// The engine reads words other threads write without synchronisation, on purpose (see
// hak_heap_observation_t): volatile keeps each a single load, and ThreadSanitizer is told not to
// instrument this reader (the writers are the fast and slow paths, which must stay plain).
#define RACY_READ(x) (*(const volatile __typeof__(x)*)&(x))

__attribute__((no_sanitize("thread"))) static void observe_heap(hak_heap_t* heap, void* arg) {
  hak_heap_observation_t* out = (hak_heap_observation_t*)arg;
  for (unsigned c = 0; c < HAK_CLASS_COUNT; c++) {
    const hak_class_counters_t* from = &heap->counters[c];
    hak_class_counters_t* to = &out->counters[c];
#define ADD_RACY(name, column, meaning) to->name += RACY_READ(from->name);
    HAK_CLASS_COUNTERS(ADD_RACY)
#undef ADD_RACY
  }
  for (unsigned i = 0; i < HAK_MID_CLASSES; i++) {
    uint32_t pushes = RACY_READ(heap->mid_cache[i].pushes);
    uint32_t count = RACY_READ(heap->mid_cache[i].count);
    out->cache_pushes[i] += pushes;
    out->cache_pops[i] += (uint32_t)(pushes - count);
  }
  for (unsigned i = 0; i < HAK_MID_SIZE_BUCKETS; i++) out->mid_sizes[i] += RACY_READ(heap->mid_sizes[i]);
}

void hak_heap_observe(hak_heap_observation_t* out) {
  hak_heap_gone_t gone;
  memset(out, 0, sizeof *out);
  hak_heap_for_each(observe_heap, out, &gone);
  for (unsigned c = 0; c < HAK_CLASS_COUNT; c++) {
    hak_class_counters_add(&out->counters[c], &gone.counters[c]);
  }
  for (unsigned i = 0; i < HAK_MID_SIZE_BUCKETS; i++) out->mid_sizes[i] += gone.mid_sizes[i];
}
