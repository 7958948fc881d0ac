// remote: a thread's outgoing batches of blocks it freed into slabs that other threads own.
//
// Owns: hak_remote_out_t, the batches in it and when they are handed over. May use: base, slab.
// Must not touch: heaps and slab lists (the heap holds a hak_remote_out_t and says when to flush
// it; the owner of a slab collects its remote list as before, slab.h).
//
// A cross-thread free used to push each block onto its slab's remote list with one
// compare-and-swap, moving the line that holds the list to the freeing core and back to the
// owner's on every block. Here a freeing thread links the block into a batch for its slab
// instead, with plain stores, and hands the whole batch over with one compare-and-swap when it
// is full, when another slab wants its slot, and at the flush points its heap chooses (every
// 64th allocation slow path, its purge ticks, malloc_trim, thread exit, a fork child taking over
// a vanished thread's heap), as snmalloc's message queues and tcmalloc's transfer caches batch
// by destination.
//
// A batched block already carries its free mark (a second free of it aborts as a double free)
// and still counts as used in its slab, so the slab cannot be given back, nor change class,
// while the batch holds it. Held long, batches cost memory: larson with batches flushed only
// when full or evicted doubled its peak RSS (7 to 16 MiB), its owners carving new slabs while
// old ones waited for a few blocks; flushed every 64th slow path it stays at 7 MiB. Batches of
// a thread that stops allocating and freeing wait until its next flush point, bounded by
// HAK_REMOTE_SLOTS * HAK_REMOTE_BATCH_BYTES.
//
// Threading: a hak_remote_out_t is touched only by its thread, except by a fork child taking it
// over single threaded. Its stores are ordered so that a thread stopped anywhere by a fork leaves
// a batch that loses the block being added or the batch being handed over, never one that hands
// a block over twice.
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
} hak_remote_out_t;

// Hands the batch in `batch` over to its slab's remote list and empties the slot.
HAK_NOINLINE void hak_remote_flush(hak_remote_batch_t* batch);
// Hands every batch over (flush points; a fork child's take-over of a vanished thread's batches).
void hak_remote_flush_all(hak_remote_out_t* out);
// Blocks waiting in out's batches.
uint32_t hak_remote_held(const hak_remote_out_t* out);
// Starts a batch for block of `slab` in `batch`, handing over the batch of another slab it holds.
HAK_NOINLINE void hak_remote_start(hak_remote_batch_t* batch, hak_slab_t* slab, hak_block_t* block);

HAK_INLINE hak_remote_batch_t* hak_remote_slot(hak_remote_out_t* out, const hak_slab_t* slab) {
  // Headers are 128 bytes apart, a segment's all in one array (segment.h).
  uint64_t hash = ((uintptr_t)slab / sizeof(hak_slab_t)) * 0x9E3779B97F4A7C15ull;
  return &out->slots[hash >> (64 - 6)];
}
HAK_STATIC_ASSERT(HAK_REMOTE_SLOTS == 64, "hak_remote_slot takes 6 bits of the hash");

// Frees p, a block of `slab` (of 2^slab_shift bytes) checked already (hak_slab_is_block, not
// free) that this thread does not own, into its batch.
HAK_INLINE void hak_remote_free(hak_remote_out_t* out, hak_slab_t* slab, void* p,
                                unsigned slab_shift) {
  hak_block_t* block = (hak_block_t*)p;
  hak_block_mark_free(block, slab_shift);
  hak_remote_batch_t* batch = hak_remote_slot(out, slab);
  if (HAK_UNLIKELY(batch->slab != slab)) {
    hak_remote_start(batch, slab, block);
    return;
  }
  hak_block_set_next(block, batch->head);
  __atomic_store_n(&batch->head, block, __ATOMIC_RELEASE);  // after the link: see Threading
  if (HAK_UNLIKELY(++batch->count >= batch->limit)) hak_remote_flush(batch);
}

HAK_EXTERN_C_END

#endif  // HAKMEM_REMOTE_H
