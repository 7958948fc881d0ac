// purger: the background thread that returns freed memory to the OS after the purge delay when
// the program makes no call that would (a program that frees and then sleeps, or then only hits
// the fast paths).
//
// Owns: the purger's thread and its lifetime. May use: base, config, os, purge_hint, segment,
// huge, pool/large, heap (hak_heap_take_idle_batches only). Must not touch: thread heaps (their
// dirty slabs are reached through the segment box, under each segment's slab lock; what a heap
// caches is its own thread's, but for the remote batches of a thread that stopped, which the
// heap box hands over under the protocol of remote.h).
//
// The thread exists only while freed memory waits for the delay: the first such free (noted
// through purge_hint) starts it at the next safe point, and it ends once nothing waits. A
// program that never frees, or sets HAKMEM_PURGER=0, never has it.
#ifndef HAKMEM_PURGER_H
#define HAKMEM_PURGER_H

#include "hakmem/base.h"

HAK_EXTERN_C_BEGIN

// Nonzero while the thread runs (for tests and stats).
int hak_purger_running(void);

// Fork child: it has no purger; one starts at its next safe point if memory waits (not in
// sanitizer builds, whose malloc a fork child of a threaded process cannot rely on).
void hak_purger_fork_child(void);

HAK_EXTERN_C_END

#endif  // HAKMEM_PURGER_H
