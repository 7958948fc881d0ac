#include "hakmem/remote.h"

void hak_remote_flush(hak_remote_batch_t* batch) {
  hak_slab_t* slab = batch->slab;
  hak_block_t* head = batch->head;
  hak_block_t* tail = batch->tail;
  // The slot empties first: a fork stopping this thread before the push loses the batch, one
  // stopping it after cannot push it a second time.
  __atomic_store_n(&batch->slab, NULL, __ATOMIC_RELEASE);
  hak_slab_free_remote_list(slab, head, tail);
}

void hak_remote_start(hak_remote_batch_t* batch, hak_slab_t* slab, hak_block_t* block) {
  if (batch->slab != NULL) hak_remote_flush(batch);
  uint32_t limit = HAK_REMOTE_BATCH_BYTES / slab->block_size;
  if (limit > HAK_REMOTE_BATCH_BLOCKS) limit = HAK_REMOTE_BATCH_BLOCKS;
  hak_block_set_next(block, NULL);
  if (limit <= 1) {  // a block this large goes at once
    hak_slab_free_remote_list(slab, block, block);
    return;
  }
  batch->head = batch->tail = block;
  batch->count = 1;
  batch->limit = limit;
  // Published last: a fork child hands over only batches whose fields are whole.
  __atomic_store_n(&batch->slab, slab, __ATOMIC_RELEASE);
}

void hak_remote_flush_all(hak_remote_out_t* out) {
  for (unsigned i = 0; i < HAK_REMOTE_SLOTS; i++) {
    if (out->slots[i].slab != NULL) hak_remote_flush(&out->slots[i]);
  }
}

uint32_t hak_remote_held(const hak_remote_out_t* out) {
  uint32_t n = 0;
  for (unsigned i = 0; i < HAK_REMOTE_SLOTS; i++) {
    if (out->slots[i].slab != NULL) n += out->slots[i].count;
  }
  return n;
}
