#include "hakmem/segment.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>

#include "hakmem/config.h"
#include "hakmem/list.h"
#include "hakmem/purge_hint.h"
#include "hakmem/os/os.h"

// Guards `cache` and `abandoned`; never held while calling into the heap. Their heads are peeked
// at without it (hak_segment_adopt): list.h stores heads atomically.
static pthread_mutex_t lists_lock = PTHREAD_MUTEX_INITIALIZER;
static hak_segment_t* cache;                 // empty segments, newest first
static size_t cache_count;
static hak_segment_t* abandoned[2];          // per kind (SMALL, MEDIUM)
static hak_segment_t* all_segments;          // every mapped one (all_next / all_prev)
static size_t abandoned_count;
static _Atomic size_t mapped_segments;
static _Atomic size_t purged_bytes;

// The mapped segments, for the purger: a list of their own links, under lists_lock.
static void all_push(hak_segment_t* s) { HAK_LIST_PUSH_LINKED(&all_segments, s, all_next, all_prev); }

static void all_remove(hak_segment_t* s) {
  HAK_LIST_REMOVE_LINKED(&all_segments, s, all_next, all_prev);
}

void hak_segment_lock_slabs(hak_segment_t* s) {
  while (__atomic_exchange_n(&s->slabs_lock, 1, __ATOMIC_ACQUIRE)) {
    while (__atomic_load_n(&s->slabs_lock, __ATOMIC_RELAXED)) sched_yield();
  }
}

void hak_segment_unlock_slabs(hak_segment_t* s) {
  __atomic_store_n(&s->slabs_lock, 0, __ATOMIC_RELEASE);
}

static void set_dirty_count(hak_segment_t* s, uint32_t n) {
  __atomic_store_n(&s->purge_pending, n, __ATOMIC_RELAXED);
}

static void format(hak_segment_t* s, void* base, hak_segment_kind_t kind) {
  unsigned shift = hak_segment_slab_shift_of(kind);
  s->cookie = HAK_SEGMENT_COOKIE ^ (uintptr_t)base;
  s->kind = (uint8_t)kind;
  s->slab_shift = (uint8_t)shift;
  s->slab_count = (uint8_t)(HAK_SEGMENT_SIZE >> shift);
  s->free_count = s->slab_count;
  s->free_mask = s->slab_count == 64 ? ~(uint64_t)0 : (((uint64_t)1 << s->slab_count) - 1);
  s->dirty_mask = 0;
  set_dirty_count(s, 0);
  s->next = s->prev = NULL;
  s->in_cache = 0;
  s->slabs_lock = 0;
}

// Secure builds: the page after each slab's blocks (hak_segment_slab_usable) is made
// inaccessible, so that an overflow off the end of a slab's blocks faults instead of reaching
// the next slab or the headers. `undo` makes the whole segment accessible again (for reuse as
// the other kind, whose slabs end elsewhere).
static void guard_slabs(void* base, unsigned slab_shift, int undo) {
  if (!HAKMEM_SECURE) return;
  if (undo) {
    hak_os.protect(base, HAK_SEGMENT_SIZE, 1);
    return;
  }
  for (unsigned i = 0; i < (HAK_SEGMENT_SIZE >> slab_shift); i++) {
    uint8_t* slab = (uint8_t*)base + ((size_t)i << slab_shift);
    hak_os.protect(slab + hak_segment_slab_usable(slab_shift, i), HAK_PAGE_SIZE, 0);
  }
}

static hak_segment_t* take_cached(hak_segment_kind_t kind) {
  pthread_mutex_lock(&lists_lock);
  hak_segment_t* s = cache;
  if (s) {
    HAK_LIST_REMOVE(&cache, s);
    cache_count--;
    all_remove(s);  // back with its new header (which may sit elsewhere)
  }
  pthread_mutex_unlock(&lists_lock);
  if (s == NULL) return NULL;
  int committed = s->cached_at_ms != 0;  // else purged whole in the cache
  // The cached header may be of the other kind; the new header goes where this kind expects it.
  void* base = hak_segment_of(s);
  HAK_UNPOISON(base, HAK_SEGMENT_SIZE);  // asan builds: slab init poisons the new layout's slabs
  hak_segment_t* header = hak_segment_header(base, hak_segment_slab_shift_of(kind));
  if (s->kind != kind) {
    guard_slabs(base, s->slab_shift, 1);
    memset(s, 0, sizeof *s);  // before the new guard pages, which may cover it
    guard_slabs(base, hak_segment_slab_shift_of(kind), 0);
  }
  format(header, base, kind);
  // Pages still committed are fine to reuse, but any slab may hold some: all are dirty from now
  // on, so that those the new owner leaves free are purged a delay later instead of staying
  // resident for as long as it owns the segment. (Dirty since the segment was cached would purge
  // slabs the owner is about to carve: fragmentation took 7% longer.)
  if (committed) {
    uint64_t now = hak_os_now_ms();
    for (unsigned i = 0; i < header->slab_count; i++) header->freed_at_ms[i] = now;
    header->dirty_mask = header->free_mask;
    set_dirty_count(header, header->slab_count);
    hak_purge_note();  // the purger may have stopped once the cache was its only work
  }
  return header;
}

hak_segment_t* hak_segment_acquire(hak_segment_kind_t kind, struct hak_heap_s* heap, uintptr_t owner) {
  hak_segment_t* s = take_cached(kind);
  if (s == NULL) {
    void* base = hak_os_map_aligned(HAK_SEGMENT_SIZE, HAK_SEGMENT_SIZE);
    if (base == NULL) return NULL;
    if (hak_map_commit(base) != 0) {
      hak_os.unmap(base, HAK_SEGMENT_SIZE);
      return NULL;
    }
    atomic_fetch_add_explicit(&mapped_segments, 1, memory_order_relaxed);
    guard_slabs(base, hak_segment_slab_shift_of(kind), 0);
    s = hak_segment_header(base, hak_segment_slab_shift_of(kind));
    format(s, base, kind);
  }
  s->heap = heap;
  hak_map_set(hak_segment_of(s), owner | kind);
  pthread_mutex_lock(&lists_lock);
  all_push(s);
  pthread_mutex_unlock(&lists_lock);
  return s;
}

static void purge_range(void* addr, size_t size) {
  if (hak_os.purge(addr, size) == 0) {
    atomic_fetch_add_explicit(&purged_bytes, size, memory_order_relaxed);
  }
}

// The first page of slab 0 holding the segment's metadata (its header and the slab headers),
// which purges keep.
static uint8_t* meta_page(const hak_segment_t* s) {
  return (uint8_t*)((uintptr_t)s & ~(HAK_PAGE_SIZE - 1));
}

// Purges a whole empty segment except the pages holding its metadata.
static void purge_whole(hak_segment_t* s) {
  uint8_t* base = (uint8_t*)hak_segment_of(s);
  uint8_t* meta_end = base + hak_segment_slab_size(s);
  purge_range(base, (size_t)(meta_page(s) - base));
  purge_range(meta_end, (size_t)(base + HAK_SEGMENT_SIZE - meta_end));
  s->dirty_mask = 0;
  set_dirty_count(s, 0);
}

static void unmap_segment(hak_segment_t* s) {
  void* base = hak_segment_of(s);
  all_remove(s);
  hak_map_set(base, 0);
  HAK_UNPOISON(base, HAK_SEGMENT_SIZE);  // asan builds: whatever is mapped here next starts clean
  hak_os.unmap(base, HAK_SEGMENT_SIZE);
  atomic_fetch_sub_explicit(&mapped_segments, 1, memory_order_relaxed);
}

void hak_segment_release(hak_segment_t* s) {
  HAK_ASSERT(s->free_count == s->slab_count);
  s->heap = NULL;
  // Another thread's late free into an empty segment is invalid: the map says nobody owns it.
  hak_map_set(hak_segment_of(s), HAK_OWNER_NONE | s->kind);
  // Every released segment waits out the purge delay in the cache, pages committed: a program
  // that frees and refills hundreds of MiB reuses them instead of faulting in fresh ones. Past
  // the delay the cache keeps HAKMEM_SEGMENT_CACHE of them (purged) and unmaps the rest.
  s->cached_at_ms = hak_os_now_ms();
  pthread_mutex_lock(&lists_lock);
  HAK_LIST_PUSH(&cache, s);
  cache_count++;
  s->in_cache = 1;
  pthread_mutex_unlock(&lists_lock);
  hak_purge_note();
}

// Under lists_lock: purges (or unmaps, past HAKMEM_SEGMENT_CACHE) the cached segments idle past
// the delay; returns when the next one is due (0: none waits).
static uint64_t purge_cache_locked(uint64_t now_ms, int force) {
  uint64_t delay = (uint64_t)hak_config.purge_delay_ms, next_due = 0;
  hak_segment_t* next;
  for (hak_segment_t* s = cache; s != NULL; s = next) {
    next = s->next;
    if (s->cached_at_ms == 0) continue;  // already purged
    if (!force && now_ms - s->cached_at_ms < delay) {
      next_due = hak_purge_earlier(next_due, s->cached_at_ms + delay);
      continue;
    }
    if (cache_count > (size_t)hak_config.segment_cache) {
      HAK_LIST_REMOVE(&cache, s);
      cache_count--;
      unmap_segment(s);
    } else {
      purge_whole(s);
      s->cached_at_ms = 0;
    }
  }
  return next_due;
}

void hak_segment_purge_cache(uint64_t now_ms, int force) {
  pthread_mutex_lock(&lists_lock);
  purge_cache_locked(now_ms, force);
  pthread_mutex_unlock(&lists_lock);
}

void hak_segment_abandon(hak_segment_t* s) {
  s->heap = NULL;
  hak_map_set(hak_segment_of(s), HAK_OWNER_NONE | s->kind);
  pthread_mutex_lock(&lists_lock);
  HAK_LIST_PUSH(&abandoned[s->kind], s);
  abandoned_count++;
  pthread_mutex_unlock(&lists_lock);
}

hak_segment_t* hak_segment_adopt(hak_segment_kind_t kind, struct hak_heap_s* heap, uintptr_t owner) {
  if (__atomic_load_n(&abandoned[kind], __ATOMIC_RELAXED) == NULL) return NULL;
  pthread_mutex_lock(&lists_lock);
  hak_segment_t* s = abandoned[kind];
  if (s) {
    HAK_LIST_REMOVE(&abandoned[kind], s);
    abandoned_count--;
  }
  pthread_mutex_unlock(&lists_lock);
  if (s) {
    s->heap = heap;
    hak_map_set(hak_segment_of(s), owner | kind);
  }
  return s;
}

// Under lists_lock and s's slabs lock.
static size_t purge_slabs_locked(hak_segment_t* s, uint64_t now_ms, int force);

uint64_t hak_segment_purge_due(uint64_t now_ms, int force) {
  uint64_t delay = (uint64_t)hak_config.purge_delay_ms;
  pthread_mutex_lock(&lists_lock);
  uint64_t next_due = purge_cache_locked(now_ms, force);
  for (hak_segment_t* s = all_segments; s != NULL; s = s->all_next) {
    if (s->in_cache || hak_segment_dirty_slabs(s) == 0) continue;
    hak_segment_lock_slabs(s);
    purge_slabs_locked(s, now_ms, force);
    for (uint64_t dirty = s->dirty_mask; dirty; dirty &= dirty - 1) {
      next_due = hak_purge_earlier(next_due, s->freed_at_ms[__builtin_ctzll(dirty)] + delay);
    }
    hak_segment_unlock_slabs(s);
  }
  pthread_mutex_unlock(&lists_lock);
  return next_due;
}

void hak_segment_slab_freed(hak_segment_t* s, unsigned index, unsigned cls, uint64_t now_ms) {
  uint64_t bit = (uint64_t)1 << index;
  hak_segment_lock_slabs(s);
  HAK_ASSERT((s->free_mask & bit) == 0);
  // free_mask is read racily by other threads' free validation: store it atomically.
  __atomic_store_n(&s->free_mask, s->free_mask | bit, __ATOMIC_RELAXED);
  s->dirty_mask |= bit;
  s->freed_at_ms[index] = now_ms;
  s->freed_class[index] = (uint8_t)cls;
  s->free_count++;
  set_dirty_count(s, s->purge_pending + 1);
  hak_segment_unlock_slabs(s);
  hak_purge_note();
}

static int dirty_slab_of_class(const hak_segment_t* s, unsigned cls) {
  for (uint64_t dirty = s->dirty_mask; dirty; dirty &= dirty - 1) {
    unsigned i = (unsigned)__builtin_ctzll(dirty);
    if (s->freed_class[i] == cls) return (int)i;
  }
  return -1;
}

int hak_segment_take_slab(hak_segment_t* s, unsigned cls) {
  if (s->free_mask == 0) return -1;
  hak_segment_lock_slabs(s);
  int same_class = dirty_slab_of_class(s, cls);
  uint64_t candidates = s->dirty_mask ? s->dirty_mask : s->free_mask;
  unsigned index = same_class >= 0 ? (unsigned)same_class : (unsigned)__builtin_ctzll(candidates);
  uint64_t bit = (uint64_t)1 << index;
  if (s->dirty_mask & bit) set_dirty_count(s, s->purge_pending - 1);
  __atomic_store_n(&s->free_mask, s->free_mask & ~bit, __ATOMIC_RELAXED);
  s->dirty_mask &= ~bit;
  s->free_count--;
  hak_segment_unlock_slabs(s);
  return (int)index;
}

// Returns dirty slab i's pages; returns the bytes purged.
static size_t purge_slab(hak_segment_t* s, unsigned i) {
  uint8_t* start = (uint8_t*)hak_segment_of(s) + ((size_t)i << s->slab_shift);
  // Slab 0's last pages hold the headers: keep them.
  size_t size = i == 0 ? (size_t)(meta_page(s) - start) : hak_segment_slab_size(s);
  purge_range(start, size);
  s->dirty_mask &= ~((uint64_t)1 << i);
  set_dirty_count(s, s->purge_pending - 1);
  return size;
}

static size_t purge_slabs_locked(hak_segment_t* s, uint64_t now_ms, int force) {
  size_t purged = 0;
  for (uint64_t dirty = s->dirty_mask; dirty; dirty &= dirty - 1) {
    unsigned i = (unsigned)__builtin_ctzll(dirty);
    if (!force && now_ms - s->freed_at_ms[i] < (uint64_t)hak_config.purge_delay_ms) continue;
    purged += purge_slab(s, i);
  }
  return purged;
}

size_t hak_segment_purge_slabs(hak_segment_t* s, uint64_t now_ms, int force) {
  hak_segment_lock_slabs(s);
  size_t purged = purge_slabs_locked(s, now_ms, force);
  hak_segment_unlock_slabs(s);
  return purged;
}

size_t hak_segment_purge_class(hak_segment_t* s, unsigned cls) {
  size_t purged = 0;
  hak_segment_lock_slabs(s);
  for (uint64_t dirty = s->dirty_mask; dirty; dirty &= dirty - 1) {
    unsigned i = (unsigned)__builtin_ctzll(dirty);
    if (s->freed_class[i] == cls) purged += purge_slab(s, i);
  }
  hak_segment_unlock_slabs(s);
  return purged;
}

void hak_segment_totals(hak_segment_totals_t* out) {
  pthread_mutex_lock(&lists_lock);
  out->cached_segments = cache_count;
  out->abandoned_segments = abandoned_count;
  pthread_mutex_unlock(&lists_lock);
  out->mapped_segments = atomic_load_explicit(&mapped_segments, memory_order_relaxed);
  out->purged_bytes = atomic_load_explicit(&purged_bytes, memory_order_relaxed);
}

void hak_segment_repair_counts(hak_segment_t* s) {
  s->dirty_mask &= s->free_mask;
  s->free_count = (uint8_t)__builtin_popcountll(s->free_mask);
  set_dirty_count(s, (uint32_t)__builtin_popcountll(s->dirty_mask));
  s->slabs_lock = 0;  // its thread may have held it when the process forked
}

void hak_segment_for_each_unowned(void (*visit)(hak_segment_t* segment, void* arg), void* arg) {
  pthread_mutex_lock(&lists_lock);
  for (hak_segment_t* s = cache; s; s = s->next) visit(s, arg);
  for (unsigned k = 0; k < 2; k++) {
    for (hak_segment_t* s = abandoned[k]; s; s = s->next) visit(s, arg);
  }
  pthread_mutex_unlock(&lists_lock);
}

void hak_segment_fork_prepare(void) { pthread_mutex_lock(&lists_lock); }
void hak_segment_fork_parent(void) { pthread_mutex_unlock(&lists_lock); }
void hak_segment_fork_child(void) { pthread_mutex_unlock(&lists_lock); }
