// heap: one per thread. Holds the current slab of every size class, the slabs it owns, and the
// slow paths (refill, retire, purge, thread exit, adoption, fork).
//
// Owns: hak_heap_t, the thread's TLS (hak_tls). May use: base, os, config, size_class, segment,
// slab, ace/policy (applied on the slow paths when a new one is out). The fast paths (tiny/)
// read hak_tls and the segment map, and call back into heap only through the noinline functions
// below.
//
// Threading: a heap is touched only by its thread, except in the atfork child handler (single
// threaded) and the heap pool (under its lock). Other threads reach this heap's slabs only via
// their remote lists (slab.h).
//
// No init branch on the fast path: hak_tls starts with every direct slot pointing at a static
// empty slab, so the first malloc of a thread falls into hak_heap_alloc_slow, which initialises.
#ifndef HAKMEM_HEAP_H
#define HAKMEM_HEAP_H

#include <stddef.h>
#include <stdint.h>

#include "hakmem/base.h"
#include "hakmem/segment.h"
#include "hakmem/size_class.h"
#include "hakmem/slab.h"

HAK_EXTERN_C_BEGIN

typedef struct hak_slab_list_s {
  hak_slab_t* head;
  uint32_t count;
} hak_slab_list_t;

#define HAK_MID_CLASSES (HAK_CLASS_COUNT - HAK_TINY_CLASSES)
// Mid request sizes by 128-byte bucket: bucket (n - 1) / 128 holds sizes up to its end.
#define HAK_MID_SIZE_BUCKETS (HAK_MID_MAX >> 7)

// A LIFO of recently freed mid blocks of one class, so the next malloc of that class gets a block
// that is still in cache (a slab's free list hands out blocks freed long ago). Blocks in it still
// count as used in their slabs. Besides its length it counts the blocks ever freed into it (a count that only grows), so that
// the adaptive cache engine can tell blocks taken out (pushes - count) and idleness (neither
// moved) from another thread, at one add on the free fast path.
typedef struct hak_mid_cache_s {
  hak_block_t* head;
  uint32_t count;
  uint32_t limit;        // from HAKMEM_MID_CACHE_KB and the class size, or the engine's policy
  // Not next to count: gcc would merge the two increments of the free path into SSE code.
  uint32_t pushes;       // blocks freed into it, ever (wraps)
  uint64_t block_recip;  // of the class's block size (slab.h, HAK_RECIP_SHIFT)
  uint32_t block_size;
  uint32_t blocks_end;   // capacity * block_size of a MEDIUM slab: no block starts past it
} hak_mid_cache_t;

// Per-class counters of one heap, written by its thread on slow paths only (so release builds
// keep them: they cost nothing on the fast paths) and read racily for stats. A heap's counts
// move to the process totals when its thread exits.
typedef struct hak_class_counters_s {
  uint64_t refills;          // the class's current slab ran dry
  uint64_t fresh_blocks;     // blocks carved from slab memory never used before
  uint64_t remote_frees;     // blocks freed by other threads, collected by this one
  uint64_t cache_overflows;  // mid cache full: half of it went back to the slabs
  uint64_t cache_misses;     // mid requests that found the class's cache empty
  uint64_t cache_flushed;    // blocks the mid cache gave back to their slabs
} hak_class_counters_t;

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

typedef struct hak_heap_s {
  uintptr_t owner;                              // hak_thread_id() of the thread using it
  hak_slab_t* current[HAK_CLASS_COUNT];         // allocation slab per class (or the empty slab)
  hak_slab_list_t partial[HAK_CLASS_COUNT];     // may have free blocks, not current
  hak_slab_list_t full[HAK_CLASS_COUNT];        // had none at last look
  uint32_t fresh_since_sweep[HAK_CLASS_COUNT];  // slabs taken since the full list was last swept
  hak_slab_t* kept_empty[HAK_CLASS_COUNT];      // an empty slab kept on the partial list, if any
  hak_mid_cache_t mid_cache[HAK_MID_CLASSES];   // by class - HAK_TINY_CLASSES
  hak_class_counters_t counters[HAK_CLASS_COUNT];
  uint32_t mid_sizes[HAK_MID_SIZE_BUCKETS];     // mid requests seen by the slow path, by size
  uint64_t policy_version;                      // of the engine's policy last applied
  uint32_t mid_wmax_pct;                        // HAKMEM_MID_WMAX_PCT or the policy's
  hak_segment_t* segments[2];                   // owned SMALL / MEDIUM segments
  uint64_t next_purge_ms;
  uint32_t slow_calls;
  uint32_t dirty_slabs;                         // free slabs not yet purged, over all segments
  struct hak_heap_s* next;                      // in the heap registry
  struct hak_heap_s* prev;
  int in_use;
} hak_heap_t;

// Per-thread state read by the fast paths: one load from the thread pointer reaches a slab.
typedef struct hak_tls_s {
  hak_slab_t* direct[HAK_TINY_INDEXES];  // by hak_tiny_index(n): the current slab of its class
  hak_heap_t* heap;                      // NULL until the thread's first slow path
} hak_tls_t;

extern HAK_TLS hak_tls_t hak_tls;
extern const hak_slab_t hak_empty_slab;

// Called at the start of every 64th slow-path allocation of a thread while not NULL: the
// adaptive cache engine's box sets it (a constructor) to run its windows from here while the
// program has one thread, and to start its own thread once there are more (clearing it then).
// Any thread, no heap lock held, the heap in a consistent state: the hook may allocate. Accessed
// with relaxed __atomic loads and stores.
typedef void (*hak_heap_hook_t)(void);
extern hak_heap_hook_t hak_heap_start_hook;

// Slow paths of the small/medium allocator; n <= HAK_MID_MAX. Set errno on failure.
HAK_NOINLINE void* hak_heap_alloc_slow(size_t n);
// Mid cache of `cls` is full: pushes p, keeps the newer half and frees the rest to their slabs.
HAK_NOINLINE void hak_heap_mid_cache_overflow(hak_heap_t* heap, unsigned cls, void* p);

// Aborts with a message naming p, a pointer into a MEDIUM slab of this thread that is not a
// block start, or a block freed twice.
HAK_NORETURN HAK_COLD void hak_heap_invalid_free(const void* p);

// Secure builds: block p of `slab`, owned by this thread, looks free already. Aborts naming a
// double free if p is on one of the slab's lists or the thread's mid cache; returns otherwise
// (program data that happened to decode to a link).
HAK_NOINLINE HAK_COLD void hak_heap_confirm_double_free(hak_slab_t* slab, const void* p);

// A slab that the fast path emptied (used reached 0) on its owner thread.
HAK_NOINLINE void hak_heap_slab_emptied(hak_slab_t* slab);
// Free of a SMALL/MEDIUM block that missed the fast path. `map_word` is hak_map_word(p).
HAK_NOINLINE void hak_heap_free_slow(void* p, uintptr_t map_word);
// Usable size of a block in a SMALL/MEDIUM segment, or 0 if p is not one.
size_t hak_heap_usable_size(const void* p, uintptr_t map_word);

// Places the extra mid size class (size_class.h) at `block_size` in every heap; returns 0 if it
// was placed already or the size does not fit. For the adaptive cache engine.
int hak_heap_place_extra_class(size_t block_size);

// Returns every purgeable page of this thread's heap and the segment cache now.
void hak_heap_trim(void);

// Process-wide initialisation: config, thread-exit key, fork handlers. Idempotent.
void hak_heap_global_init(void);

// Totals over all live heaps for stats (approximate while threads run).
typedef struct hak_heap_totals_s {
  size_t heaps;
  size_t slabs_in_use;
  size_t bytes_in_use_slabs;
  size_t dirty_free_slabs;
} hak_heap_totals_t;
void hak_heap_totals(hak_heap_totals_t* out);

// Per-class totals over every heap, live and gone, and the slabs serving each class now.
typedef struct hak_class_totals_s {
  hak_class_counters_t counters;
  size_t slabs;
} hak_class_totals_t;
void hak_heap_class_totals(hak_class_totals_t out[HAK_CLASS_COUNT]);

// What the adaptive cache engine observes: per-class totals over every heap (live and gone), the
// live heaps' mid cache counters, and the mid request sizes the slow paths saw. Read racily from
// the engine's thread: every figure is a plain word some thread is writing, so one may be a few
// operations stale; none is torn. Mid cache figures of heaps that went away drop out of the sums.
typedef struct hak_heap_observation_s {
  hak_class_counters_t counters[HAK_CLASS_COUNT];
  uint64_t cache_pushes[HAK_MID_CLASSES];
  uint64_t cache_pops[HAK_MID_CLASSES];
  uint64_t mid_sizes[HAK_MID_SIZE_BUCKETS];
} hak_heap_observation_t;
void hak_heap_observe(hak_heap_observation_t* out);

// Thread heaps in use: 1 in a program that has one thread (that allocates).
unsigned hak_heap_live_count(void);

// Calls visit(heap, arg) for every heap in use, under the registry lock (visit must not allocate
// through hakmem). Only meaningful while the heaps' threads do not allocate or free.
void hak_heap_for_each(void (*visit)(hak_heap_t* heap, void* arg), void* arg);

#if HAKMEM_DEBUG >= 2
// Blocks of at most HAK_MID_MAX bytes handed out and taken back through the public API, per
// class, for the heap checker's conservation test and the stats report. Debug config only: two
// atomic adds per call.
extern uint64_t hak_debug_blocks_allocated;
extern uint64_t hak_debug_blocks_freed;
extern uint64_t hak_debug_class_allocs[HAK_CLASS_COUNT];
extern uint64_t hak_debug_class_frees[HAK_CLASS_COUNT];
#endif

// Returns p; in the debug config counts it when it is a block of the slab allocator.
HAK_INLINE void* hak_debug_note_alloc(void* p, size_t n) {
#if HAKMEM_DEBUG >= 2
  if (p != NULL && n <= HAK_MID_MAX) {
    __atomic_fetch_add(&hak_debug_blocks_allocated, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&hak_debug_class_allocs[hak_size_class(n)], 1, __ATOMIC_RELAXED);
  }
#else
  (void)n;
#endif
  return p;
}

HAK_INLINE void hak_debug_note_free(const void* p) {
#if HAKMEM_DEBUG >= 2
  uintptr_t word = hak_map_word_checked(p);
  hak_segment_t* seg = hak_segment_lookup(p, word);
  if (seg != NULL) {
    unsigned cls = hak_slab_of_shift(p, seg->slab_shift)->class_idx;
    __atomic_fetch_add(&hak_debug_blocks_freed, 1, __ATOMIC_RELAXED);
    if (cls < HAK_CLASS_COUNT) __atomic_fetch_add(&hak_debug_class_frees[cls], 1, __ATOMIC_RELAXED);
  }
#else
  (void)p;
#endif
}

HAK_EXTERN_C_END

#endif  // HAKMEM_HEAP_H
