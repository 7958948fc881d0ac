// The slab queues of a thread heap: refill, retire, purge, and the frees that miss the fast paths.
//
// Allocation (tiny/ and pool/mid slow paths):
//   hak_heap_refill ─ current slab: take local_free │ collect remote │ carve
//                   └─ next partial slab │ sweep full list (when it grew enough)
//                   └─ fresh_slab ─ own segment │ adopt (heap.c) │ acquire a segment
// Free:
//   fast path emptied a slab (used hit 0) ── hak_heap_tiny_slab_emptied ── keep one │ retire
//   fast path missed ── hak_heap_free_slow ─ validate ─ local free │ remote batch (remote.h)
#include <stdlib.h>
#include <string.h>

#include "hakmem/config.h"
#include "hakmem/heap.h"
#include "hakmem/heap_slabs.h"
#include "hakmem/list.h"
#include "hakmem/os/os.h"

hak_heap_hook_t hak_heap_start_hook;

void hak_heap_list_push(hak_slab_list_t* list, hak_slab_t* s, uint8_t which) {
  HAK_LIST_PUSH(&list->head, s);
  list->count++;
  s->list = which;
}

static void list_remove(hak_slab_list_t* list, hak_slab_t* s) {
  HAK_LIST_REMOVE(&list->head, s);
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
  hak_heap_list_push(&heap->partial[s->class_idx], s, HAK_SLAB_PARTIAL);
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

static void purge_heap(hak_heap_t* heap, uint64_t now, int force) {
  for (unsigned k = 0; k < 2; k++) {
    for (hak_segment_t* seg = heap->segments[k]; seg; seg = seg->next) {
      if (hak_segment_dirty_slabs(seg)) hak_segment_purge_slabs(seg, now, force);
    }
  }
  hak_segment_purge_cache(now, force);
  heap->next_purge_ms = now + hak_purge_interval_ms();
}

static void retire(hak_heap_t* heap, hak_slab_t* s);
static void slab_emptied(hak_heap_t* heap, hak_slab_t* s);

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
  heap->next_purge_ms = now + hak_purge_interval_ms();  // before retiring: retire calls back here
  hak_remote_flush_all(&heap->remote);
  retire_kept_empty(heap);
  hak_heap_reclaim_abandoned(heap, 2);
  purge_heap(heap, now, 0);
}

// Gives an empty slab (used == 0) back to its segment. `torn`: see collect_or_give_back.
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

int hak_heap_collect_or_give_back(hak_heap_t* heap, hak_segment_t* seg, hak_slab_t* s,
                                  uint64_t now, int torn) {
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
    HAK_LIST_REMOVE(&heap->segments[seg->kind], seg);
    hak_segment_release(seg);
  }
  maybe_purge(heap);
}

static unsigned carve(hak_heap_t* heap, hak_slab_t* s) {
  unsigned n = (unsigned)(2 * HAK_PAGE_SIZE / s->block_size);
  n = hak_slab_carve(s, n < 4 ? 4 : n);
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
  while (hak_heap_adopt_one(heap, kind, &released) != NULL) {
    if (released) continue;
    s = slab_from_own_segments(heap, kind, cls);
    if (s || heap->partial[cls].head) return s;
  }
  hak_segment_t* seg = hak_segment_acquire(kind, heap, heap->owner);
  if (seg == NULL) return NULL;
  HAK_LIST_PUSH(&heap->segments[kind], seg);
  return slab_from_own_segments(heap, kind, cls);
}

// Moves full slabs that have received frees since back to the partial list; one that they emptied
// is kept or given back as any emptied slab (slab_emptied), so that a kept one is taken up again
// with its blocks carved already.
static void sweep_full(hak_heap_t* heap, unsigned cls) {
  hak_slab_t* s = heap->full[cls].head;
  while (s) {
    hak_slab_t* next = s->next;
    collect_remote(heap, s);
    if (s->used == 0) {
      slab_emptied(heap, s);
    } else if (s->local_free) {
      move_full_to_partial(heap, s);
    }
    s = next;
  }
  heap->fresh_since_sweep[cls] = 0;
}

static hak_slab_t* refill(hak_heap_t* heap, unsigned cls) {
  heap->counters[cls].refills++;
  hak_slab_t* s = heap->current[cls];
  if (s != HAK_EMPTY_SLAB) {
    if (hak_slab_take_local(s)) return s;
    if (collect_remote(heap, s) && hak_slab_take_local(s)) return s;
    if (carve(heap, s)) return s;
    hak_heap_list_push(&heap->full[cls], s, HAK_SLAB_FULL);
    set_current(heap, cls, HAK_EMPTY_SLAB);
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
      hak_heap_list_push(&heap->full[cls], s, HAK_SLAB_FULL);
    }
    // A short full list is swept before every fresh slab: other threads may have freed into it,
    // and a fresh slab faults in new pages (larson's peak RSS: 7.9 to 6.5 MiB). A long one only
    // once per eighth of its length in fresh slabs, so that sweeps stay amortised.
    if (!swept && heap->full[cls].count > 0 &&
        (heap->full[cls].count <= 16 || heap->fresh_since_sweep[cls] * 8u >= heap->full[cls].count)) {
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

hak_slab_t* hak_heap_refill_slow(hak_heap_t* heap, unsigned cls, uint32_t calls) {
  hak_slab_t* s = refill(heap, cls);
  if (s != NULL && calls % HAK_HEAP_CHECK_EVERY == 0) maybe_purge(heap);
  return s;
}

void hak_heap_invalid_free(const void* p, const char* detail) {
  hak_fatal("invalid pointer", p, detail);
}

// Unlike tiny frees, a mid free moves its slab off the full list at once: mid slabs hold few
// blocks, and a full slab waiting for a sweep would make refill take fresh slabs instead.
void hak_heap_free_to_slab(hak_heap_t* heap, hak_block_t* b) {
  hak_slab_t* s = hak_slab_of_shift(b, HAK_MEDIUM_SLAB_SHIFT);
  // The mid free fast path could not see the carved count.
  if (!hak_slab_is_block(s, b)) hak_slab_invalid_block(s, b, "free");
  if (hak_slab_free_local(s, b, HAK_MEDIUM_SLAB_SHIFT)) {
    slab_emptied(heap, s);
  } else if (s->list == HAK_SLAB_FULL) {
    move_full_to_partial(heap, s);
  }
}

void hak_heap_trim_mid_cache(hak_heap_t* heap, unsigned cls, uint32_t keep) {
  hak_block_t* blocks = hak_mid_cache_cut(&heap->mid_cache[cls - HAK_TINY_CLASSES], cls, keep);
  while (blocks) {
    hak_block_t* next = hak_mid_cache_link(blocks, cls);
    heap->counters[cls].cache_flushed++;
    hak_heap_free_to_slab(heap, blocks);
    blocks = next;
  }
}

void hak_heap_sync_extra_class(hak_heap_t* heap) {
  hak_mid_cache_t* cache = &heap->mid_cache[HAK_EXTRA_CLASS - HAK_TINY_CLASSES];
  if (cache->block_size != 0) return;
  // The size is published last (a release store): its geometry is visible with it.
  size_t size = __atomic_load_n(&hak_class_block_size[HAK_EXTRA_CLASS], __ATOMIC_ACQUIRE);
  if (size != 0) hak_mid_cache_setup(cache, size);
}

void hak_heap_release_class(hak_heap_t* heap, unsigned cls) {
  hak_slab_t* kept = idle_kept_empty(heap, cls);
  if (kept) retire(heap, kept);
  hak_slab_t* current = heap->current[cls];
  if (current != HAK_EMPTY_SLAB) {
    hak_slab_unload_free(current);  // its carved, never handed out blocks count as used
    if (current->used == 0) {
      set_current(heap, cls, HAK_EMPTY_SLAB);
      retire(heap, current);
    }
  }
  for (unsigned k = 0; k < 2; k++) {
    for (hak_segment_t* seg = heap->segments[k]; seg; seg = seg->next) {
      if (hak_segment_dirty_slabs(seg)) hak_segment_purge_class(seg, cls);
    }
  }
}

static void slab_emptied(hak_heap_t* heap, hak_slab_t* s) {
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

void hak_heap_tiny_slab_emptied(void* block) {
  slab_emptied(hak_tls.heap, hak_small_slab_of(block));
  hak_purge_safe_point();
}

// A slab block of this thread's that missed the fast paths (a mid block the cache does not take,
// a segment adopted since).
static HAK_NOINLINE void free_own_block(hak_heap_t* heap, hak_slab_t* s, void* p) {
  if (hak_slab_free_local(s, p, s->slab_shift)) {
    slab_emptied(heap, s);
    hak_purge_safe_point();
  }
}

// hak_heap_free_slow for one kind of segment, whose slab shift is a constant here.
HAK_INLINE void free_in_segment(hak_heap_t* heap, void* p, uintptr_t map_word, unsigned shift) {
  if (hak_segment_checked(p, shift) == NULL) {
    hak_heap_invalid_free(p, "free() of an address in no valid segment of hakmem");
  }
  hak_slab_t* s = hak_slab_of_shift(p, shift);
  if (HAK_UNLIKELY(!hak_slab_is_block_in(s, p, shift) || hak_block_is_free(p, shift))) {
    hak_slab_invalid_block(s, p, "free");
  }
  uintptr_t owner = map_word & ~(uintptr_t)HAK_KIND_MASK;
  if (owner == hak_thread_id()) {
    free_own_block(heap, s, p);
  } else if (HAK_LIKELY(heap != HAK_EMPTY_HEAP)) {
    hak_remote_free(&heap->remote, s, p, shift);
  } else {
    hak_slab_free_remote(s, p);
  }
}

void hak_heap_free_slow(hak_heap_t* heap, void* p, uintptr_t map_word) {
  uintptr_t kind = map_word & HAK_KIND_MASK;
  if (kind == HAK_KIND_SMALL) {
    free_in_segment(heap, p, map_word, HAK_SMALL_SLAB_SHIFT);
  } else if (kind == HAK_KIND_MEDIUM) {
    free_in_segment(heap, p, map_word, HAK_MEDIUM_SLAB_SHIFT);
  } else {
    hak_heap_invalid_free(p, "free() of an address in no valid segment of hakmem");
  }
}

size_t hak_heap_usable_size(const void* p, uintptr_t map_word, const char* op) {
  hak_segment_t* seg = hak_segment_lookup(p, map_word);
  if (seg == NULL) return 0;
  hak_slab_t* s = hak_slab_of_shift(p, seg->slab_shift);
  if (op != NULL) hak_slab_expect_held(s, p, op);
  return s->block_size;
}

// Takes the remote frees waiting on the current and partial slabs of `cls`; gives back the
// partial slabs they emptied.
static void collect_partial(hak_heap_t* heap, unsigned cls) {
  if (heap->current[cls] != HAK_EMPTY_SLAB) collect_remote(heap, heap->current[cls]);
  hak_slab_t* s = heap->partial[cls].head;
  while (s) {
    hak_slab_t* next = s->next;
    collect_remote(heap, s);
    if (s->used == 0) retire(heap, s);
    s = next;
  }
}

void hak_heap_trim(hak_heap_t* heap) {
  hak_remote_flush_all(&heap->remote);
  for (unsigned i = 0; i < HAK_MID_CLASSES; i++) {
    hak_heap_trim_mid_cache(heap, HAK_TINY_CLASSES + i, 0);
  }
  hak_heap_reclaim_abandoned(heap, UINT32_MAX);
  retire_kept_empty(heap);
  for (unsigned c = 0; c < HAK_CLASS_COUNT; c++) {
    sweep_full(heap, c);
    collect_partial(heap, c);
  }
  purge_heap(heap, hak_os_now_ms(), 1);
}
