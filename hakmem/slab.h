// slab: the header of every slab (in its segment's array of headers, segment.h) and the
// owner-side free-list operations on it.
//
// Owns: slab headers and the blocks inside a slab. May use: base, segment (layout only).
// Heap decides when these run; slab only keeps each slab's lists and counts consistent.
//
// Three free lists per slab (free-list sharding):
//   free        popped by malloc on the owning thread, and pushed by the owner's tiny free while
//               the slab is its class's current one (hak_slab_free_current): the next malloc of
//               the class reuses the block freed last, whose line is still in cache, where a
//               block that went round through local_free came back cold (larson: most of
//               malloc's time was the load of a popped block's link);
//   local_free  pushed by free on the owning thread otherwise (no atomics);
//   remote      pushed by other threads with one CAS; the owner takes it whole with one exchange.
// Counts (owner view), with `carved` blocks ever cut from the slab:
//   used        = blocks handed to the program + |free| + |remote|
//   carved      = used + |local_free|               (so |local_free| needs no walk)
// A slab is empty when used == 0 and free == NULL; a slab that is not some class's current slab
// always has free == NULL.
//
// Every free block, on whichever list (the mid caches too), holds an address of hakmem's in its
// second word, the free mark (hak_free_mark: its slab header's, or its slab's last byte's):
// carving sets it, every free sets it, handing a block out clears it. A free whose block carries
// the mark is a double free (or a free of a carved block never handed out), caught at one
// compare; program data equals the mark only if the program stored that address there. Every
// block size is a multiple of 16, so the mark always lies inside the block.
#ifndef HAKMEM_SLAB_H
#define HAKMEM_SLAB_H

#include <stddef.h>
#include <stdint.h>

#include "hakmem/base.h"
#include "hakmem/segment.h"

HAK_EXTERN_C_BEGIN

typedef struct hak_block_s {
  struct hak_block_s* next;
  uintptr_t free_mark;  // hak_free_mark(its slab) while the block is free, else program data
} hak_block_t;

enum {
  HAK_SLAB_CURRENT = 0,  // its class's current slab (or, inside a slow path, on its way to a list)
  HAK_SLAB_FULL = 1,     // on its heap's full list
  HAK_SLAB_PARTIAL = 2,  // on its heap's partial list
};
#define HAK_SLAB_UNUSED_CLASS 0xff

// Two cache lines: the owner's hot fields in the first, the remote list and what other threads
// read to validate a remote free in the second, so cross-thread frees do not bounce the line
// the owner's fast paths write.
typedef struct hak_slab_s {
  // Owner only.
  hak_block_t* free;
  hak_block_t* local_free;
  uint32_t used;
  uint8_t list;                  // HAK_SLAB_CURRENT, HAK_SLAB_FULL or HAK_SLAB_PARTIAL
  uint8_t unused_pad[3];
  struct hak_slab_s* next;       // in its heap's partial or full list for its class
  struct hak_slab_s* prev;
  // The owner's copy of the block test (hak_slab_owns_block): carved_limit is 0 while the slab
  // serves no class.
  uint64_t block_magic;
  uint64_t carved_limit;
  uint8_t owner_line_pad[HAK_CACHE_LINE - 56];
  // Shared with threads freeing remotely.
  uintptr_t remote;              // hak_slab_remote_word: blocks pushed by other threads; __atomic
  uint64_t block_magic_shared;   // block_magic, read by other threads
  uint32_t block_size;
  uint16_t capacity;
  uint16_t carved;               // written by the owner, read by remote frees: atomic access
  uint8_t class_idx;             // HAK_SLAB_UNUSED_CLASS when the slab is free
  uint8_t index;                 // position in its segment
  uint8_t slab_shift;
  uint8_t shared_line_pad[HAK_CACHE_LINE - 27];
} hak_slab_t;

HAK_STATIC_ASSERT(sizeof(hak_slab_t) == HAK_SLAB_HEADER_SIZE, "slab header is two cache lines");

// Free-list links. Secure builds store each link encoded with two process-wide random keys and
// rotated by the key (as mimalloc's secure mode does): a program that writes into a freed block,
// or forges a link, leaves one that decodes to an address outside the block's slab, which every
// pop checks.
#if HAKMEM_SECURE
extern uintptr_t hak_block_keys[2];  // set once at init, never zero

// Compiles to one rol / ror instruction.
HAK_INLINE uintptr_t hak_rotl(uintptr_t x, unsigned r) { return (x << (r & 63)) | (x >> (-r & 63)); }
HAK_INLINE uintptr_t hak_rotr(uintptr_t x, unsigned r) { return (x >> (r & 63)) | (x << (-r & 63)); }

HAK_INLINE hak_block_t* hak_block_next(const hak_block_t* b) {
  uintptr_t stored = (uintptr_t)b->next - hak_block_keys[0];
  return (hak_block_t*)(hak_rotr(stored, (unsigned)hak_block_keys[0]) ^ hak_block_keys[1]);
}

HAK_INLINE void hak_block_set_next(hak_block_t* b, const hak_block_t* next) {
  uintptr_t mixed = hak_rotl((uintptr_t)next ^ hak_block_keys[1], (unsigned)hak_block_keys[0]);
  b->next = (hak_block_t*)(mixed + hak_block_keys[0]);
}
#else
HAK_INLINE hak_block_t* hak_block_next(const hak_block_t* b) { return b->next; }
HAK_INLINE void hak_block_set_next(hak_block_t* b, const hak_block_t* next) {
  b->next = (hak_block_t*)next;
}
#endif

// A link a free block of the slab of 2^slab_shift bytes holding b can have: NULL or that slab.
HAK_INLINE int hak_block_link_ok(const hak_block_t* b, const hak_block_t* next, unsigned slab_shift) {
  return next == NULL || (((uintptr_t)next ^ (uintptr_t)b) >> slab_shift) == 0;
}

// Aborts: the link of free block b decodes to no block of its slab (secure builds).
HAK_NORETURN HAK_COLD void hak_block_corrupted(const hak_block_t* b);

// The link of b, the head of a free list of one slab, which is being popped: the next head.
// Secure builds check it.
HAK_INLINE hak_block_t* hak_block_pop(hak_block_t* b, unsigned slab_shift) {
  hak_block_t* next = hak_block_next(b);
#if HAKMEM_SECURE
  if (HAK_UNLIKELY(!hak_block_link_ok(b, next, slab_shift))) hak_block_corrupted(b);
#else
  (void)slab_shift;
#endif
  return next;
}

// Block b was popped and the list head moved past it: it loses its free mark. Secure builds
// clear its link too (an encoded link the program could read tells about the keys), in this
// order: a fork stopping the thread in between leaves a list whose head still links on.
HAK_INLINE void hak_block_handed_out(hak_block_t* b) {
  b->free_mark = 0;
#if HAKMEM_SECURE
  HAK_COMPILER_BARRIER();
  b->next = NULL;
#endif
}

// The header of the slab of 2^slab_shift bytes holding p (segment.h draws the layout). With a
// constant shift it compiles to two ands and a shift, the constant folded into the loads.
HAK_INLINE hak_slab_t* hak_slab_of_shift(const void* p, unsigned slab_shift) {
  uintptr_t slabs = HAK_SEGMENT_SIZE >> slab_shift;
  uintptr_t segment = (uintptr_t)p & ~(uintptr_t)(HAK_SEGMENT_SIZE - 1);
  uintptr_t index = ((uintptr_t)p >> slab_shift) & (slabs - 1);
  uintptr_t headers = ((uintptr_t)1 << slab_shift) - slabs * sizeof(hak_slab_t);
  return (hak_slab_t*)(segment + headers + index * sizeof(hak_slab_t));
}

HAK_INLINE hak_slab_t* hak_small_slab_of(const void* p) {
  return hak_slab_of_shift(p, HAK_SMALL_SLAB_SHIFT);
}

// The free mark of a block at p, in a slab of 2^slab_shift bytes, computed from p alone (nothing
// read): in a small slab its header's address, which the tiny free fast path holds already; in a
// medium slab the address of the slab's last byte (p with every in-slab bit set), as the mid free
// fast path computes no header.
HAK_INLINE uintptr_t hak_free_mark(const void* p, unsigned slab_shift) {
  if (slab_shift == HAK_SMALL_SLAB_SHIFT) return (uintptr_t)hak_slab_of_shift(p, slab_shift);
  return (uintptr_t)p | (((uintptr_t)1 << slab_shift) - 1);
}

HAK_INLINE void hak_block_mark_free(hak_block_t* b, unsigned slab_shift) {
  b->free_mark = hak_free_mark(b, slab_shift);
}

// Nonzero if block b, in a slab of 2^slab_shift bytes, carries the free mark: it is free already.
// (ASan builds: a free block's link and mark stay addressable; a held block of fewer than 16
// requested bytes has its mark poisoned, and is not free.)
HAK_INLINE int hak_block_is_free(const hak_block_t* b, unsigned slab_shift) {
#if HAK_ASAN
  if (__asan_region_is_poisoned((void*)&b->free_mark, sizeof b->free_mark)) return 0;
#endif
  return b->free_mark == hak_free_mark(b, slab_shift);
}

// Header of slab `index` of `segment`.
HAK_INLINE hak_slab_t* hak_slab_at(const hak_segment_t* segment, unsigned index) {
  uint8_t* start = (uint8_t*)hak_segment_of(segment) + ((size_t)index << segment->slab_shift);
  return hak_slab_of_shift(start, segment->slab_shift);
}

HAK_INLINE uint8_t* hak_slab_start(const hak_slab_t* slab) {
  uintptr_t segment = (uintptr_t)slab & ~(uintptr_t)(HAK_SEGMENT_SIZE - 1);
  return (uint8_t*)(segment + ((uintptr_t)slab->index << slab->slab_shift));
}

// The block test, one multiplication: with magic = floor(2^64 / size) + 1 and e = size * magic
// mod 2^64 (1 <= e <= size), an offset o into the slab (o < 2^20, size < 2^17) gives
// o * magic mod 2^64 = q * e when o = q * size starts block q, and at least magic (> 2^47)
// otherwise. So o * magic < carved * e holds exactly for the starts of the first `carved` blocks:
// interior, misaligned and never carved pointers all fail the one compare (Lemire, Kaser and
// Kurz, "Faster remainder by direct computation", 2019).
HAK_INLINE uint64_t hak_block_magic(size_t block_size) {
  return (uint64_t)(0 - (uint64_t)block_size) / block_size + 2;
}

HAK_INLINE uint64_t hak_block_limit(size_t block_size, unsigned blocks) {
  return (uint64_t)blocks * ((uint64_t)block_size * hak_block_magic(block_size));
}

// Owner thread only: nonzero if p, an address inside this slab of 2^slab_shift bytes, is the
// start of one of its carved blocks (never, while the slab serves no class).
HAK_INLINE int hak_slab_owns_block(const hak_slab_t* slab, const void* p, unsigned slab_shift) {
  uint64_t offset = (uintptr_t)p & (((uintptr_t)1 << slab_shift) - 1);
  return offset * slab->block_magic < slab->carved_limit;
}

// The same test from any thread, for p known to lie in this slab of 2^slab_shift bytes (its
// header was computed from p; a constant shift leaves no slab start to compute): every field it
// reads is stable while the slab serves a class, or loaded atomically.
HAK_INLINE int hak_slab_is_block_in(const hak_slab_t* slab, const void* p, unsigned slab_shift) {
  uint64_t offset = (uintptr_t)p & (((uintptr_t)1 << slab_shift) - 1);
  if (slab->class_idx == HAK_SLAB_UNUSED_CLASS) return 0;
  uint64_t magic = slab->block_magic_shared;
  uint16_t carved = __atomic_load_n(&slab->carved, __ATOMIC_RELAXED);
  return offset * magic < (uint64_t)carved * (slab->block_size * magic);
}

// The same for any p (remote free validation, the heap walker).
HAK_INLINE int hak_slab_is_block(const hak_slab_t* slab, const void* p) {
  uintptr_t offset = (uintptr_t)p - (uintptr_t)hak_slab_start(slab);
  return (offset >> slab->slab_shift) == 0 && hak_slab_is_block_in(slab, p, slab->slab_shift);
}

// Aborts with one line naming what is wrong with p, a pointer into `slab` that `op` ("free",
// "realloc", ...) was given: an interior or misaligned pointer, a block never handed out, a block
// free already, or a slab that serves no class.
HAK_NORETURN HAK_COLD void hak_slab_invalid_block(const hak_slab_t* slab, const void* p,
                                                  const char* op);

// The free fast paths' way into hak_slab_invalid_block. It never returns either, but is not
// declared so: the fast paths reach it with a jump, where a call to a noreturn function would
// cost them a stack frame on every free.
// (It takes p alone, for the same reason: the fast paths need not keep the header's address.)
HAK_COLD void hak_slab_reject_free(const void* p, unsigned slab_shift);

// Any thread: aborts naming the error in `op`'s name unless p is a block of `slab` that the
// program holds.
HAK_INLINE void hak_slab_expect_held(const hak_slab_t* slab, const void* p, const char* op) {
  if (!hak_slab_is_block(slab, p) || hak_block_is_free((const hak_block_t*)p, slab->slab_shift)) {
    hak_slab_invalid_block(slab, p, op);
  }
}

// Owner thread: nonzero if p, inside this slab of 2^slab_shift bytes, is a block the program
// holds (a carved block start without the free mark).
HAK_INLINE int hak_slab_holds(const hak_slab_t* slab, const void* p, unsigned slab_shift) {
  return hak_slab_owns_block(slab, p, slab_shift) &&
         !hak_block_is_free((const hak_block_t*)p, slab_shift);
}

// Owner-thread free of block p of this slab of 2^slab_shift bytes, checked already
// (hak_slab_holds); returns nonzero when the slab became empty.
HAK_INLINE int hak_slab_free_local(hak_slab_t* slab, void* p, unsigned slab_shift) {
  hak_block_t* block = (hak_block_t*)p;
  hak_block_mark_free(block, slab_shift);
  hak_block_set_next(block, slab->local_free);
  slab->local_free = block;
  HAK_COMPILER_BARRIER();
  return --slab->used == 0;
}

// Owner-thread free of block p of this slab, its class's current one (list HAK_SLAB_CURRENT),
// checked already (hak_slab_holds): onto `free`, for the next malloc. `used` counts the free
// list, so it does not change, and a current slab is never given back on a free.
HAK_INLINE void hak_slab_free_current(hak_slab_t* slab, void* p, unsigned slab_shift) {
  hak_block_t* block = (hak_block_t*)p;
  hak_block_mark_free(block, slab_shift);
  hak_block_set_next(block, slab->free);
  // After the link: a fork stopping this thread in between loses the block, never the list.
  __atomic_store_n(&slab->free, block, __ATOMIC_RELEASE);
}

// Sets up slab `index` of `segment` for blocks of `block_size` (class `cls`); carves nothing.
hak_slab_t* hak_slab_init(hak_segment_t* segment, unsigned index, unsigned cls, size_t block_size);
// The slab no longer serves a class (it goes back to its segment).
void hak_slab_mark_unused(hak_slab_t* slab);
// Blocks of `block_size` bytes that fit in any MEDIUM slab.
size_t hak_medium_slab_capacity(size_t block_size);

// Cuts up to `max_blocks` fresh blocks into `free` (which must be empty); returns how many.
unsigned hak_slab_carve(hak_slab_t* slab, unsigned max_blocks);

// Moves local_free into free (free must be empty). Returns nonzero if free is now non-empty.
int hak_slab_take_local(hak_slab_t* slab);

// The remote word: the head of the remote list in the low HAK_ADDRESS_BITS (every block lies
// below, segment.h) and the number of blocks on it above them (at most the slab's capacity,
// 16 bits). Each push adds its blocks' count in the same compare-and-swap, so the owner takes
// list and count with one exchange: it need not walk the list (a chain of cache misses, on
// lines the freeing threads wrote last) when its local_free is empty, nor ever to count.
#define HAK_REMOTE_COUNT_SHIFT HAK_ADDRESS_BITS
HAK_STATIC_ASSERT(64 - HAK_REMOTE_COUNT_SHIFT >= 16, "a slab's block count fits above the head");

HAK_INLINE hak_block_t* hak_slab_remote_head(uintptr_t word) {
  return (hak_block_t*)(word & (((uintptr_t)1 << HAK_REMOTE_COUNT_SHIFT) - 1));
}
HAK_INLINE unsigned hak_slab_remote_count(uintptr_t word) {
  return (unsigned)(word >> HAK_REMOTE_COUNT_SHIFT);
}

// Takes the remote list and pushes its blocks onto local_free (used drops by their number).
// Aborts with a clear message if the list holds more blocks than are in use (a double free or
// corruption).
unsigned hak_slab_collect_remote(hak_slab_t* slab);

// Moves the free list back to local_free (when the slab stops being current).
void hak_slab_unload_free(hak_slab_t* slab);

// Pushes p, a block of this slab checked already (hak_slab_is_block, not free), onto the remote
// list from a thread that does not own the slab.
void hak_slab_free_remote(hak_slab_t* slab, void* p);
// Pushes the `count` blocks head .. tail of this slab, linked and carrying their free marks, onto
// the remote list with one compare-and-swap (remote.h batches them).
void hak_slab_free_remote_list(hak_slab_t* slab, hak_block_t* head, hak_block_t* tail,
                               unsigned count);

// Nonzero if the header of slab `index` of `segment` is that of a slab serving some size class.
int hak_slab_header_valid(const hak_segment_t* segment, const hak_slab_t* slab, unsigned index);

// Walks local_free of an empty slab and checks it holds exactly `carved` distinct blocks.
// Aborts naming a double free otherwise.
void hak_slab_check_empty(const hak_slab_t* slab);

HAK_EXTERN_C_END

#endif  // HAKMEM_SLAB_H
