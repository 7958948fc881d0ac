// Heap lifetime: the registry of heaps, a thread's heap created on its first slow path, handed
// back at its exit (its segments abandoned for others to adopt), and taken over in a fork child.
#include "hakmem/heap.h"

#include <pthread.h>
#include <string.h>

#include "hakmem/config.h"
#include "hakmem/heap_slabs.h"
#include "hakmem/list.h"
#include "hakmem/os/os.h"
#include "hakmem/purge_hint.h"

const hak_slab_t hak_empty_slab = {.class_idx = HAK_SLAB_UNUSED_CLASS};

// What a thread's fast paths see before its first slow path: no cached block, no current slab.
const hak_heap_t hak_empty_heap = {
    .current = {[0 ... HAK_CLASS_COUNT - 1] = HAK_EMPTY_SLAB},
};

HAK_TLS hak_tls_t hak_tls = {
    .direct = {[0 ... HAK_TINY_INDEXES - 1] = HAK_EMPTY_SLAB},
    .heap = HAK_EMPTY_HEAP,
};

// Heap registry: every heap ever made, in use or waiting for reuse. Heaps are never unmapped.
static pthread_mutex_t heaps_lock = PTHREAD_MUTEX_INITIALIZER;
static hak_heap_t* heaps;
static unsigned live_heaps;  // heaps in use; written under heaps_lock, read with __atomic

static hak_heap_gone_t gone;  // counts of heaps whose thread exited

static void heap_reset(hak_heap_t* heap) {
  for (unsigned c = 0; c < HAK_CLASS_COUNT; c++) heap->current[c] = HAK_EMPTY_SLAB;
  memset(heap->partial, 0, sizeof heap->partial);
  memset(heap->full, 0, sizeof heap->full);
  memset(heap->fresh_since_sweep, 0, sizeof heap->fresh_since_sweep);
  memset(heap->kept_empty, 0, sizeof heap->kept_empty);
  memset(heap->counters, 0, sizeof heap->counters);
  memset(heap->mid_sizes, 0, sizeof heap->mid_sizes);
  heap->policy_version = 0;
  heap->mid_rounding_pct = (uint32_t)hak_config.mid_round_pct;
  for (unsigned i = 0; i < HAK_MID_CLASSES; i++) {
    hak_mid_cache_setup(&heap->mid_cache[i], hak_class_size(HAK_TINY_CLASSES + i));
  }
  heap->segments[0] = heap->segments[1] = NULL;
  heap->slow_calls = 0;
  heap->next_purge_ms = 0;
}

static hak_heap_t* heap_from_registry(void) {
  pthread_mutex_lock(&heaps_lock);
  hak_heap_t* heap = heaps;
  while (heap && heap->in_use) heap = heap->next;
  if (heap == NULL) {
    heap = hak_os.map(NULL, hak_align_up(sizeof(hak_heap_t), HAK_PAGE_SIZE));
    if (heap) HAK_LIST_PUSH(&heaps, heap);
  }
  if (heap) {
    // Under the lock, before it counts as in use: a fork child abandons every in-use heap but
    // its own, and one whose reset had not run yet held zeroed or stale current slabs and
    // segments (a NULL current slab crashed a child of ForkedChildOfABusyParentCanAllocate).
    heap_reset(heap);
    memset(&heap->remote, 0, sizeof heap->remote);  // the purger reads it under the lock too
    heap->in_use = 1;
    __atomic_store_n(&live_heaps, live_heaps + 1, __ATOMIC_RELAXED);
  }
  pthread_mutex_unlock(&heaps_lock);
  return heap;
}

hak_heap_t* hak_heap_create(void) {
  hak_heap_t* heap = heap_from_registry();
  if (heap == NULL) return NULL;
  heap->owner = hak_thread_id();
  HAK_CHECK((heap->owner & HAK_KIND_MASK) == 0 && heap->owner != HAK_OWNER_NONE,
            "unsupported thread pointer", (void*)heap->owner, "must be 16-byte aligned");
  hak_tls.heap = heap;
  return heap;
}

// Puts every in-use slab of an adopted segment on this heap's lists.
static void adopt_slabs(hak_heap_t* heap, hak_segment_t* seg) {
  uint64_t now = hak_os_now_ms();
  for (unsigned i = 0; i < seg->slab_count; i++) {
    if (seg->free_mask & ((uint64_t)1 << i)) continue;
    hak_slab_t* s = hak_slab_at(seg, i);
    s->list = 0;
    if (s->class_idx == HAK_EXTRA_CLASS) hak_heap_sync_extra_class(heap);
    if (hak_heap_collect_or_give_back(heap, seg, s, now, 0)) {
      hak_heap_list_push(&heap->partial[s->class_idx], s, HAK_SLAB_PARTIAL);
    }
  }
}

hak_segment_t* hak_heap_adopt_one(hak_heap_t* heap, hak_segment_kind_t kind, int* released) {
  hak_segment_t* seg = hak_segment_adopt(kind, heap, heap->owner);
  if (seg == NULL) return NULL;
  HAK_LIST_PUSH(&heap->segments[kind], seg);
  adopt_slabs(heap, seg);
  *released = seg->free_count == seg->slab_count && (seg->next || seg->prev);
  if (*released) {
    HAK_LIST_REMOVE(&heap->segments[kind], seg);
    hak_segment_release(seg);
  }
  return seg;
}

void hak_heap_reclaim_abandoned(hak_heap_t* heap, unsigned max_per_kind) {
  for (unsigned k = 0; k < 2; k++) {
    int released;
    for (unsigned i = 0; i < max_per_kind; i++) {
      if (hak_heap_adopt_one(heap, (hak_segment_kind_t)k, &released) == NULL) break;
    }
  }
}

// Fork child: the heap's thread stopped at an unknown point of its slow paths, so the slab masks,
// their counts and the header of a slab being set up may disagree. Repairs what can be derived
// again; a slab whose header was half written holds no block anyone in the child can own.
static void repair_after_fork(hak_segment_t* seg, uint64_t now) {
  hak_segment_repair_counts(seg);
  for (unsigned i = 0; i < seg->slab_count; i++) {
    hak_slab_t* s = hak_slab_at(seg, i);
    if ((seg->free_mask & ((uint64_t)1 << i)) || hak_slab_header_valid(seg, s, i)) continue;
    hak_slab_mark_unused(s);
    hak_segment_slab_freed(seg, i, HAK_SLAB_UNUSED_CLASS, now);
  }
}

// Gives every cached mid block back to its slab, without retiring the slabs this empties: the
// caller's walk over all slabs does.
static void drop_mid_caches(hak_heap_t* heap) {
  for (unsigned i = 0; i < HAK_MID_CLASSES; i++) {
    hak_block_t* b = hak_mid_cache_cut(&heap->mid_cache[i], HAK_TINY_CLASSES + i, 0);
    while (b) {
      hak_block_t* next = hak_mid_cache_link(b, HAK_TINY_CLASSES + i);
      hak_slab_free_local(hak_slab_of_shift(b, HAK_MEDIUM_SLAB_SHIFT), b, HAK_MEDIUM_SLAB_SHIFT);
      b = next;
    }
  }
}

// Hands all of a heap's segments to whoever allocates next, and returns the heap to the
// registry. `torn`: the heap's thread vanished in a fork rather than exiting.
static void heap_abandon(hak_heap_t* heap, int torn) {
  hak_remote_flush_all(&heap->remote);  // first: some may be for this heap's own slabs
  drop_mid_caches(heap);
  for (unsigned c = 0; c < HAK_CLASS_COUNT; c++) {
    if (heap->current[c] != HAK_EMPTY_SLAB) heap->current[c]->list = 0;
  }
  uint64_t now = hak_os_now_ms();
  for (unsigned k = 0; k < 2; k++) {
    hak_segment_t* seg = heap->segments[k];
    while (seg) {
      hak_segment_t* next = seg->next;
      seg->next = seg->prev = NULL;
      if (torn) repair_after_fork(seg, now);
      for (unsigned i = 0; i < seg->slab_count; i++) {
        if (seg->free_mask & ((uint64_t)1 << i)) continue;
        hak_slab_t* s = hak_slab_at(seg, i);
        // Every slab's, not only the current slabs': a fork may have stopped the thread in a
        // refill between loading a slab's free list and making the slab current.
        hak_slab_unload_free(s);
        hak_heap_collect_or_give_back(heap, seg, s, now, torn);
      }
      if (seg->free_count == seg->slab_count) {
        hak_segment_release(seg);
      } else {
        hak_segment_abandon(seg);
      }
      seg = next;
    }
  }
  pthread_mutex_lock(&heaps_lock);
  // Its counts go to the totals; the rest is reset when the heap is taken again.
  for (unsigned c = 0; c < HAK_CLASS_COUNT; c++) {
    hak_class_counters_add(&gone.counters[c], &heap->counters[c]);
  }
  for (unsigned i = 0; i < HAK_MID_SIZE_BUCKETS; i++) gone.mid_sizes[i] += heap->mid_sizes[i];
  heap->in_use = 0;
  __atomic_store_n(&live_heaps, live_heaps - 1, __ATOMIC_RELAXED);
  heap->owner = 0;
  pthread_mutex_unlock(&heaps_lock);
}

void hak_heap_thread_exit(void* arg) {
  hak_heap_t* heap = (hak_heap_t*)arg;
  if (heap != hak_tls.heap) return;
  for (size_t i = 0; i < HAK_TINY_INDEXES; i++) hak_tls.direct[i] = HAK_EMPTY_SLAB;
  hak_tls.heap = HAK_EMPTY_HEAP;
  heap_abandon(heap, 0);
  hak_purge_safe_point();
}

unsigned hak_heap_live_count(void) { return __atomic_load_n(&live_heaps, __ATOMIC_RELAXED); }

void hak_heap_for_each(void (*visit)(hak_heap_t* heap, void* arg), void* arg,
                       hak_heap_gone_t* gone_out) {
  pthread_mutex_lock(&heaps_lock);
  if (gone_out) *gone_out = gone;
  for (hak_heap_t* heap = heaps; heap; heap = heap->next) {
    if (heap->in_use) visit(heap, arg);
  }
  pthread_mutex_unlock(&heaps_lock);
}

// Held by the taker and by the heap checker, whose walk must see batches stay put.
static pthread_mutex_t takeover_lock = PTHREAD_MUTEX_INITIALIZER;

void hak_heap_hold_takeovers(int hold) {
  if (hold) {
    pthread_mutex_lock(&takeover_lock);
  } else {
    pthread_mutex_unlock(&takeover_lock);
  }
}

static uint64_t takeovers;  // __atomic

uint64_t hak_heap_takeovers(void) { return __atomic_load_n(&takeovers, __ATOMIC_RELAXED); }

// Claims are made and ended under the registry lock, which fork takes: no claim outlives a fork,
// and a heap is not reset while claimed.
int hak_heap_take_idle_batches(void) {
  int claims = 0, held = 0;
  if (pthread_mutex_trylock(&takeover_lock) != 0) return 1;  // a walk: next pass
  pthread_mutex_lock(&heaps_lock);
  for (hak_heap_t* heap = heaps; heap; heap = heap->next) {
    if (heap->in_use) claims += hak_remote_claim(&heap->remote);
  }
  int barrier = claims > 0 && hak_os_barrier_all_threads() == 0;
  for (hak_heap_t* heap = heaps; heap; heap = heap->next) {
    if (!heap->in_use) continue;
    if (hak_remote_take_claimed(&heap->remote, barrier)) {
      __atomic_fetch_add(&takeovers, 1, __ATOMIC_RELAXED);
    }
    held |= hak_remote_holds(&heap->remote);
  }
  pthread_mutex_unlock(&heaps_lock);
  pthread_mutex_unlock(&takeover_lock);
  return held;
}

void hak_heap_fork_prepare(void) {
  pthread_mutex_lock(&takeover_lock);
  pthread_mutex_lock(&heaps_lock);
}

void hak_heap_fork_parent(void) {
  pthread_mutex_unlock(&heaps_lock);
  pthread_mutex_unlock(&takeover_lock);
}

// Only the forking thread exists in the child: every other heap's segments become adoptable.
void hak_heap_fork_child(void) {
  pthread_mutex_unlock(&heaps_lock);
  pthread_mutex_unlock(&takeover_lock);
  for (hak_heap_t* heap = heaps; heap; heap = heap->next) {
    if (heap->in_use && heap != hak_tls.heap) heap_abandon(heap, 1);
  }
}
