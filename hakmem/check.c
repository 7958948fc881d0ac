#include "hakmem/check.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "hakmem/heap.h"
#include "hakmem/huge.h"
#include "hakmem/pool/large.h"
#include "hakmem/remote.h"
#include "hakmem/segment.h"
#include "hakmem/size_class.h"
#include "hakmem/slab.h"

// Most blocks a slab can hold: a small slab of the smallest class.
#define MAX_SLAB_BLOCKS (((size_t)1 << HAK_SMALL_SLAB_SHIFT) / 16)

// The live heaps, whose outgoing remote batches hold blocks of any thread's slabs.
#define MAX_HEAPS 4096

typedef struct walk_s {
  hak_check_report_t* report;
  int failed;
  const hak_heap_t** heaps;
  size_t heap_count;
} walk_t;

// Records the first violation only: later ones are usually its consequences.
static void fail(walk_t* w, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(walk_t* w, const char* fmt, ...) {
  if (w->failed) return;
  w->failed = 1;
  va_list args;
  va_start(args, fmt);
  vsnprintf(w->report->error, sizeof w->report->error, fmt, args);
  va_end(args);
}

// Marks block b of slab s in `seen`; 0 (after reporting) if b is no block of s or seen before.
static int mark(walk_t* w, const hak_slab_t* s, const void* b, uint64_t* seen, const char* list) {
  if (!hak_slab_is_block(s, b)) {
    fail(w, "%s list of slab %p (class %u) holds %p, which is not one of its blocks", list,
         (const void*)s, s->class_idx, b);
    return 0;
  }
  size_t index = (size_t)((const uint8_t*)b - hak_slab_start(s)) / s->block_size;
  uint64_t bit = (uint64_t)1 << (index % 64);
  if (seen[index / 64] & bit) {
    fail(w, "block %p of slab %p (class %u) is on a free list twice (%s list): double free or "
         "corrupted list", b, (const void*)s, s->class_idx, list);
    return 0;
  }
  seen[index / 64] |= bit;
  return 1;
}

// Length of one of the slab's lists; -1 after reporting a foreign block, a repeat or a cycle.
static long walk_list(walk_t* w, const hak_slab_t* s, const hak_block_t* head, uint64_t* seen,
                      const char* list) {
  long n = 0;
  for (const hak_block_t* b = head; b != NULL; b = hak_block_next(b)) {
    if (!mark(w, s, b, seen, list)) return -1;
    n++;
  }
  return n;
}

// Mid cache blocks of `heap` that belong to slab s (they count as used in it).
static long walk_cached(walk_t* w, const hak_heap_t* heap, const hak_slab_t* s, uint64_t* seen) {
  if (heap == NULL || s->class_idx < HAK_TINY_CLASSES) return 0;
  long n = 0;
  for (const hak_block_t* b = heap->mid_cache[s->class_idx - HAK_TINY_CLASSES].head; b; b = hak_block_next(b)) {
    if (hak_slab_of_shift(b, HAK_MEDIUM_SLAB_SHIFT) != s) continue;
    if (!mark(w, s, b, seen, "mid cache")) return -1;
    n++;
  }
  return n;
}

// Blocks of slab s waiting in the remote batches of any live heap (they count as used in it).
static long walk_batches(walk_t* w, const hak_slab_t* s, uint64_t* seen) {
  long n = 0;
  for (size_t h = 0; h < w->heap_count; h++) {
    const hak_remote_out_t* out = &w->heaps[h]->remote;
    for (unsigned i = 0; i < HAK_REMOTE_SLOTS; i++) {
      const hak_remote_batch_t* batch = &out->slots[i];
      if (batch->slab != s) continue;
      uint32_t count = 0;
      const hak_block_t* b = batch->head;
      for (; b != NULL; b = hak_block_next(b)) {
        if (!mark(w, s, b, seen, "remote batch")) return -1;
        count++;
        if (b == batch->tail) break;
      }
      if (b != batch->tail || count != batch->count || batch->count >= batch->limit) {
        fail(w, "heap %p: remote batch for slab %p holds %u blocks, count %u, limit %u, %s",
             (const void*)w->heaps[h], (const void*)s, count, batch->count, batch->limit,
             b == batch->tail ? "ending at its tail" : "not ending at its tail");
        return -1;
      }
      n += count;
    }
  }
  return n;
}

static void check_slab(walk_t* w, const hak_segment_t* seg, unsigned i, const hak_heap_t* heap) {
  const hak_slab_t* s = hak_slab_at(seg, i);
  hak_check_report_t* r = w->report;
  if (!hak_slab_header_valid(seg, s, i)) {
    fail(w, "slab %u of segment %p has a corrupted header (class %u, block size %u, carved %u "
         "of %u)", i, (const void*)seg, s->class_idx, s->block_size, s->carved, s->capacity);
    return;
  }
  uint64_t seen[MAX_SLAB_BLOCKS / 64];
  memset(seen, 0, sizeof seen);
  uintptr_t remote_word = __atomic_load_n(&s->remote, __ATOMIC_ACQUIRE);
  const hak_block_t* remote = hak_slab_remote_head(remote_word);
  long n_free = walk_list(w, s, s->free, seen, "free");
  long n_local = n_free < 0 ? -1 : walk_list(w, s, s->local_free, seen, "local_free");
  long n_remote = n_local < 0 ? -1 : walk_list(w, s, remote, seen, "remote");
  long n_cached = n_remote < 0 ? -1 : walk_cached(w, heap, s, seen);
  long n_batched = n_cached < 0 ? -1 : walk_batches(w, s, seen);
  if (n_batched < 0) return;
  if ((long)s->carved != (long)s->used + n_local) {
    fail(w, "slab %p (class %u): %u blocks carved but %u used + %ld on local_free: a block was "
         "lost or freed twice", (const void*)s, s->class_idx, s->carved, s->used, n_local);
    return;
  }
  if (n_remote != (long)hak_slab_remote_count(remote_word)) {
    fail(w, "slab %p (class %u): %ld blocks on the remote list, which counts %u",
         (const void*)s, s->class_idx, n_remote, hak_slab_remote_count(remote_word));
    return;
  }
  if ((long)s->used < n_free + n_remote + n_cached + n_batched) {
    fail(w, "slab %p (class %u): used %u is less than free %ld + remote %ld + cached %ld + "
         "batched %ld", (const void*)s, s->class_idx, s->used, n_free, n_remote, n_cached,
         n_batched);
    return;
  }
  int current = heap != NULL && heap->current[s->class_idx] == s;
  if (!current && s->free != NULL) {
    fail(w, "slab %p (class %u) is not its heap's current slab but has a free list",
         (const void*)s, s->class_idx);
    return;
  }
  r->slabs++;
  r->free_blocks += (size_t)(n_free + n_local);
  r->remote_blocks += (size_t)n_remote;
  r->cached_blocks += (size_t)n_cached;
  r->batched_blocks += (size_t)n_batched;
  r->live_blocks += (size_t)((long)s->used - n_free - n_remote - n_cached - n_batched);
}

// Header, map word and slab masks of a segment; then every slab in use.
static void check_segment(walk_t* w, const hak_segment_t* seg, const hak_heap_t* heap) {
  void* base = hak_segment_of(seg);
  uintptr_t owner = heap ? heap->owner : HAK_OWNER_NONE;
  unsigned shift = seg->kind == HAK_KIND_SMALL ? HAK_SMALL_SLAB_SHIFT : HAK_MEDIUM_SLAB_SHIFT;
  w->report->segments++;
  if (seg->cookie != (HAK_SEGMENT_COOKIE ^ (uintptr_t)base) || seg->kind > HAK_KIND_MEDIUM ||
      seg->slab_shift != shift || seg->slab_count != (HAK_SEGMENT_SIZE >> shift)) {
    fail(w, "segment %p has a corrupted header", base);
    return;
  }
  if (hak_map_word(base) != (owner | seg->kind) || seg->heap != heap) {
    fail(w, "segment %p: map word %#lx and owner do not match the heap holding it", base,
         (unsigned long)hak_map_word(base));
    return;
  }
  hak_segment_lock_slabs((hak_segment_t*)seg);  // the purger's thread may be purging it
  int agree = (unsigned)__builtin_popcountll(seg->free_mask) == seg->free_count &&
              (seg->dirty_mask & ~seg->free_mask) == 0 &&
              (unsigned)__builtin_popcountll(seg->dirty_mask) == seg->purge_pending;
  uint64_t free_mask = seg->free_mask, dirty_mask = seg->dirty_mask;
  hak_segment_unlock_slabs((hak_segment_t*)seg);
  if (!agree) {
    fail(w, "segment %p: free count %u, free mask %#llx and dirty mask %#llx disagree", base,
         seg->free_count, (unsigned long long)free_mask, (unsigned long long)dirty_mask);
    return;
  }
  for (unsigned i = 0; i < seg->slab_count && !w->failed; i++) {
    if ((seg->free_mask & ((uint64_t)1 << i)) == 0) check_slab(w, seg, i, heap);
  }
}

static size_t slabs_in_use(const hak_heap_t* heap) {
  size_t n = 0;
  for (unsigned k = 0; k < 2; k++) {
    for (const hak_segment_t* seg = heap->segments[k]; seg; seg = seg->next) {
      n += (size_t)(seg->slab_count - seg->free_count);
    }
  }
  return n;
}

// Every slab of the heap is its class's current slab or on exactly one of its lists.
static void check_lists(walk_t* w, const hak_heap_t* heap) {
  size_t listed = 0;
  for (unsigned c = 0; c < HAK_CLASS_COUNT && !w->failed; c++) {
    const hak_slab_list_t* lists[2] = {&heap->partial[c], &heap->full[c]};
    for (unsigned l = 0; l < 2; l++) {
      uint8_t which = l == 0 ? HAK_SLAB_PARTIAL : HAK_SLAB_FULL;
      uint32_t n = 0;
      for (const hak_slab_t* s = lists[l]->head; s != NULL; s = s->next) {
        if (++n > lists[l]->count || s->list != which || s->class_idx != c ||
            s == heap->current[c]) {
          fail(w, "heap %p: %s list of class %u is corrupted at slab %p", (const void*)heap,
               l == 0 ? "partial" : "full", c, (const void*)s);
          return;
        }
      }
      if (n != lists[l]->count) {
        fail(w, "heap %p: %s list of class %u holds %u slabs, its count says %u",
             (const void*)heap, l == 0 ? "partial" : "full", c, n, lists[l]->count);
        return;
      }
      listed += n;
    }
    if (heap->current[c] != &hak_empty_slab) listed++;
  }
  if (!w->failed && listed != slabs_in_use(heap)) {
    fail(w, "heap %p: %zu slabs in use in its segments but %zu current or listed: a slab was lost",
         (const void*)heap, slabs_in_use(heap), listed);
  }
}

static void check_mid_caches(walk_t* w, const hak_heap_t* heap, size_t attributed) {
  size_t total = 0;
  for (unsigned i = 0; i < HAK_MID_CLASSES && !w->failed; i++) {
    const hak_mid_cache_t* cache = &heap->mid_cache[i];
    uint32_t n = 0, count = cache->count;
    for (const hak_block_t* b = cache->head; b != NULL; b = hak_block_next(b)) {
      if (++n > count) break;
    }
    if (n != count || n > cache->limit) {
      fail(w, "heap %p: mid cache of class %u holds %u blocks, count %u, limit %u",
           (const void*)heap, HAK_TINY_CLASSES + i, n, count, cache->limit);
    }
    total += n;
  }
  if (!w->failed && total != attributed) {
    fail(w, "heap %p: %zu blocks in its mid caches but %zu found in its slabs", (const void*)heap,
         total, attributed);
  }
}

static void visit_heap(hak_heap_t* heap, void* arg) {
  walk_t* w = (walk_t*)arg;
  size_t cached_before = w->report->cached_blocks;
  for (unsigned k = 0; k < 2 && !w->failed; k++) {
    for (const hak_segment_t* seg = heap->segments[k]; seg && !w->failed; seg = seg->next) {
      if (seg->kind != k) fail(w, "segment %p is on the wrong list of its heap", (void*)seg);
      check_segment(w, seg, heap);
    }
  }
  if (!w->failed) check_lists(w, heap);
  if (!w->failed) check_mid_caches(w, heap, w->report->cached_blocks - cached_before);
}

static void visit_unowned(hak_segment_t* seg, void* arg) {
  walk_t* w = (walk_t*)arg;
  if (!w->failed) check_segment(w, seg, NULL);
}

static void collect_heap(hak_heap_t* heap, void* arg) {
  walk_t* w = (walk_t*)arg;
  if (w->heap_count == MAX_HEAPS) {
    fail(w, "more than %d live heaps: the checker cannot see all remote batches", MAX_HEAPS);
    return;
  }
  w->heaps[w->heap_count++] = heap;
}

// Every batched block was found in the slab its batch names, so every batch names a slab in use.
static void check_batches_attributed(walk_t* w) {
  size_t held = 0;
  for (size_t h = 0; h < w->heap_count; h++) held += hak_remote_held(&w->heaps[h]->remote);
  if (held != w->report->batched_blocks) {
    fail(w, "%zu blocks in remote batches but %zu found in the slabs they name", held,
         w->report->batched_blocks);
  }
}

int hak_check_heap(hak_check_report_t* out) {
  static const hak_heap_t* heaps[MAX_HEAPS];  // the walker runs with no other thread allocating
  memset(out, 0, sizeof *out);
  walk_t w = {.report = out, .failed = 0, .heaps = heaps, .heap_count = 0};
  hak_heap_hold_takeovers(1);  // the purger would hand batches over while they are counted
  hak_heap_for_each(collect_heap, &w, NULL);
  if (!w.failed) hak_heap_for_each(visit_heap, &w, NULL);
  if (!w.failed) hak_segment_for_each_unowned(visit_unowned, &w);
  if (!w.failed) check_batches_attributed(&w);
  hak_heap_hold_takeovers(0);
  hak_huge_totals_t huge;
  hak_huge_totals(&huge);
  out->huge_blocks = huge.blocks;
  hak_large_totals_t large;
  hak_large_totals(&large);
  out->large_blocks = large.blocks;
#if HAKMEM_DEBUG >= 2
  if (!w.failed) {
    uint64_t allocated = __atomic_load_n(&hak_debug_blocks_allocated, __ATOMIC_RELAXED);
    uint64_t freed = __atomic_load_n(&hak_debug_blocks_freed, __ATOMIC_RELAXED);
    out->counters_checked = 1;
    if (allocated - freed != out->live_blocks) {
      fail(&w, "conservation: %llu blocks allocated - %llu freed != %zu live in the slabs",
           (unsigned long long)allocated, (unsigned long long)freed, out->live_blocks);
    }
  }
#endif
  return !w.failed;
}
