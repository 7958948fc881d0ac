// segment: naturally aligned 4 MiB regions (SuperSlabs) cut into slabs, and the address map that
// tells for any pointer whether it belongs to hakmem, which kind of region holds it and which
// thread owns it.
//
// Owns: the segment map, segment headers, the global cache of empty segments and the lists of
// abandoned segments. May use: base, os, config. Must not touch slab contents (heap does).
//
// Layout of a segment of kind K (slab_size = 64 KiB for SMALL, 1 MiB for MEDIUM, N slabs):
//   [slab 0 ... | hak_segment_t | slab header 0 | ... | slab header N-1] [slab 1] ... [slab N-1]
//   Every slab's hak_slab_t header (128 bytes) sits in one array at the end of slab 0, after the
//   segment header: the headers of a segment's slabs fall in consecutive cache lines and pages.
//   Headers at one offset in every slab (at each slab's end, as they were) all mapped to the same
//   set of a cache whose way is 64 KiB (L1 and L2 of common x86 cores): a thread using more
//   than 8 slabs missed on every header it touched (cachegrind on larson: 3.5 L1 misses per
//   malloc+free against tcmalloc's 1.1; see docs/DESIGN.md).
//   So for any block p:  segment     =  p & ~(HAK_SEGMENT_SIZE - 1)
//                        slab header =  segment + slab_size - N * 128 + ((p >> shift) % N) * 128
//   Blocks fill each slab from its start; slab 0's stop before the metadata, and so do every
//   MEDIUM slab's, so that a MEDIUM slab's capacity depends on its class alone.
//
// The map has one word per 4 MiB of address space: 0 if hakmem does not own the region, else
// owner | kind where owner is the owning thread's id (hak_thread_id, 16-byte aligned) or
// HAK_OWNER_NONE. A SMALL segment owned by the calling thread reads exactly hak_thread_id(),
// which is what the free fast path compares against.
//
// Threading: the map word of a segment is written only by its owner (or, for an abandoned
// segment, by the adopter holding the abandoned-list lock); others read it racily and take the
// slow path on any mismatch. The cache and abandoned lists are guarded by one mutex.
#ifndef HAKMEM_SEGMENT_H
#define HAKMEM_SEGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "hakmem/base.h"
#include "hakmem/os/os.h"

HAK_EXTERN_C_BEGIN

#define HAK_SEGMENT_SHIFT 22
#define HAK_SEGMENT_SIZE ((size_t)1 << HAK_SEGMENT_SHIFT)
#define HAK_SMALL_SLAB_SHIFT 16
#define HAK_MEDIUM_SLAB_SHIFT 20
#define HAK_MEDIUM_SLAB_SIZE ((size_t)1 << HAK_MEDIUM_SLAB_SHIFT)
#define HAK_MAX_SLABS (HAK_SEGMENT_SIZE >> HAK_SMALL_SLAB_SHIFT)

#if defined(__aarch64__)
#define HAK_ADDRESS_BITS 48
#else
#define HAK_ADDRESS_BITS 47
#endif
#define HAK_MAP_ENTRIES ((size_t)1 << (HAK_ADDRESS_BITS - HAK_SEGMENT_SHIFT))

// Map word = owner | kind. Owners are 16-byte aligned thread ids; HAK_OWNER_NONE is no thread.
typedef enum {
  HAK_KIND_SMALL = 0,
  HAK_KIND_MEDIUM = 1,
  HAK_KIND_HUGE = 2,
  HAK_KIND_LARGE = 3,
  HAK_KIND_MASK = 15,
} hak_segment_kind_t;
#define HAK_OWNER_NONE ((uintptr_t)16)

extern uintptr_t hak_segment_map[HAK_MAP_ENTRIES];

// Every user-space pointer (below 2^HAK_ADDRESS_BITS) indexes inside the map. A non-canonical
// value reads past it: a fault, or a word that fails the owner compare, after which the slow path
// rejects it by range (hak_map_in_range) before trusting the word. No mask on the fast path.
// Other threads may be setting the word (a region unmapped and mapped again as a segment): the
// read is a relaxed atomic load, which compiles to the same single mov as a plain one.
HAK_INLINE uintptr_t hak_map_word(const void* p) {
  return __atomic_load_n(&hak_segment_map[(uintptr_t)p >> HAK_SEGMENT_SHIFT], __ATOMIC_RELAXED);
}

HAK_INLINE int hak_map_in_range(const void* p) {
  return ((uintptr_t)p >> HAK_ADDRESS_BITS) == 0;
}

// The map word of any address, however wild: 0 (not hakmem's) outside the map's range.
HAK_INLINE uintptr_t hak_map_word_checked(const void* p) {
  return hak_map_in_range(p) ? hak_map_word(p) : 0;
}

// The two maps (this one and the medium class map below) span 384 MiB of address space, 768 on
// aarch64. As writable zero-filled .bss they were charged in full against the commit limit of a
// system under strict overcommit (vm.overcommit_memory=2, as database hosts run) by every
// process that loads hakmem. Before the first region is entered, they are mapped again as
// read-only zero pages, charged nothing; a page of either becomes writable when a region it
// describes is first handed to hakmem: a few pages in a typical process.
//
// Makes the entries of the 4 MiB region holding `region` writable in both maps (before
// hak_map_set gives it a nonzero word). 0 on success; -1 if the kernel refuses (out of commit):
// the caller gives the region back and reports ENOMEM. Any thread.
int hak_map_commit(const void* region);

// REQUIRES: hak_map_commit(region) succeeded once.
HAK_INLINE void hak_map_set(const void* region, uintptr_t word) {
  __atomic_store_n(&hak_segment_map[(uintptr_t)region >> HAK_SEGMENT_SHIFT],
                   word, __ATOMIC_RELEASE);
}

// One byte per 1 MiB of address space: the size class of the MEDIUM slab there while it serves
// one, else 0 (a tiny class, never a MEDIUM slab's). The mid free fast path reads it instead of
// the slab header: headers sit one per 1 MiB, each on its own page and at one offset modulo
// 1 MiB, where this table keeps every slab of a heap within a few cache lines. Written by the
// slab's owner (slab init and give-back), read racily like the segment map.
#define HAK_MEDIUM_MAP_ENTRIES ((size_t)1 << (HAK_ADDRESS_BITS - HAK_MEDIUM_SLAB_SHIFT))
extern uint8_t hak_medium_class_map[HAK_MEDIUM_MAP_ENTRIES];

HAK_INLINE unsigned hak_medium_class_at(const void* p) {
  return __atomic_load_n(&hak_medium_class_map[(uintptr_t)p >> HAK_MEDIUM_SLAB_SHIFT],
                         __ATOMIC_RELAXED);
}

// For any address, however wild (a decoded free-list link in secure builds): 0 outside the map.
HAK_INLINE unsigned hak_medium_class_checked(const void* p) {
  return hak_map_in_range(p) ? hak_medium_class_at(p) : 0;
}

HAK_INLINE void hak_medium_class_set(const void* p, unsigned cls) {
  __atomic_store_n(&hak_medium_class_map[(uintptr_t)p >> HAK_MEDIUM_SLAB_SHIFT], (uint8_t)cls,
                   __ATOMIC_RELAXED);
}

struct hak_heap_s;

typedef struct hak_segment_s {
  uint64_t cookie;               // HAK_SEGMENT_COOKIE ^ address: catches stray pointers
  uint8_t kind;                  // hak_segment_kind_t
  uint8_t slab_shift;
  uint8_t slab_count;
  uint8_t free_count;            // slabs not assigned to a size class
  uint32_t purge_pending;        // number of free slabs whose pages are still committed
  uint64_t free_mask;            // bit i: slab i is free
  uint64_t dirty_mask;           // bit i: slab i is free and its pages are still committed
  uint64_t freed_at_ms[HAK_MAX_SLABS];  // when each dirty slab became free
  uint8_t freed_class[HAK_MAX_SLABS];   // the size class each free slab served last
  struct hak_heap_s* heap;       // owner, NULL when abandoned or cached
  struct hak_segment_s* next;    // in the owner's list, the cache or an abandoned list
  struct hak_segment_s* prev;
  uint64_t cached_at_ms;
  // Every mapped segment, for the purger (under the lists lock).
  struct hak_segment_s* all_next;
  struct hak_segment_s* all_prev;
  uint8_t in_cache;
  // Guards the slab masks, their counts and freed_at_ms between the owner's slow paths and the
  // purger's thread (a spin lock: held for a few slab operations or one slab's purge).
  int slabs_lock;
} hak_segment_t;

// A slab header: two cache lines (hak_slab_t in slab.h).
#define HAK_SLAB_HEADER_SIZE ((size_t)128)
#define HAK_SEGMENT_HEADER_SIZE hak_align_up(sizeof(hak_segment_t), 64)

#define HAK_SEGMENT_COOKIE ((uint64_t)0x68616b6d656d5347ull)

HAK_INLINE hak_segment_t* hak_segment_of(const void* p) {
  return (hak_segment_t*)((uintptr_t)p & ~(HAK_SEGMENT_SIZE - 1));
}

HAK_INLINE size_t hak_segment_slab_size(const hak_segment_t* header) {
  return (size_t)1 << header->slab_shift;
}

HAK_INLINE unsigned hak_segment_slab_shift_of(hak_segment_kind_t kind) {
  return kind == HAK_KIND_SMALL ? HAK_SMALL_SLAB_SHIFT : HAK_MEDIUM_SLAB_SHIFT;
}

// Bytes at the end of slab 0 holding the segment header and the slab headers.
HAK_INLINE size_t hak_segment_meta_size(unsigned slab_shift) {
  return HAK_SEGMENT_HEADER_SIZE + (HAK_SEGMENT_SIZE >> slab_shift) * HAK_SLAB_HEADER_SIZE;
}

// Header location of a segment whose base is `base` and slabs are 1 << slab_shift bytes.
HAK_INLINE hak_segment_t* hak_segment_header(void* base, unsigned slab_shift) {
  uint8_t* slab0_end = (uint8_t*)base + ((size_t)1 << slab_shift);
  return (hak_segment_t*)(slab0_end - hak_segment_meta_size(slab_shift));
}

// Bytes from the start of slab `index` (of 1 << slab_shift bytes) that may hold blocks. Secure
// builds follow them with a guard page (guard_slabs in segment.c): an overflow off the end of a
// slab's blocks faults instead of reaching the next slab or the headers.
HAK_INLINE size_t hak_segment_slab_usable(unsigned slab_shift, unsigned index) {
  size_t slab_size = (size_t)1 << slab_shift;
  int has_meta = index == 0 || slab_shift == HAK_MEDIUM_SLAB_SHIFT;
  size_t meta = has_meta ? hak_segment_meta_size(slab_shift) : 0;
  if (HAKMEM_SECURE) return slab_size - hak_align_up(meta, HAK_PAGE_SIZE) - HAK_PAGE_SIZE;
  return slab_size - meta;
}

// The header of the segment holding p, whose slabs are 1 << slab_shift bytes; NULL if the
// header's cookie is wrong.
HAK_INLINE hak_segment_t* hak_segment_checked(const void* p, unsigned slab_shift) {
  void* base = hak_segment_of(p);
  hak_segment_t* header = hak_segment_header(base, slab_shift);
  return header->cookie == (HAK_SEGMENT_COOKIE ^ (uintptr_t)base) ? header : NULL;
}

// Reads the header of the segment holding p, using the map word's kind. NULL if p's map word
// is not a SMALL or MEDIUM segment or the header's cookie is wrong.
HAK_INLINE hak_segment_t* hak_segment_lookup(const void* p, uintptr_t map_word) {
  uintptr_t kind = map_word & HAK_KIND_MASK;
  if (map_word == 0 || (kind != HAK_KIND_SMALL && kind != HAK_KIND_MEDIUM)) return NULL;
  return hak_segment_checked(p, hak_segment_slab_shift_of((hak_segment_kind_t)kind));
}

// Gets an empty segment of `kind` (from the cache or the OS) owned by `heap` / `owner`, with its
// map word set. NULL if the OS refuses memory.
hak_segment_t* hak_segment_acquire(hak_segment_kind_t kind, struct hak_heap_s* heap, uintptr_t owner);

// Gives back a segment whose slabs are all free: cached (purged after the delay) or unmapped.
void hak_segment_release(hak_segment_t* segment);

// Thread exit: the segment keeps its slabs but has no owner until adopted.
void hak_segment_abandon(hak_segment_t* segment);
// Takes one abandoned segment of `kind` for `heap`, or NULL.
hak_segment_t* hak_segment_adopt(hak_segment_kind_t kind, struct hak_heap_s* heap, uintptr_t owner);

// Purges cached segments idle longer than the purge delay (all of them if `force`).
void hak_segment_purge_cache(uint64_t now_ms, int force);

// Marks slab `index`, which served size class `cls`, free (dirty: pages still committed).
void hak_segment_slab_freed(hak_segment_t* segment, unsigned index, unsigned cls, uint64_t now_ms);
// Takes a free slab for size class `cls`: index, or -1 if none is free. Prefers a dirty slab
// that served `cls` (the pages its blocks touched are the ones they will touch again), then
// any dirty slab, then a purged one.
int hak_segment_take_slab(hak_segment_t* segment, unsigned cls);
// Purges dirty slabs older than the delay (all of them if `force`); returns the bytes purged.
size_t hak_segment_purge_slabs(hak_segment_t* segment, uint64_t now_ms, int force);
// Purges the dirty slabs that last served class `cls`, whatever their age (the class went idle).
size_t hak_segment_purge_class(hak_segment_t* segment, unsigned cls);

// Nonzero if the segment has free slabs whose pages are still committed (any thread may ask).
HAK_INLINE uint32_t hak_segment_dirty_slabs(const hak_segment_t* segment) {
  return __atomic_load_n(&segment->purge_pending, __ATOMIC_RELAXED);
}

// The lock of the slab masks (slabs_lock), for readers that must see them whole (the checker).
void hak_segment_lock_slabs(hak_segment_t* segment);
void hak_segment_unlock_slabs(hak_segment_t* segment);

// For the purger's thread: purges the dirty slabs of every mapped segment and the cached
// segments idle past the purge delay (all of them if `force`); returns when the next of what
// still waits is due (hak_os_now_ms time; 0: nothing waits).
uint64_t hak_segment_purge_due(uint64_t now_ms, int force);

// Counts for stats (approximate while other threads allocate).
typedef struct hak_segment_totals_s {
  size_t mapped_segments;
  size_t cached_segments;
  size_t abandoned_segments;
  size_t purged_bytes;
} hak_segment_totals_t;
void hak_segment_totals(hak_segment_totals_t* out);

// Fork child: recomputes the counts that shadow the slab masks, which the segment's thread may
// have been updating when it stopped existing.
void hak_segment_repair_counts(hak_segment_t* segment);

// Calls visit(segment, arg) for every cached and every abandoned segment, under the lists lock
// (visit must not call into this box).
void hak_segment_for_each_unowned(void (*visit)(hak_segment_t* segment, void* arg), void* arg);

// Fork protection for the global lists.
void hak_segment_fork_prepare(void);
void hak_segment_fork_parent(void);
void hak_segment_fork_child(void);

HAK_EXTERN_C_END

#endif  // HAKMEM_SEGMENT_H
