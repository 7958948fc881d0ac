// heap: one per thread. Holds the current slab of every size class, the slabs it owns (on partial
// and full lists per class), its segments and its mid caches.
//
// Owns: hak_heap_t, the thread's TLS (hak_tls), the heap registry, heap lifetime (heap.c), the
// slab queues (heap_slabs.c: refill, retire, purge, free validation) and the narrow interface the
// adaptive cache engine reaches heaps through (heap_observe.c; heap_policy.c: each heap takes up
// the published policy on its own slow path). May use: base, list, os, config, size_class,
// segment, slab, remote, pool/mid_cache, ace/policy, purge_hint. Must not touch: tiny/ and pool/mid (the fast paths above it
// and their slow paths, which call in here), the large and huge pools, process init.
//
// Threading: a heap is touched only by its thread, except in the atfork child handler (single
// threaded) and the registry (under its lock). Other threads reach this heap's slabs only via
// their remote lists (slab.h; they batch what they push there, remote.h), and read its counters
// racily (heap_observe.c).
//
// No init branch on the fast paths: hak_tls starts with every direct slot pointing at a static
// empty slab and `heap` at a static empty heap (no cached blocks, every current slab the empty
// one), so the first malloc of a thread falls into a slow path, which creates its heap.
#ifndef HAKMEM_HEAP_H
#define HAKMEM_HEAP_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "hakmem/ace/policy.h"
#include "hakmem/base.h"
#include "hakmem/class_counters.h"
#include "hakmem/pool/mid_cache.h"
#include "hakmem/purge_hint.h"
#include "hakmem/remote.h"
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

#define HAK_COUNTER_FIELD(name, column, meaning) uint64_t name;
typedef struct hak_class_counters_s {
  HAK_CLASS_COUNTERS(HAK_COUNTER_FIELD)
} hak_class_counters_t;

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
  hak_remote_out_t remote;                      // blocks freed into other threads' slabs
  uint64_t policy_version;                      // of the engine's policy last applied
  uint32_t mid_rounding_pct;                    // HAKMEM_MID_ROUND_PCT or the policy's
  hak_segment_t* segments[2];                   // owned SMALL / MEDIUM segments
  uint64_t next_purge_ms;
  uint32_t slow_calls;
  struct hak_heap_s* next;                      // in the heap registry
  struct hak_heap_s* prev;
  int in_use;
} hak_heap_t;

// Per-thread state read by the fast paths: one load from the thread pointer reaches a slab.
typedef struct hak_tls_s {
  hak_slab_t* direct[HAK_TINY_INDEXES];  // by hak_tiny_index(n): the current slab of its class
  hak_heap_t* heap;                      // hak_empty_heap until the thread's first slow path
} hak_tls_t;

extern HAK_TLS hak_tls_t hak_tls;
extern const hak_slab_t hak_empty_slab;
extern const hak_heap_t hak_empty_heap;

#define HAK_EMPTY_SLAB ((hak_slab_t*)&hak_empty_slab)
#define HAK_EMPTY_HEAP ((hak_heap_t*)&hak_empty_heap)

// ---- Lifetime (heap.c)

// A heap for the calling thread, from the registry (reset) or newly mapped, installed in hak_tls;
// NULL if the OS refuses memory. The configuration must be read already. Process init
// (init.h) calls it and arranges for hak_heap_thread_exit at the thread's exit.
hak_heap_t* hak_heap_create(void);
// Thread exit (a pthread key destructor): hands the heap's segments to whoever allocates next
// and the heap back to the registry.
void hak_heap_thread_exit(void* heap);
// Takes up to `max_per_kind` abandoned segments of each kind, so memory freed after its thread
// exited goes back to the OS even when no thread needs fresh slabs.
void hak_heap_reclaim_abandoned(hak_heap_t* heap, unsigned max_per_kind);
// Takes one abandoned segment of `kind`, its in-use slabs onto this heap's partial lists; sets
// *released if its slabs were all free and it went straight back. NULL if none is left.
hak_segment_t* hak_heap_adopt_one(hak_heap_t* heap, hak_segment_kind_t kind, int* released);

// Thread heaps in use: 1 in a program that has one thread (that allocates).
unsigned hak_heap_live_count(void);

// What heaps whose thread exited counted.
typedef struct hak_heap_gone_s {
  hak_class_counters_t counters[HAK_CLASS_COUNT];
  uint64_t mid_sizes[HAK_MID_SIZE_BUCKETS];
} hak_heap_gone_t;

// Under the registry lock: copies the counts of heaps gone to *gone_out (unless NULL), then calls
// visit(heap, arg) for every heap in use (visit must not allocate through hakmem). A heap's
// slabs and lists are only stable while its thread does not allocate or free.
void hak_heap_for_each(void (*visit)(hak_heap_t* heap, void* arg), void* arg,
                       hak_heap_gone_t* gone_out);

// For the purger's thread: hands over the remote batches of threads that neither started a batch
// nor flushed since its last call (a blocked or idle thread's), with one process-wide barrier
// (remote.h). Returns whether any thread still holds a batch.
int hak_heap_take_idle_batches(void);
// How many times hak_heap_take_idle_batches handed over a thread's batches, since start.
uint64_t hak_heap_takeovers(void);
// For the heap checker: while held (1 to hold, 0 to let go), no thread's batches are taken over.
void hak_heap_hold_takeovers(int hold);

// Fork: prepare takes the takeover and registry locks (init.c writes the process's lock order);
// in the child, every heap but the forking thread's is abandoned (its thread does not exist
// there).
void hak_heap_fork_prepare(void);
void hak_heap_fork_parent(void);
void hak_heap_fork_child(void);

// ---- Slab queues (heap_slabs.c), for the slow paths of tiny/ and pool/

// Called at the start of every 64th slow-path allocation of a thread while not NULL: the
// adaptive cache engine's box sets it (a constructor) to run its windows from here while the
// program has one thread, and to start its own thread once there are more (clearing it then).
// Any thread, no heap lock held, the heap in a consistent state: the hook may allocate. Accessed
// with relaxed __atomic loads and stores.
typedef void (*hak_heap_hook_t)(void);
extern hak_heap_hook_t hak_heap_start_hook;

// Takes up the engine's newest policy on the calling thread's heap (heap_policy.c).
HAK_NOINLINE void hak_heap_apply_policy(hak_heap_t* heap);

#define HAK_HEAP_CHECK_EVERY 64
// Remote batches go out on every 4th allocation slow path: blocks held in flight make their
// owners fault in fresh slabs (larson at 16 threads: peak RSS 34.8 MiB flushing on every 64th,
// 32.5 on every 16th, mimalloc 31.6; at 2 threads, median of 7 runs: 6,392 KiB on every 16th,
// 6,144 on every 4th, 6,084 and 6,124 on every 2nd and every one, at level times).
#define HAK_HEAP_FLUSH_EVERY 4

// The start of every allocation slow path: counts the call (returned), runs the start hook on
// every 64th and takes up a newly published policy.
HAK_INLINE uint32_t hak_heap_slow_path_enter(hak_heap_t* heap) {
  uint32_t calls = ++heap->slow_calls;
  if (HAK_UNLIKELY(calls % HAK_HEAP_CHECK_EVERY == 0)) {
    hak_heap_hook_t hook = __atomic_load_n(&hak_heap_start_hook, __ATOMIC_RELAXED);
    if (hook != NULL) hook();
  }
  if (HAK_UNLIKELY(heap->policy_version != hak_ace_policy_version())) hak_heap_apply_policy(heap);
  hak_purge_safe_point();
  return calls;
}

// Makes heap->current[cls] a slab with a non-empty free list and returns it; NULL if memory is
// exhausted. `calls`: hak_heap_slow_path_enter's count (batches go out on every 4th, purges are
// checked on every 64th).
HAK_NOINLINE hak_slab_t* hak_heap_refill_slow(hak_heap_t* heap, unsigned cls, uint32_t calls);

// The same, with its common case inline: the current slab's own frees become its free list.
HAK_INLINE hak_slab_t* hak_heap_refill(hak_heap_t* heap, unsigned cls, uint32_t calls) {
  if (HAK_UNLIKELY(calls % HAK_HEAP_FLUSH_EVERY == 0) && hak_remote_holds(&heap->remote)) {
    hak_remote_flush_all(&heap->remote);
  }
  hak_slab_t* s = heap->current[cls];
  if (HAK_LIKELY(calls % HAK_HEAP_CHECK_EVERY != 0) && hak_slab_take_local(s)) {
    heap->counters[cls].refills++;
    return s;
  }
  return hak_heap_refill_slow(heap, cls, calls);
}

// The end of every allocation slow path: a block of class `cls` from its current slab, refilled
// first if it has none; NULL with errno = ENOMEM if memory is exhausted.
HAK_INLINE void* hak_heap_alloc_from_slabs(hak_heap_t* heap, unsigned cls, uint32_t calls) {
  hak_slab_t* s = heap->current[cls];
  if (s->free == NULL) {
    s = hak_heap_refill(heap, cls, calls);
    if (s == NULL) {
      errno = ENOMEM;
      return NULL;
    }
  }
  hak_block_t* b = s->free;
  s->free = hak_block_pop(b, s->slab_shift);
  hak_block_handed_out(b);
  return b;
}

// Gives mid block b, owned by this thread, back to its slab (no longer through the thread's mid
// cache); its slab is kept or retired if this empties it.
void hak_heap_free_to_slab(hak_heap_t* heap, hak_block_t* b);
// Keeps the newest `keep` blocks of the mid cache of class `cls` and gives the others back to
// their slabs (counted as flushed); slabs they empty are kept or retired.
void hak_heap_trim_mid_cache(hak_heap_t* heap, unsigned cls, uint32_t keep);

// Sets up the mid cache of the extra class once the size class table has placed it; the engine
// places it, each heap's own thread sets up its cache (its slow paths and adoption).
void hak_heap_sync_extra_class(hak_heap_t* heap);

// The tiny free fast path freed `block` and so emptied its slab (used reached 0) on its owner
// thread. (The block, not the slab: the fast path need not keep the header's address.)
HAK_NOINLINE void hak_heap_tiny_slab_emptied(void* block);
// Free of a SMALL/MEDIUM block that missed the fast paths. `map_word` is hak_map_word(p);
// `heap` is the calling thread's, where a block of another thread's slab waits in a batch, or
// HAK_EMPTY_HEAP for a thread that has none (the block goes to its slab at once).
HAK_NOINLINE void hak_heap_free_slow(hak_heap_t* heap, void* p, uintptr_t map_word);
// Usable size of a block in a SMALL/MEDIUM segment, or 0 if p lies in none. With `op` ("realloc",
// ...) set, aborts naming the error unless p is a block the program holds.
size_t hak_heap_usable_size(const void* p, uintptr_t map_word, const char* op);

// Aborts naming p, a freed pointer that is not a valid block: `detail` says what is wrong.
HAK_NORETURN HAK_COLD void hak_heap_invalid_free(const void* p, const char* detail);

// Returns every purgeable page of this thread's heap (its mid caches flushed first) and of the
// segment cache now.
void hak_heap_trim(hak_heap_t* heap);

// ---- The adaptive cache engine's interface (heap_policy.c, heap_observe.c)

// hak_heap_apply_policy (above) is the one way a policy reaches a heap: mid cache limits (a
// cache over its new limit gives back its oldest blocks), mid rounding, and the idle classes'
// memory, taken up by the heap's own thread.

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

// ---- Totals for stats (heap_observe.c; approximate while threads run)

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

// Adds every counter of `from` to `to`.
void hak_class_counters_add(hak_class_counters_t* to, const hak_class_counters_t* from);

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
