// heap_slabs: what the heap box's own files share about slab queues (private to the heap box).
#ifndef HAKMEM_HEAP_SLABS_H
#define HAKMEM_HEAP_SLABS_H

#include <stdint.h>

#include "hakmem/heap.h"

// Puts s first on `list`, which is `which` (HAK_SLAB_FULL or HAK_SLAB_PARTIAL) of its class.
void hak_heap_list_push(hak_slab_list_t* list, hak_slab_t* s, uint8_t which);

// Collects a slab's remote frees (counted for `heap`); gives the slab back to its segment if that
// emptied it. Returns nonzero if the slab still holds blocks. `torn`: in a fork child, a slab of
// a thread that vanished mid-operation may have free blocks on no list (lost, by design, rather
// than on two), which the emptiness check would call a double free: it is skipped.
int hak_heap_collect_or_give_back(hak_heap_t* heap, hak_segment_t* seg, hak_slab_t* s,
                                  uint64_t now, int torn);

// The class went idle in every thread: its empty slabs and their pages go back now rather than
// after the purge delay (the caller flushed its mid cache).
void hak_heap_release_class(hak_heap_t* heap, unsigned cls);

#endif  // HAKMEM_HEAP_SLABS_H
