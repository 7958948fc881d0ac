// ace/engine: the adaptive cache engine's windows and background thread. Every
// HAKMEM_ACE_INTERVAL_MS a window observes the heaps (hak_heap_observe), the large pool and RSS,
// lets the learner decide, places the extra class when the learner asks for it, and publishes
// the policy when it changed; heaps take it up on their slow paths.
//
// Owns: the thread, its learner and the previous observation. May use: base, config, os, heap,
// pool/large, ace/{learner, policy}.
//
// Who runs the windows: once the process has made a few hundred slow-path allocations (never
// during the first ones of a program, which may run inside the dynamic loader or libc's own
// start-up), the slow path (hak_heap_start_hook) runs them itself, one per interval, while the
// program has one thread; a second thread in a process of one makes the kernel's TLB flushes,
// so every purge, dearer for the program's own thread. Once the program has more threads, a
// thread of the engine's own runs them. None with HAKMEM_ACE=0. A fork child has no engine
// thread: it starts the same lazy way. Learning and publication run under
// a lock the fork handlers take, so a child never inherits a policy half written. At exit the
// thread is simply not joined: it holds nothing an exiting process needs.
#ifndef HAKMEM_ACE_ENGINE_H
#define HAKMEM_ACE_ENGINE_H

#include <stdint.h>

#include "hakmem/ace/policy.h"
#include "hakmem/base.h"

HAK_EXTERN_C_BEGIN

// Starts the thread now if HAKMEM_ACE allows and it is not running; returns 1 if it runs.
int hak_ace_engine_start(void);
// Stops the windows: the thread (waiting for it, at most a few intervals) and those of slow
// paths. They start again only through hak_ace_engine_start.
void hak_ace_engine_stop(void);

void hak_ace_engine_status(hak_ace_engine_status_t* out);

HAK_EXTERN_C_END

#endif  // HAKMEM_ACE_ENGINE_H
