// remote: a thread's outgoing batches of blocks it freed into slabs that other threads own.
//
// Owns: hak_remote_out_t, the batches in it and when they are handed over. May use: base,
// purge_hint, slab.
// Must not touch: heaps and slab lists (the heap holds a hak_remote_out_t and says when to flush
// it; the owner of a slab collects its remote list as before, slab.h).
//
// A cross-thread free used to push each block onto its slab's remote list with one
// compare-and-swap, moving the line that holds the list to the freeing core and back to the
// owner's on every block. Here a freeing thread links the block into a batch for its slab
// instead, with plain stores, and hands the whole batch over with one compare-and-swap when it
// is full, when another slab wants its slot, and at the flush points its heap chooses (every
// 4th allocation slow path, heap.h; its purge ticks, malloc_trim, thread exit, a fork child
// taking over a vanished thread's heap), as snmalloc's message queues and tcmalloc's transfer
// caches batch by destination.
//
// A batched block already carries its free mark (a second free of it aborts as a double free)
// and still counts as used in its slab, so the slab cannot be given back, nor change class,
// while the batch holds it. Held long, batches cost memory: larson with batches flushed only
// when full or evicted doubled its peak RSS (7 to 16 MiB), its owners carving new slabs while
// old ones waited for a few blocks; flushed every 64th slow path it stayed at 7 MiB (every 4th
// now: heap.h). The batches
// of a thread that stops (blocked, idle) are handed over by the purger's thread once a pass
// finds it has neither started a batch nor flushed since the pass before (hak_remote_claim).
//
// Threading: a hak_remote_out_t is touched by its thread, by a fork child taking it over single
// threaded, and by a taker (the purger) that holds a claim on it. The owner needs no atomic
// instruction for that: it marks each use of its batches busy with a plain store and reads the
// claim flag; the taker sets its claims, then runs a process-wide memory barrier
// (hak_os_barrier_all_threads) and flushes only outs not busy. The barrier makes the owner's
// busy store visible to the taker or the taker's claim visible to the owner, so one of them
// stays out (an asymmetric Dekker lock, as userspace RCU uses membarrier); an owner that finds a
// claim waits for it to end (hak_remote_wait). Without membarrier nothing is taken over. Stores
// are ordered so that a thread stopped anywhere by a fork leaves a batch that loses the block
// being added or the batch being handed over, never one that hands a block over twice.
#ifndef HAKMEM_REMOTE_H
#define HAKMEM_REMOTE_H

#include <stdint.h>

#include "hakmem/base.h"
#include "hakmem/slab.h"

HAK_EXTERN_C_BEGIN

// Slots, one batch each, chosen by a hash of the slab's address: enough for a consumer freeing
// the blocks of a producer's current slabs of every tiny class without evicting each other.
#define HAK_REMOTE_SLOTS 64
// A batch is handed over when it holds this many bytes of blocks or HAK_REMOTE_BATCH_BLOCKS
// blocks; a block this large or larger is handed over at once.
#define HAK_REMOTE_BATCH_BYTES (16 * 1024)
#define HAK_REMOTE_BATCH_BLOCKS 64

typedef struct hak_remote_batch_s {
  hak_slab_t* slab;    // the blocks' slab; NULL while the slot is empty
  hak_block_t* head;   // linked like a remote list, ending at tail
  hak_block_t* tail;
  uint32_t count;
  uint32_t limit;      // count at which the batch is handed over
} hak_remote_batch_t;

typedef struct hak_remote_out_s {
  hak_remote_batch_t slots[HAK_REMOTE_SLOTS];
  uint32_t open;            // __atomic: slots holding a batch
  int busy;                 // __atomic: the owner is adding to or handing over batches
  int claimed;              // __atomic: a taker may be handing them over
  uint32_t activity;        // __atomic: batches started and flushes of all by the owner (wraps)
  uint32_t activity_seen;   // the taker's: `activity` at its last look
} hak_remote_out_t;

// The owner, at the end of a free (these end its use of the batches, hak_remote_leave): hands
// the full batch in `batch`, a slot of out, over to its slab's remote list.
HAK_NOINLINE void hak_remote_hand_over(hak_remote_out_t* out, hak_remote_batch_t* batch);
// The owner: hands every batch over (flush points; a fork child's take-over of a vanished
// thread's batches).
void hak_remote_flush_all(hak_remote_out_t* out);

// The owner found a claim on its batches: waits until it ends, then marks them busy again.
HAK_NOINLINE void hak_remote_wait(hak_remote_out_t* out);

// The owner marks its batches busy; returns nonzero if a taker's claim is on them (then the
// owner must not touch them: hak_remote_wait).
HAK_INLINE int hak_remote_mark_busy(hak_remote_out_t* out) {
  __atomic_store_n(&out->busy, 1, __ATOMIC_RELAXED);
  // The compiler keeps the store before the load; the taker's barrier does so for the CPU.
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  return __atomic_load_n(&out->claimed, __ATOMIC_ACQUIRE);
}

// The owner, around every use of its batches.
HAK_INLINE void hak_remote_enter(hak_remote_out_t* out) {
  if (HAK_UNLIKELY(hak_remote_mark_busy(out))) hak_remote_wait(out);
}
HAK_INLINE void hak_remote_leave(hak_remote_out_t* out) {
  __atomic_store_n(&out->busy, 0, __ATOMIC_RELEASE);
}

// A taker, for each out in turn: claims out (returns 1) if it holds batches and its owner has
// neither started a batch nor flushed since the taker's last look; else returns 0.
int hak_remote_claim(hak_remote_out_t* out);
// After hak_os_barrier_all_threads following its claims (`barrier`: whether it succeeded): if out
// is claimed, hands its batches over unless its owner was busy, and ends the claim. Returns
// whether it handed them over.
int hak_remote_take_claimed(hak_remote_out_t* out, int barrier);
// Blocks waiting in out's batches.
uint32_t hak_remote_held(const hak_remote_out_t* out);
// Starts a batch for block of `slab` in `batch`, a slot of out, handing over the batch of another
// slab it holds; then a purge safe point (the purger hands the batch over if this thread stops,
// and a thread that only frees may be all that runs).
HAK_NOINLINE void hak_remote_start(hak_remote_out_t* out, hak_remote_batch_t* batch,
                                   hak_slab_t* slab, hak_block_t* block);

// Whether out holds a batch (for the owner's flush points; a racy look for a taker).
HAK_INLINE int hak_remote_holds(const hak_remote_out_t* out) {
  return __atomic_load_n(&out->open, __ATOMIC_RELAXED) != 0;
}

HAK_INLINE hak_remote_batch_t* hak_remote_slot(hak_remote_out_t* out, const hak_slab_t* slab) {
  // Headers are 128 bytes apart, a segment's all in one array (segment.h).
  uint64_t hash = ((uintptr_t)slab / sizeof(hak_slab_t)) * 0x9E3779B97F4A7C15ull;
  return &out->slots[hash >> (64 - 6)];
}
HAK_STATIC_ASSERT(HAK_REMOTE_SLOTS == 64, "hak_remote_slot takes 6 bits of the hash");

// After hak_remote_enter: adds block to its slab's batch, then ends the owner's use. Only tail
// calls: the free path needs no stack frame.
HAK_INLINE void hak_remote_push(hak_remote_out_t* out, hak_slab_t* slab, hak_block_t* block) {
  hak_remote_batch_t* batch = hak_remote_slot(out, slab);
  if (HAK_UNLIKELY(batch->slab != slab)) {
    hak_remote_start(out, batch, slab, block);
    return;
  }
  hak_block_set_next(block, batch->head);
  __atomic_store_n(&batch->head, block, __ATOMIC_RELEASE);  // after the link: see Threading
  if (HAK_UNLIKELY(++batch->count >= batch->limit)) {
    hak_remote_hand_over(out, batch);
    return;
  }
  hak_remote_leave(out);
}

// hak_remote_free when a claim was found: waits for it to end, then pushes.
HAK_NOINLINE void hak_remote_free_claimed(hak_remote_out_t* out, hak_slab_t* slab,
                                          hak_block_t* block);

// Frees p, a block of `slab` (of 2^slab_shift bytes) checked already (hak_slab_is_block, not
// free) that this thread does not own, into its batch.
HAK_INLINE void hak_remote_free(hak_remote_out_t* out, hak_slab_t* slab, void* p,
                                unsigned slab_shift) {
  hak_block_t* block = (hak_block_t*)p;
  hak_block_mark_free(block, slab_shift);
  if (HAK_UNLIKELY(hak_remote_mark_busy(out))) {  // hak_remote_enter, with a tail call
    hak_remote_free_claimed(out, slab, block);
    return;
  }
  hak_remote_push(out, slab, block);
}

HAK_EXTERN_C_END

#endif  // HAKMEM_REMOTE_H
