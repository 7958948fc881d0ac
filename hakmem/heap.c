// Allocation call tree (small and medium classes):
//   malloc ─ hak_tiny_alloc (tiny/tiny.h, inline) ── pop current slab's free list
//              └─ hak_heap_alloc_slow ─ heap_init_thread (first call of a thread)
//                                     └─ refill ─ take local_free │ collect remote │ carve
//                                                 └─ next partial slab │ sweep full list
//                                                 └─ fresh_slab ─ own segment │ adopt │ acquire
// Free call tree:
//   free ─ hak_tiny_free (inline): map word == this thread ── push local_free, --used
//            ├─ used hit 0 ── hak_heap_slab_emptied ── retire ── hak_segment_slab_freed
//            └─ otherwise ── hak_heap_free_slow ─ validate ─ local free (medium) │ remote CAS
#include "hakmem/heap.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "hakmem/ace/policy.h"
#include "hakmem/config.h"
#include "hakmem/crash.h"
#include "hakmem/os/os.h"
#include "hakmem/wrap.h"

const hak_slab_t hak_empty_slab = {.class_idx = HAK_SLAB_UNUSED_CLASS};

HAK_TLS hak_tls_t hak_tls = {
    .direct = {[0 ... HAK_TINY_INDEXES - 1] = (hak_slab_t*)&hak_empty_slab},
    .heap = NULL,
};

// Heap registry: every heap ever made, in use or waiting for reuse. Heaps are never unmapped.
static pthread_mutex_t heaps_lock = PTHREAD_MUTEX_INITIALIZER;
static hak_heap_t* heaps;
static hak_class_counters_t gone_counters[HAK_CLASS_COUNT];  // of heaps whose thread exited
static uint64_t gone_mid_sizes[HAK_MID_SIZE_BUCKETS];
static pthread_key_t exit_key;
// pthread_once: glibc restarts it in a fork child whose parent forked mid-initialisation (a flag
// of our own would leave the child waiting for a thread it does not have).
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static _Atomic int initialised;        // the one-load fast path
static unsigned live_heaps;            // heaps in use; written under heaps_lock, read with __atomic
static HAK_TLS int initializing_here;  // this thread runs global_init

#define HAK_EMPTY ((hak_slab_t*)&hak_empty_slab)
#define PURGE_CHECK_EVERY 64

static uint64_t purge_interval_ms(void) {
  uint64_t half = (uint64_t)hak_config.purge_delay_ms / 2;
  return half ? half : 1;
}

// ---------------------------------------------------------------------------------------------
// Slab lists

static void list_push(hak_slab_list_t* list, hak_slab_t* s, uint8_t which) {
  s->prev = NULL;
  s->next = list->head;
  if (list->head) list->head->prev = s;
  list->head = s;
  list->count++;
  s->list = which;
}

static void list_remove(hak_slab_list_t* list, hak_slab_t* s) {
  if (s->prev) s->prev->next = s->next;
  else list->head = s->next;
  if (s->next) s->next->prev = s->prev;
  s->next = s->prev = NULL;
  list->count--;
  s->list = 0;
}

static hak_slab_list_t* list_of(hak_heap_t* heap, hak_slab_t* s) {
  if (s->list == HAK_SLAB_FULL) return &heap->full[s->class_idx];
  if (s->list == HAK_SLAB_PARTIAL) return &heap->partial[s->class_idx];
  return NULL;
}

static void move_full_to_partial(hak_heap_t* heap, hak_slab_t* s) {
  list_remove(&heap->full[s->class_idx], s);
  list_push(&heap->partial[s->class_idx], s, HAK_SLAB_PARTIAL);
}

// The class's kept empty slab if it is still empty and idle on the partial list, else NULL.
static hak_slab_t* idle_kept_empty(hak_heap_t* heap, unsigned cls) {
  hak_slab_t* kept = heap->kept_empty[cls];
  if (kept && kept->used == 0 && kept != heap->current[cls] && kept->list == HAK_SLAB_PARTIAL) {
    return kept;
  }
  return NULL;
}

static void set_current(hak_heap_t* heap, unsigned cls, hak_slab_t* s) {
  heap->current[cls] = s;
  if (cls >= HAK_TINY_CLASSES) return;
  for (size_t i = 0; i < HAK_TINY_INDEXES; i++) {
    if (hak_tiny_class_of_index[i] == cls) hak_tls.direct[i] = s;
  }
}

// ---------------------------------------------------------------------------------------------
// Segments and slabs of one heap

static void segment_list_push(hak_heap_t* heap, hak_segment_t* seg) {
  hak_segment_t** head = &heap->segments[seg->kind];
  seg->prev = NULL;
  seg->next = *head;
  if (*head) (*head)->prev = seg;
  *head = seg;
}

static void segment_list_remove(hak_heap_t* heap, hak_segment_t* seg) {
  if (seg->prev) seg->prev->next = seg->next;
  else heap->segments[seg->kind] = seg->next;
  if (seg->next) seg->next->prev = seg->prev;
  seg->next = seg->prev = NULL;
}

static void purge_heap(hak_heap_t* heap, uint64_t now, int force) {
  for (unsigned k = 0; k < 2; k++) {
    for (hak_segment_t* seg = heap->segments[k]; seg; seg = seg->next) {
      if (seg->purge_pending) hak_segment_purge_slabs(seg, now, force);
    }
  }
  hak_segment_purge_cache(now, force);
  heap->next_purge_ms = now + purge_interval_ms();
}

static void reclaim_abandoned(hak_heap_t* heap, unsigned max_per_kind);

static void retire(hak_heap_t* heap, hak_slab_t* s);

// Gives back the kept empty slabs that stayed empty for a whole purge interval.
static void retire_kept_empty(hak_heap_t* heap) {
  for (unsigned c = 0; c < HAK_CLASS_COUNT; c++) {
    hak_slab_t* kept = idle_kept_empty(heap, c);
    if (kept) retire(heap, kept);  // clears kept_empty[c]
    heap->kept_empty[c] = NULL;
  }
}

static void maybe_purge(hak_heap_t* heap) {
  uint64_t now = hak_os_now_ms();
  if (now < heap->next_purge_ms) return;
  heap->next_purge_ms = now + purge_interval_ms();  // before retiring: retire calls back here
  retire_kept_empty(heap);
  reclaim_abandoned(heap, 2);
  purge_heap(heap, now, 0);
}

// Gives an empty slab (used == 0) back to its segment, after checking its free list unless
// `torn`: in a fork child, a slab of a thread that vanished mid-operation may have free blocks on
// no list (lost, by design, rather than on two), which the check would call a double free.
static void slab_give_back(hak_segment_t* seg, hak_slab_t* s, uint64_t now, int torn) {
  if (hak_config.check_frees && !torn) hak_slab_check_empty(s);
  unsigned cls = s->class_idx;
  hak_slab_mark_unused(s);
  hak_segment_slab_freed(seg, s->index, cls, now);
}

static unsigned collect_remote(hak_heap_t* heap, hak_slab_t* s) {
  unsigned n = hak_slab_collect_remote(s);
  heap->counters[s->class_idx].remote_frees += n;
  return n;
}

// Collects a slab's remote frees (counted for `heap`); gives the slab back to its segment if that
// emptied it. Returns nonzero if the slab still holds blocks. `torn`: see slab_give_back.
static int collect_or_give_back(hak_heap_t* heap, hak_segment_t* seg, hak_slab_t* s, uint64_t now,
                                int torn) {
  collect_remote(heap, s);
  if (s->used != 0) return 1;
  slab_give_back(seg, s, now, torn);
  return 0;
}

// Frees an empty slab back to its segment; the segment goes back when all its slabs are free.
static void retire(hak_heap_t* heap, hak_slab_t* s) {
  if (heap->kept_empty[s->class_idx] == s) heap->kept_empty[s->class_idx] = NULL;
  hak_slab_list_t* list = list_of(heap, s);
  if (list) list_remove(list, s);
  hak_segment_t* seg = hak_segment_lookup(s, hak_map_word(s));
  HAK_CHECK(seg != NULL, "corrupted segment header", s, "retiring slab");
  slab_give_back(seg, s, hak_os_now_ms(), 0);
  if (seg->free_count == seg->slab_count && (seg->next || seg->prev)) {
    // Keep one segment per kind around; release the others.
    segment_list_remove(heap, seg);
    hak_segment_release(seg);
  }
  maybe_purge(heap);
}

// Puts every in-use slab of an adopted segment on this heap's lists.
static void adopt_slabs(hak_heap_t* heap, hak_segment_t* seg) {
  uint64_t now = hak_os_now_ms();
  for (unsigned i = 0; i < seg->slab_count; i++) {
    if (seg->free_mask & ((uint64_t)1 << i)) continue;
    hak_slab_t* s = hak_slab_at(seg, i);
    s->list = 0;
    if (collect_or_give_back(heap, seg, s, now, 0)) {
      list_push(&heap->partial[s->class_idx], s, HAK_SLAB_PARTIAL);
    }
  }
}

// Takes one abandoned segment of `kind` into this heap; one whose slabs turned out all free (its
// blocks were freed remotely after its thread exited) goes straight back. NULL if none is left.
static hak_segment_t* adopt_one(hak_heap_t* heap, hak_segment_kind_t kind, int* released) {
  hak_segment_t* seg = hak_segment_adopt(kind, heap, heap->owner);
  if (seg == NULL) return NULL;
  segment_list_push(heap, seg);
  adopt_slabs(heap, seg);
  *released = seg->free_count == seg->slab_count && (seg->next || seg->prev);
  if (*released) {
    segment_list_remove(heap, seg);
    hak_segment_release(seg);
  }
  return seg;
}

// Bounded reclaim of abandoned segments, so memory freed after its thread exited goes back to
// the OS even when no thread needs fresh slabs.
static void reclaim_abandoned(hak_heap_t* heap, unsigned max_per_kind) {
  for (unsigned k = 0; k < 2; k++) {
    int released;
    for (unsigned i = 0; i < max_per_kind; i++) {
      if (adopt_one(heap, (hak_segment_kind_t)k, &released) == NULL) break;
    }
  }
}

static unsigned carve_batch(const hak_slab_t* s) {
  unsigned n = (unsigned)(2 * HAK_PAGE_SIZE / s->block_size);
  return n < 4 ? 4 : n;
}

static unsigned carve(hak_heap_t* heap, hak_slab_t* s) {
  unsigned n = hak_slab_carve(s, carve_batch(s));
  heap->counters[s->class_idx].fresh_blocks += n;
  return n;
}

static hak_slab_t* slab_from_own_segments(hak_heap_t* heap, hak_segment_kind_t kind, unsigned cls) {
  for (hak_segment_t* seg = heap->segments[kind]; seg; seg = seg->next) {
    int index = hak_segment_take_slab(seg, cls);
    if (index >= 0) return hak_slab_init(seg, (unsigned)index, cls, hak_class_size(cls));
  }
  return NULL;
}

// A free slab for `cls`: from this heap's segments, else an abandoned segment, else a new one.
// Adopting a segment also puts its in-use slabs on the partial lists, which the caller re-checks.
static hak_slab_t* fresh_slab(hak_heap_t* heap, unsigned cls) {
  hak_segment_kind_t kind = cls < HAK_TINY_CLASSES ? HAK_KIND_SMALL : HAK_KIND_MEDIUM;
  hak_slab_t* s = slab_from_own_segments(heap, kind, cls);
  if (s) return s;
  int released;
  while (adopt_one(heap, kind, &released) != NULL) {
    if (released) continue;
    s = slab_from_own_segments(heap, kind, cls);
    if (s || heap->partial[cls].head) return s;
  }
  hak_segment_t* seg = hak_segment_acquire(kind, heap, heap->owner);
  if (seg == NULL) return NULL;
  segment_list_push(heap, seg);
  return slab_from_own_segments(heap, kind, cls);
}

// Moves full slabs that have received frees since back to the partial list.
static void sweep_full(hak_heap_t* heap, unsigned cls) {
  hak_slab_t* s = heap->full[cls].head;
  while (s) {
    hak_slab_t* next = s->next;
    collect_remote(heap, s);
    if (s->used == 0) {
      retire(heap, s);
    } else if (s->local_free) {
      move_full_to_partial(heap, s);
    }
    s = next;
  }
  heap->fresh_since_sweep[cls] = 0;
}

// Makes heap->current[cls] a slab with a non-empty free list; NULL if memory is exhausted.
static hak_slab_t* refill(hak_heap_t* heap, unsigned cls) {
  heap->counters[cls].refills++;
  hak_slab_t* s = heap->current[cls];
  if (s != HAK_EMPTY) {
    if (hak_slab_take_local(s)) return s;
    if (collect_remote(heap, s) && hak_slab_take_local(s)) return s;
    if (carve(heap, s)) return s;
    list_push(&heap->full[cls], s, HAK_SLAB_FULL);
    set_current(heap, cls, HAK_EMPTY);
  }
  int swept = 0;
  for (;;) {
    while ((s = heap->partial[cls].head) != NULL) {
      list_remove(&heap->partial[cls], s);
      collect_remote(heap, s);
      if (hak_slab_take_local(s)) {
        set_current(heap, cls, s);
        return s;
      }
      list_push(&heap->full[cls], s, HAK_SLAB_FULL);
    }
    if (!swept && heap->full[cls].count > 0 &&
        heap->fresh_since_sweep[cls] * 8u >= heap->full[cls].count) {
      swept = 1;
      sweep_full(heap, cls);
      continue;
    }
    s = fresh_slab(heap, cls);
    if (s == NULL) {
      if (heap->partial[cls].head) continue;  // adoption brought slabs of this class
      return NULL;
    }
    heap->fresh_since_sweep[cls]++;
    carve(heap, s);
    set_current(heap, cls, s);
    return s;
  }
}

// ---------------------------------------------------------------------------------------------
// Mid caches

static HAK_NORETURN HAK_COLD void invalid_free(const void* p, const char* detail) {
  hak_fatal("free of an invalid pointer", p, detail);
}

// Unlike tiny frees, a mid free moves its slab off the full list at once: mid slabs hold few
// blocks, and a full slab waiting for a sweep would make refill take fresh slabs instead.
static void free_to_slab(hak_heap_t* heap, hak_block_t* b) {
  hak_slab_t* s = hak_slab_of_shift(b, HAK_MEDIUM_SLAB_SHIFT);
  // The mid free fast path could not see the carved count.
  if (hak_config.check_frees && !hak_slab_is_block(s, b)) invalid_free(b, "not the start of a block");
  if (hak_slab_free_local(s, b)) {
    hak_heap_slab_emptied(s);
  } else if (s->list == HAK_SLAB_FULL) {
    move_full_to_partial(heap, s);
  }
}

// Keeps the newest `keep` blocks of the mid cache of `cls` and gives the rest back to their slabs.
static void mid_cache_trim(hak_heap_t* heap, unsigned cls, uint32_t keep) {
  hak_mid_cache_t* cache = &heap->mid_cache[cls - HAK_TINY_CLASSES];
  uint32_t count = cache->count;
  if (count <= keep) return;
  hak_block_t* rest = cache->head;
  if (keep == 0) {
    cache->head = NULL;
  } else {
    hak_block_t* last_kept = cache->head;
    for (uint32_t i = 1; i < keep; i++) last_kept = hak_mid_cache_link(last_kept, cls);
    rest = hak_mid_cache_link(last_kept, cls);
    hak_block_set_next(last_kept, NULL);
  }
  cache->count = keep;
  heap->counters[cls].cache_flushed += count - keep;
  while (rest) {
    hak_block_t* next = hak_mid_cache_link(rest, cls);
    free_to_slab(heap, rest);
    rest = next;
  }
}

void hak_heap_mid_cache_overflow(hak_heap_t* heap, unsigned cls, void* p) {
  hak_mid_cache_t* cache = &heap->mid_cache[cls - HAK_TINY_CLASSES];
  hak_block_t* block = (hak_block_t*)p;
  heap->counters[cls].cache_overflows++;
  if (cache->limit == 0) {
    free_to_slab(heap, block);
    return;
  }
  // p joins the cache (the next malloc of this class wants it: it is the warmest block); the
  // older half goes back to the slabs.
  hak_block_set_next(block, cache->head);
  cache->head = block;
  cache->count++;
  cache->pushes++;
  mid_cache_trim(heap, cls, (cache->limit + 1) / 2);
}

// W_MAX rounding: a block cached for a larger class, at most HAKMEM_MID_WMAX_PCT of n, rather
// than refilling class `cls` from its slabs (which may carve fresh memory). NULL if none.
static void* take_cached_larger(hak_heap_t* heap, unsigned cls, size_t n) {
  for (unsigned c = cls + 1; c < HAK_REGULAR_CLASSES; c++) {  // sorted by size: not the extra
    if ((uint64_t)hak_class_size(c) * 100 > (uint64_t)n * heap->mid_wmax_pct) break;
    hak_block_t* b = hak_mid_cache_pop(&heap->mid_cache[c - HAK_TINY_CLASSES], c);
    if (b) return b;
  }
  return NULL;
}

// Frees every cached mid block to its slab. With `retire_emptied` 0 (thread exit, fork child:
// the heap is being abandoned), emptied slabs are left for the caller's walk over all slabs.
static void mid_cache_flush_all(hak_heap_t* heap, int retire_emptied) {
  for (unsigned i = 0; i < HAK_MID_CLASSES; i++) {
    if (retire_emptied) {
      mid_cache_trim(heap, HAK_TINY_CLASSES + i, 0);
      continue;
    }
    hak_mid_cache_t* cache = &heap->mid_cache[i];
    hak_block_t* b = cache->head;
    cache->head = NULL;
    cache->count = 0;
    while (b) {
      hak_block_t* next = hak_mid_cache_link(b, HAK_TINY_CLASSES + i);
      hak_slab_free_local(hak_slab_of_shift(b, HAK_MEDIUM_SLAB_SHIFT), b);
      b = next;
    }
  }
}

// The class went idle in every thread (the engine's policy says so): its cached blocks, its empty
// slabs and their pages go back now rather than after the purge delay.
static void release_idle_class(hak_heap_t* heap, unsigned cls) {
  if (cls >= HAK_TINY_CLASSES) mid_cache_trim(heap, cls, 0);
  hak_slab_t* kept = idle_kept_empty(heap, cls);
  if (kept) retire(heap, kept);
  hak_slab_t* current = heap->current[cls];
  if (current != HAK_EMPTY) {
    hak_slab_unload_free(current);  // its carved, never handed out blocks count as used
    if (current->used == 0) {
      set_current(heap, cls, HAK_EMPTY);
      retire(heap, current);
    }
  }
  for (unsigned k = 0; k < 2; k++) {
    for (hak_segment_t* seg = heap->segments[k]; seg; seg = seg->next) {
      if (seg->purge_pending) hak_segment_purge_class(seg, cls);
    }
  }
}

// Takes up the engine's newest policy: mid cache limits (a cache over its new limit gives back
// its oldest blocks), W_MAX, and the idle classes' memory.
static HAK_NOINLINE void apply_policy(hak_heap_t* heap) {
  hak_ace_policy_t policy;
  if (hak_ace_policy_read(&policy) == 0) return;
  heap->policy_version = policy.version;
  heap->mid_wmax_pct = policy.mid_wmax_pct;
  for (unsigned i = 0; i < HAK_MID_CLASSES; i++) {
    hak_mid_cache_t* cache = &heap->mid_cache[i];
    if (cache->block_size == 0) continue;  // the extra class, not placed
    cache->limit = policy.mid_cache_limit[i];
    mid_cache_trim(heap, HAK_TINY_CLASSES + i, cache->limit);
  }
  for (unsigned c = 0; c < HAK_CLASS_COUNT; c++) {
    if (hak_ace_policy_idle(&policy, c)) release_idle_class(heap, c);
  }
}

// ---------------------------------------------------------------------------------------------
// Heap lifetime

static void heap_reset(hak_heap_t* heap);

static hak_heap_t* heap_from_pool(void) {
  pthread_mutex_lock(&heaps_lock);
  hak_heap_t* heap = heaps;
  while (heap && heap->in_use) heap = heap->next;
  if (heap == NULL) {
    heap = hak_os.map(NULL, hak_align_up(sizeof(hak_heap_t), HAK_PAGE_SIZE));
    if (heap) {
      heap->next = heaps;
      if (heaps) heaps->prev = heap;
      heaps = heap;
    }
  }
  if (heap) {
    heap->in_use = 1;
    __atomic_store_n(&live_heaps, live_heaps + 1, __ATOMIC_RELAXED);
    heap_reset(heap);
  }
  pthread_mutex_unlock(&heaps_lock);
  return heap;
}

// An empty mid cache for blocks of `block_size` (0: the extra class, not placed yet; nothing can
// be freed into it).
static void mid_cache_setup(hak_mid_cache_t* cache, size_t block_size) {
  *cache = (hak_mid_cache_t){0};
  if (block_size == 0) return;
  cache->limit = (uint32_t)((size_t)hak_config.mid_cache_kb * 1024 / block_size);
  cache->block_recip = hak_block_recip(block_size);
  cache->block_size = (uint32_t)block_size;
  cache->blocks_end = (uint32_t)(hak_medium_slab_capacity(block_size) * block_size);
}

// Under heaps_lock: the extra class's size is read here and written by hak_heap_place_extra_class
// under the same lock, so every heap's cache agrees with the class table.
static void heap_reset(hak_heap_t* heap) {
  for (unsigned c = 0; c < HAK_CLASS_COUNT; c++) heap->current[c] = HAK_EMPTY;
  memset(heap->partial, 0, sizeof heap->partial);
  memset(heap->full, 0, sizeof heap->full);
  memset(heap->fresh_since_sweep, 0, sizeof heap->fresh_since_sweep);
  memset(heap->kept_empty, 0, sizeof heap->kept_empty);
  memset(heap->counters, 0, sizeof heap->counters);
  memset(heap->mid_sizes, 0, sizeof heap->mid_sizes);
  heap->policy_version = 0;
  heap->mid_wmax_pct = (uint32_t)hak_config.mid_wmax_pct;
  for (unsigned i = 0; i < HAK_MID_CLASSES; i++) {
    mid_cache_setup(&heap->mid_cache[i], hak_class_size(HAK_TINY_CLASSES + i));
  }
  heap->segments[0] = heap->segments[1] = NULL;
  heap->slow_calls = 0;
  heap->next_purge_ms = 0;
}

static hak_heap_t* heap_init_thread(void) {
  hak_heap_global_init();
  hak_heap_t* heap = heap_from_pool();
  if (heap == NULL) return NULL;
  heap->owner = hak_thread_id();
  HAK_CHECK((heap->owner & HAK_KIND_MASK) == 0 && heap->owner != HAK_OWNER_NONE,
            "unsupported thread pointer", (void*)heap->owner, "must be 16-byte aligned");
  hak_tls.heap = heap;
  // Set after hak_tls.heap: pthread_setspecific may allocate, and must find the heap ready.
  pthread_setspecific(exit_key, heap);
  return heap;
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

static void add_counters(hak_class_counters_t* to, const hak_class_counters_t* from) {
  to->refills += from->refills;
  to->fresh_blocks += from->fresh_blocks;
  to->remote_frees += from->remote_frees;
  to->cache_overflows += from->cache_overflows;
  to->cache_misses += from->cache_misses;
  to->cache_flushed += from->cache_flushed;
}

// Hands all of a heap's segments to whoever allocates next, and returns the heap to the pool.
// `torn`: the heap's thread vanished in a fork rather than exiting.
static void heap_abandon(hak_heap_t* heap, int torn) {
  mid_cache_flush_all(heap, 0);
  for (unsigned c = 0; c < HAK_CLASS_COUNT; c++) {
    if (heap->current[c] != HAK_EMPTY) {
      hak_slab_unload_free(heap->current[c]);
      heap->current[c]->list = 0;
    }
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
        collect_or_give_back(heap, seg, hak_slab_at(seg, i), now, torn);
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
  // Its counts go to the totals; the rest is reset when the heap is taken again (heap_from_pool).
  for (unsigned c = 0; c < HAK_CLASS_COUNT; c++) add_counters(&gone_counters[c], &heap->counters[c]);
  for (unsigned i = 0; i < HAK_MID_SIZE_BUCKETS; i++) gone_mid_sizes[i] += heap->mid_sizes[i];
  heap->in_use = 0;
  __atomic_store_n(&live_heaps, live_heaps - 1, __ATOMIC_RELAXED);
  heap->owner = 0;
  pthread_mutex_unlock(&heaps_lock);
}

static void thread_exit(void* arg) {
  hak_heap_t* heap = (hak_heap_t*)arg;
  if (heap != hak_tls.heap) return;
  for (size_t i = 0; i < HAK_TINY_INDEXES; i++) hak_tls.direct[i] = HAK_EMPTY;
  hak_tls.heap = NULL;
  heap_abandon(heap, 0);
}

static void fork_prepare(void) {
  pthread_mutex_lock(&heaps_lock);
  hak_segment_fork_prepare();
}

static void fork_parent(void) {
  hak_segment_fork_parent();
  pthread_mutex_unlock(&heaps_lock);
}

// Only the forking thread exists in the child: every other heap's segments become adoptable.
static void fork_child(void) {
  hak_segment_fork_child();
  pthread_mutex_init(&heaps_lock, NULL);
  for (hak_heap_t* heap = heaps; heap; heap = heap->next) {
    if (heap->in_use && heap != hak_tls.heap) heap_abandon(heap, 1);
  }
}

static void global_init(void) {
  initializing_here = 1;
  hak_config_init_once();
#if HAKMEM_SECURE
  hak_block_keys[0] = (uintptr_t)hak_os_random();
  hak_block_keys[1] = (uintptr_t)hak_os_random();
#endif
  hak_crash_install();
  // A child of a fork during this function runs it again: what was done already is not redone
  // (handlers registered twice would lock heaps_lock twice at the next fork).
  static int key_created, handlers_registered;
  if (!key_created) key_created = pthread_key_create(&exit_key, thread_exit) == 0;
  // Before any other thread may take heaps_lock: a fork while one holds it, with no handler to
  // take it first, would leave it locked forever in the child.
  if (!handlers_registered) {
    handlers_registered = pthread_atfork(fork_prepare, fork_parent, fork_child) == 0;
  }
  initializing_here = 0;
  atomic_store_explicit(&initialised, 1, memory_order_release);
}

void hak_heap_global_init(void) {
  if (atomic_load_explicit(&initialised, memory_order_acquire)) return;
  // pthread_atfork may allocate: the initialising thread then comes back here, and finds
  // everything that allocation needs done already.
  if (initializing_here) return;
  pthread_once(&init_once, global_init);
}

// ---------------------------------------------------------------------------------------------
// Slow paths called by the fast paths

hak_heap_hook_t hak_heap_start_hook;

void* hak_heap_alloc_slow(size_t n) {
  hak_heap_t* heap = hak_tls.heap;
  if (HAK_UNLIKELY(heap == NULL)) {
    heap = heap_init_thread();
    if (heap == NULL) goto out_of_memory;
  }
  uint32_t calls = ++heap->slow_calls;
  if (HAK_UNLIKELY(calls % PURGE_CHECK_EVERY == 0)) {
    hak_heap_hook_t hook = __atomic_load_n(&hak_heap_start_hook, __ATOMIC_RELAXED);
    if (hook != NULL) hook();
  }
  // A routed range never gets a current slab or cached block: all its requests come here.
  if (HAK_UNLIKELY(hak_wrap_routes(n))) return hak_wrap_malloc(n);
  if (HAK_UNLIKELY(heap->policy_version != hak_ace_policy_version())) apply_policy(heap);
  unsigned cls = hak_size_class(n);
  // The extra class's cache geometry was published before its size (a release store): reading
  // the size with acquire order makes the geometry visible here.
  if (cls == HAK_EXTRA_CLASS) (void)__atomic_load_n(&hak_class_block_size[cls], __ATOMIC_ACQUIRE);
  hak_slab_t* s = heap->current[cls];
  if (s->free == NULL) {
    if (cls >= HAK_TINY_CLASSES) {
      heap->counters[cls].cache_misses++;
      heap->mid_sizes[(n - 1) >> 7]++;
      void* rounded = take_cached_larger(heap, cls, n);
      if (rounded) return rounded;
    }
    s = refill(heap, cls);
    if (s == NULL) goto out_of_memory;
    if (calls % PURGE_CHECK_EVERY == 0) maybe_purge(heap);
  }
  hak_block_t* b = s->free;
  s->free = hak_block_pop(b, s->slab_shift);
  hak_block_handed_out(b);
  return b;
out_of_memory:
  errno = ENOMEM;
  return NULL;
}

void hak_heap_slab_emptied(hak_slab_t* s) {
  hak_heap_t* heap = hak_tls.heap;
  HAK_ASSERT(heap != NULL);
  unsigned cls = s->class_idx;
  if (heap->current[cls] == s) return;  // stays current: next malloc reuses its blocks
  // Keep one empty slab per class on the partial list: a class that drains and refills around
  // a slab boundary would otherwise give back, re-carve and re-fault a slab each time.
  if (idle_kept_empty(heap, cls) == NULL) {
    if (hak_config.check_frees) hak_slab_check_empty(s);
    if (s->list == HAK_SLAB_FULL) move_full_to_partial(heap, s);
    heap->kept_empty[cls] = s;
    return;
  }
  retire(heap, s);
}

void hak_heap_invalid_free(const void* p) {
  const hak_slab_t* slab = hak_slab_of_shift(p, HAK_MEDIUM_SLAB_SHIFT);
  if (hak_slab_is_block(slab, p)) hak_fatal("double free detected", p, "the block was just freed");
  invalid_free(p, "not the start of a block");
}

void hak_heap_free_slow(void* p, uintptr_t map_word) {
  hak_segment_t* seg = hak_segment_lookup(p, map_word);
  if (seg == NULL) invalid_free(p, "not allocated by hakmem");
  hak_slab_t* s = hak_slab_of_shift(p, seg->slab_shift);
  uint64_t free_mask = __atomic_load_n(&seg->free_mask, __ATOMIC_RELAXED);
  if (free_mask & ((uint64_t)1 << s->index)) invalid_free(p, "its slab is free (double free?)");
  if (hak_config.check_frees && !hak_slab_is_block(s, p)) {
    invalid_free(p, "not the start of a block");
  }
  uintptr_t owner = map_word & ~(uintptr_t)HAK_KIND_MASK;
  int looks_free = hak_block_looks_free((const hak_block_t*)p, seg->slab_shift);
  if (owner == hak_thread_id()) {
    if (HAK_UNLIKELY(looks_free)) hak_heap_confirm_double_free(s, p);
    if (hak_slab_free_local(s, p)) hak_heap_slab_emptied(s);
  } else {
    // Another thread's lists cannot be walked from here: a block that looks free is taken to be.
    if (HAK_UNLIKELY(looks_free)) hak_fatal("double free detected", p, "the block is free already");
    hak_slab_free_remote(s, p);
  }
}

size_t hak_heap_usable_size(const void* p, uintptr_t map_word) {
  hak_segment_t* seg = hak_segment_lookup(p, map_word);
  if (seg == NULL) return 0;
  return hak_slab_of_shift(p, seg->slab_shift)->block_size;
}

// Takes the remote frees waiting on the current and partial slabs of `cls`; gives back the
// partial slabs they emptied.
static void collect_partial(hak_heap_t* heap, unsigned cls) {
  if (heap->current[cls] != HAK_EMPTY) collect_remote(heap, heap->current[cls]);
  hak_slab_t* s = heap->partial[cls].head;
  while (s) {
    hak_slab_t* next = s->next;
    collect_remote(heap, s);
    if (s->used == 0) retire(heap, s);
    s = next;
  }
}

void hak_heap_trim(void) {
  hak_heap_t* heap = hak_tls.heap;
  if (heap == NULL) heap = heap_init_thread();
  if (heap == NULL) return;
  mid_cache_flush_all(heap, 1);
  reclaim_abandoned(heap, UINT32_MAX);
  retire_kept_empty(heap);
  for (unsigned c = 0; c < HAK_CLASS_COUNT; c++) {
    sweep_full(heap, c);
    collect_partial(heap, c);
  }
  purge_heap(heap, hak_os_now_ms(), 1);
}

unsigned hak_heap_live_count(void) { return __atomic_load_n(&live_heaps, __ATOMIC_RELAXED); }

void hak_heap_for_each(void (*visit)(hak_heap_t* heap, void* arg), void* arg) {
  pthread_mutex_lock(&heaps_lock);
  for (hak_heap_t* heap = heaps; heap; heap = heap->next) {
    if (heap->in_use) visit(heap, arg);
  }
  pthread_mutex_unlock(&heaps_lock);
}

#if HAKMEM_DEBUG >= 2
uint64_t hak_debug_blocks_allocated;
uint64_t hak_debug_blocks_freed;
uint64_t hak_debug_class_allocs[HAK_CLASS_COUNT];
uint64_t hak_debug_class_frees[HAK_CLASS_COUNT];
#endif

void hak_heap_totals(hak_heap_totals_t* out) {
  memset(out, 0, sizeof *out);
  pthread_mutex_lock(&heaps_lock);
  for (hak_heap_t* heap = heaps; heap; heap = heap->next) {
    if (!heap->in_use) continue;
    out->heaps++;
    for (unsigned k = 0; k < 2; k++) {
      for (hak_segment_t* seg = heap->segments[k]; seg; seg = seg->next) {
        size_t in_use = (size_t)(seg->slab_count - seg->free_count);
        out->slabs_in_use += in_use;
        out->bytes_in_use_slabs += in_use * hak_segment_slab_size(seg);
        out->dirty_free_slabs += seg->purge_pending;
      }
    }
  }
  pthread_mutex_unlock(&heaps_lock);
}

static void count_slabs_by_class(hak_segment_t* seg, void* arg) {
  hak_class_totals_t* out = (hak_class_totals_t*)arg;
  for (unsigned i = 0; i < seg->slab_count; i++) {
    if (seg->free_mask & ((uint64_t)1 << i)) continue;
    unsigned cls = hak_slab_at(seg, i)->class_idx;
    if (cls < HAK_CLASS_COUNT) out[cls].slabs++;
  }
}

void hak_heap_class_totals(hak_class_totals_t out[HAK_CLASS_COUNT]) {
  memset(out, 0, sizeof(hak_class_totals_t) * HAK_CLASS_COUNT);
  pthread_mutex_lock(&heaps_lock);
  for (unsigned c = 0; c < HAK_CLASS_COUNT; c++) out[c].counters = gone_counters[c];
  for (hak_heap_t* heap = heaps; heap; heap = heap->next) {
    if (!heap->in_use) continue;
    for (unsigned c = 0; c < HAK_CLASS_COUNT; c++) add_counters(&out[c].counters, &heap->counters[c]);
    for (unsigned k = 0; k < 2; k++) {
      for (hak_segment_t* seg = heap->segments[k]; seg; seg = seg->next) count_slabs_by_class(seg, out);
    }
  }
  pthread_mutex_unlock(&heaps_lock);
  hak_segment_for_each_unowned(count_slabs_by_class, out);
}

// The engine reads words other threads write without synchronisation, on purpose (see
// hak_heap_observation_t): volatile keeps each a single load, and ThreadSanitizer is told not to
// instrument this reader (the writers are the fast and slow paths, which must stay plain).
#define RACY_READ(x) (*(const volatile __typeof__(x)*)&(x))

__attribute__((no_sanitize("thread"))) static void observe_heap(hak_heap_observation_t* out,
                                                                 const hak_heap_t* heap) {
  for (unsigned c = 0; c < HAK_CLASS_COUNT; c++) {
    const hak_class_counters_t* from = &heap->counters[c];
    hak_class_counters_t* to = &out->counters[c];
    to->refills += RACY_READ(from->refills);
    to->fresh_blocks += RACY_READ(from->fresh_blocks);
    to->remote_frees += RACY_READ(from->remote_frees);
    to->cache_overflows += RACY_READ(from->cache_overflows);
    to->cache_misses += RACY_READ(from->cache_misses);
    to->cache_flushed += RACY_READ(from->cache_flushed);
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
  memset(out, 0, sizeof *out);
  pthread_mutex_lock(&heaps_lock);
  memcpy(out->counters, gone_counters, sizeof gone_counters);
  memcpy(out->mid_sizes, gone_mid_sizes, sizeof gone_mid_sizes);
  for (hak_heap_t* heap = heaps; heap; heap = heap->next) {
    if (heap->in_use) observe_heap(out, heap);
  }
  pthread_mutex_unlock(&heaps_lock);
}

int hak_heap_place_extra_class(size_t block_size) {
  hak_heap_global_init();  // the caches' limits come from the configuration
  pthread_mutex_lock(&heaps_lock);
  int placed = 0;
  if (hak_class_size(HAK_EXTRA_CLASS) == 0 && hak_size_class_extra_fits(block_size)) {
    // Every heap's cache learns the geometry before any request can reach the class.
    for (hak_heap_t* heap = heaps; heap; heap = heap->next) {
      if (heap->in_use) mid_cache_setup(&heap->mid_cache[HAK_EXTRA_CLASS - HAK_TINY_CLASSES], block_size);
    }
    placed = hak_size_class_place_extra(block_size);
  }
  pthread_mutex_unlock(&heaps_lock);
  return placed;
}

static int list_holds(const hak_block_t* list, const void* p, size_t max) {
  for (size_t n = 0; list != NULL && n <= max; n++, list = hak_block_next(list)) {
    if (list == p) return 1;
  }
  return 0;
}

void hak_heap_confirm_double_free(hak_slab_t* slab, const void* p) {
  // Remote frees only prepend to their list: a snapshot of its head can be walked.
  const hak_block_t* remote = (const hak_block_t*)__atomic_load_n(&slab->remote, __ATOMIC_ACQUIRE);
  int found = list_holds(slab->free, p, slab->capacity) ||
              list_holds(slab->local_free, p, slab->capacity) ||
              list_holds(remote, p, slab->capacity);
  hak_heap_t* heap = hak_tls.heap;
  unsigned cls = slab->class_idx;
  if (!found && heap != NULL && cls >= HAK_TINY_CLASSES && cls < HAK_CLASS_COUNT) {
    const hak_mid_cache_t* cache = &heap->mid_cache[cls - HAK_TINY_CLASSES];
    found = list_holds(cache->head, p, cache->count);
  }
  if (found) hak_fatal("double free detected", p, "the block is on a free list");
}
