#include "hakmem/remote.h"

#include <sched.h>

#include "hakmem/purge_hint.h"

static void flush(hak_remote_out_t* out, hak_remote_batch_t* batch) {
  hak_slab_t* slab = batch->slab;
  hak_block_t* head = batch->head;
  hak_block_t* tail = batch->tail;
  unsigned count = batch->count;
  // The slot empties first: a fork stopping this thread before the push loses the batch, one
  // stopping it after cannot push it a second time.
  __atomic_store_n(&batch->slab, NULL, __ATOMIC_RELEASE);
  __atomic_store_n(&out->open, out->open - 1, __ATOMIC_RELAXED);
  hak_slab_free_remote_list(slab, head, tail, count);
}

void hak_remote_hand_over(hak_remote_out_t* out, hak_remote_batch_t* batch) {
  flush(out, batch);
  hak_remote_leave(out);
}

static void start(hak_remote_out_t* out, hak_remote_batch_t* batch, hak_slab_t* slab,
                  hak_block_t* block) {
  __atomic_store_n(&out->activity, out->activity + 1, __ATOMIC_RELAXED);
  if (batch->slab != NULL) flush(out, batch);
  uint32_t limit = HAK_REMOTE_BATCH_BYTES / slab->block_size;
  if (limit > HAK_REMOTE_BATCH_BLOCKS) limit = HAK_REMOTE_BATCH_BLOCKS;
  hak_block_set_next(block, NULL);
  if (limit <= 1) {  // a block this large goes at once
    hak_slab_free_remote_list(slab, block, block, 1);
    return;
  }
  batch->head = batch->tail = block;
  batch->count = 1;
  batch->limit = limit;
  __atomic_store_n(&out->open, out->open + 1, __ATOMIC_RELAXED);
  // Published last: a fork child hands over only batches whose fields are whole.
  __atomic_store_n(&batch->slab, slab, __ATOMIC_RELEASE);
  hak_purge_note();  // the purger hands it over if this thread stops
}

void hak_remote_start(hak_remote_out_t* out, hak_remote_batch_t* batch, hak_slab_t* slab,
                      hak_block_t* block) {
  start(out, batch, slab, block);
  hak_remote_leave(out);
  hak_purge_safe_point();
}

static void flush_slots(hak_remote_out_t* out) {
  for (unsigned i = 0; i < HAK_REMOTE_SLOTS; i++) {
    if (__atomic_load_n(&out->slots[i].slab, __ATOMIC_RELAXED) != NULL) {
      flush(out, &out->slots[i]);
    }
  }
}

void hak_remote_flush_all(hak_remote_out_t* out) {
  hak_remote_enter(out);
  flush_slots(out);
  __atomic_store_n(&out->activity, out->activity + 1, __ATOMIC_RELAXED);
  hak_remote_leave(out);
}

void hak_remote_free_claimed(hak_remote_out_t* out, hak_slab_t* slab, hak_block_t* block) {
  hak_remote_wait(out);
  hak_remote_push(out, slab, block);
}

void hak_remote_wait(hak_remote_out_t* out) {
  do {
    hak_remote_leave(out);
    while (__atomic_load_n(&out->claimed, __ATOMIC_ACQUIRE)) sched_yield();
  } while (hak_remote_mark_busy(out));
}

int hak_remote_claim(hak_remote_out_t* out) {
  uint32_t activity = __atomic_load_n(&out->activity, __ATOMIC_RELAXED);
  int idle = activity == out->activity_seen;
  out->activity_seen = activity;
  if (!idle || !hak_remote_holds(out)) return 0;
  __atomic_store_n(&out->claimed, 1, __ATOMIC_RELAXED);
  return 1;
}

int hak_remote_take_claimed(hak_remote_out_t* out, int barrier) {
  if (!__atomic_load_n(&out->claimed, __ATOMIC_RELAXED)) return 0;
  int take = barrier && !__atomic_load_n(&out->busy, __ATOMIC_ACQUIRE);
  if (take) flush_slots(out);
  __atomic_store_n(&out->claimed, 0, __ATOMIC_RELEASE);
  return take;
}

uint32_t hak_remote_held(const hak_remote_out_t* out) {
  uint32_t n = 0;
  for (unsigned i = 0; i < HAK_REMOTE_SLOTS; i++) {
    if (out->slots[i].slab != NULL) n += out->slots[i].count;
  }
  return n;
}
