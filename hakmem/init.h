// init: process initialisation, a thread's heap on its first slow path, and the fork handlers.
//
// Owns: the order in which process state is set up (configuration, secure-build keys, the crash
// handler, the thread-exit key) and the one place where the process's lock order is written (the
// fork handlers). May use: config, crash, heap, segment, huge, pool/large. Must not touch: the
// fast paths and the slow paths of tiny/ and pool/mid, which call in here for their heap.
#ifndef HAKMEM_INIT_H
#define HAKMEM_INIT_H

#include <errno.h>
#include <stdint.h>

#include "hakmem/base.h"
#include "hakmem/heap.h"

HAK_EXTERN_C_BEGIN

// Process-wide initialisation; idempotent, safe from any thread and from inside itself (what it
// calls may allocate).
void hak_init(void);

// The calling thread's heap, created (after hak_init) on its first call; NULL if the OS refuses
// memory.
HAK_NOINLINE hak_heap_t* hak_init_thread(void);

// The heap a free on the calling thread batches its cross-thread blocks in (remote.h): the
// thread's heap, created on its first call unless the thread is exiting (its heap was handed back
// already, and a new one might never be); HAK_EMPTY_HEAP then, or if the OS refuses memory.
HAK_NOINLINE hak_heap_t* hak_init_freeing_thread(void);

HAK_INLINE hak_heap_t* hak_thread_heap(void) {
  hak_heap_t* heap = hak_tls.heap;
  return HAK_LIKELY(heap != HAK_EMPTY_HEAP) ? heap : hak_init_thread();
}

// The start of every allocation slow path: the thread's heap, entered (hak_heap_slow_path_enter,
// its count in *calls); NULL with errno = ENOMEM if it cannot have one.
HAK_INLINE hak_heap_t* hak_slow_path_heap(uint32_t* calls) {
  hak_heap_t* heap = hak_thread_heap();
  if (heap == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  *calls = hak_heap_slow_path_enter(heap);
  return heap;
}

HAK_EXTERN_C_END

#endif  // HAKMEM_INIT_H
