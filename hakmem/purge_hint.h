// purge_hint: how the boxes that keep freed memory committed for the purge delay (segments, the
// large pool, the huge cache) ask for the background purger, without knowing it.
//
// Owns: one flag and the purger's start function. May use: base. A box notes memory waiting to
// be purged (hak_purge_note: one load, and a store the first time) wherever it is, under its
// locks too; the purger is started only at a safe point (hak_purge_safe_point), where no lock
// is held and the calling thread's heap is consistent, because starting a thread allocates.
#ifndef HAKMEM_PURGE_HINT_H
#define HAKMEM_PURGE_HINT_H

#include <stdint.h>

#include "hakmem/base.h"

HAK_EXTERN_C_BEGIN

// Nonzero: memory was freed that waits for the purge delay, and the purger may not know.
// Relaxed __atomic access.
extern int hak_purge_waiting;

// Set by the purger's box (a constructor): starts its thread unless it runs. NULL without it.
extern void (*hak_purge_starter)(void);

HAK_INLINE void hak_purge_note(void) {
  if (!__atomic_load_n(&hak_purge_waiting, __ATOMIC_RELAXED)) {
    __atomic_store_n(&hak_purge_waiting, 1, __ATOMIC_RELAXED);
  }
}

// The earlier of two due times (hak_os_now_ms time), where 0 is none: how the boxes tell the
// purger when what still waits is next due.
HAK_INLINE uint64_t hak_purge_earlier(uint64_t a, uint64_t b) {
  return a == 0 || (b != 0 && b < a) ? b : a;
}

HAK_NOINLINE void hak_purge_start(void);

HAK_INLINE void hak_purge_safe_point(void) {
  if (HAK_UNLIKELY(__atomic_load_n(&hak_purge_waiting, __ATOMIC_RELAXED))) hak_purge_start();
}

HAK_EXTERN_C_END

#endif  // HAKMEM_PURGE_HINT_H
