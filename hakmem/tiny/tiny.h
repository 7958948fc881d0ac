// tiny: the malloc and free fast paths for blocks of 1 KiB and less.
//
// Owns: the two inline fast paths and the allocation slow path (tiny.c). May use: base,
// size_class, segment (map), slab, heap (TLS, slab queues), init (the thread's heap), wrap. Must
// not touch pool/.
//
// Cost, release x86-64 (objdump of libhakmem.so, tools/fastpath_golden.txt): malloc 13
// instructions, free 26 into the current slab and 28 into another (with ret; 6 of them compute
// the slab header, 7 check and mark the block), no atomics, no locks. Everything else tail-calls
// a noinline slow path: hak_tiny_alloc_slow here, the heap's for frees.
#ifndef HAKMEM_TINY_TINY_H
#define HAKMEM_TINY_TINY_H

#include <stddef.h>

#include "hakmem/base.h"
#include "hakmem/heap.h"
#include "hakmem/segment.h"
#include "hakmem/size_class.h"
#include "hakmem/slab.h"

HAK_EXTERN_C_BEGIN

// The current slab of n's class has no free block: refills it (creating the thread's heap on its
// first call). Sets errno on failure. REQUIRES: n <= HAK_TINY_MAX.
HAK_NOINLINE void* hak_tiny_alloc_slow(size_t n);

// REQUIRES: n <= HAK_TINY_MAX.
HAK_INLINE void* hak_tiny_alloc(size_t n) {
  hak_slab_t* s = hak_tls.direct[hak_tiny_index(n)];
  hak_block_t* b = s->free;
  if (HAK_UNLIKELY(b == NULL)) return hak_tiny_alloc_slow(n);
  s->free = hak_block_pop(b, HAK_SMALL_SLAB_SHIFT);
  hak_block_handed_out(b);
  return b;
}

// Frees p if it lies in a small segment owned by this thread; returns 0 (nothing done) otherwise,
// with *map_word set for the caller's slow path. A block of its class's current slab goes back
// onto the slab's free list, for the next malloc (slab.h). Aborts naming the error for an interior,
// misaligned or never handed out pointer, and for a block free already (slab.h: the block test
// and the free mark).
HAK_INLINE int hak_tiny_free(void* p, uintptr_t* map_word) {
  uintptr_t word = hak_map_word(p);
  if (HAK_LIKELY(word == hak_thread_id())) {
    hak_slab_t* s = hak_small_slab_of(p);
    if (HAK_UNLIKELY(!hak_slab_holds(s, p, HAK_SMALL_SLAB_SHIFT))) {
      hak_slab_reject_free(p, HAK_SMALL_SLAB_SHIFT);
      return 1;
    }
    if (s->list == HAK_SLAB_CURRENT) {
      hak_slab_free_current(s, p, HAK_SMALL_SLAB_SHIFT);
      return 1;
    }
    if (HAK_UNLIKELY(hak_slab_free_local(s, p, HAK_SMALL_SLAB_SHIFT))) hak_heap_tiny_slab_emptied(p);
    return 1;
  }
  *map_word = word;
  return 0;
}

HAK_EXTERN_C_END

#endif  // HAKMEM_TINY_TINY_H
