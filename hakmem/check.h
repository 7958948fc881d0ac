// check: the heap invariant walker. Visits every segment (owned by a live thread heap, abandoned
// or cached) and every slab in it, and checks the free lists and counts against each other.
//
// Owns: nothing; reads heap, segment and slab state and never changes it. May use: base, segment,
// slab, remote, heap, huge. Used by stress targets and tests after a run; never by the allocator
// itself.
//
// Call it only while no other thread allocates or frees (after joining workers): it reads the
// owner-only fields of every heap.
#ifndef HAKMEM_CHECK_H
#define HAKMEM_CHECK_H

#include <stddef.h>

#include "hakmem/base.h"

HAK_EXTERN_C_BEGIN

typedef struct hak_check_report_s {
  size_t segments;        // SMALL and MEDIUM segments visited
  size_t slabs;           // slabs assigned to a size class
  size_t live_blocks;     // small and mid blocks the program holds
  size_t free_blocks;     // on slab free and local_free lists
  size_t remote_blocks;   // on slab remote lists, not yet collected by their owner
  size_t cached_blocks;   // in thread mid caches
  size_t batched_blocks;  // in threads' outgoing remote batches (remote.h)
  size_t large_blocks;    // live large-pool blocks (above HAK_MID_MAX, up to its limit)
  size_t huge_blocks;     // live blocks above the large pool's limit
  int counters_checked;   // 1 when the debug counters were compared with live_blocks
  char error[256];        // the first violation found, "" if none
} hak_check_report_t;

// Walks the whole heap; returns 1 if every invariant holds, else 0 with out->error set.
int hak_check_heap(hak_check_report_t* out);

HAK_EXTERN_C_END

#endif  // HAKMEM_CHECK_H
