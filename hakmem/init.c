#include "hakmem/init.h"

#include <pthread.h>
#include <stdatomic.h>

#include "hakmem/config.h"
#include "hakmem/crash.h"
#include "hakmem/huge.h"
#include "hakmem/os/os.h"
#include "hakmem/pool/large.h"
#include "hakmem/purger.h"
#include "hakmem/segment.h"

static pthread_key_t exit_key;
// pthread_once: glibc restarts it in a fork child whose parent forked mid-initialisation (a flag
// of our own would leave the child waiting for a thread it does not have).
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static _Atomic int initialised;        // the one-load fast path
static HAK_TLS int initializing_here;  // this thread runs process_init
static HAK_TLS int thread_exiting;     // its exit key's destructor has run

// The process's lock order, outermost first: the adaptive cache engine's window lock (its box
// registers its own fork handlers after these, so they run first), large pool, huge cache, the
// heap box's takeover lock (remote batches of stopped threads), heap registry, segment lists, and
// under them a segment's slab lock (a spin lock). No code path takes
// them in another order; the fork handlers take them all in this one, so a child never inherits
// one held by a thread it does not have. The purger takes no lock of its own.
static void fork_prepare(void) {
  hak_large_fork_prepare();
  hak_huge_fork_prepare();
  hak_heap_fork_prepare();
  hak_segment_fork_prepare();
}

static void fork_parent(void) {
  hak_segment_fork_parent();
  hak_heap_fork_parent();
  hak_huge_fork_parent();
  hak_large_fork_parent();
}

// Only the forking thread exists in the child: the segment lists first, then every other heap
// gives its segments up for adoption. Each box unlocks its lock there rather than initialising
// it again: the child's one thread is the one that took it, and ThreadSanitizer still counts a
// re-initialised mutex as held (a thread the child starts then reports a double lock).
static void fork_child(void) {
  hak_segment_fork_child();
  hak_heap_fork_child();
  hak_huge_fork_child();
  hak_large_fork_child();
  hak_purger_fork_child();
}

// hakmem's layout assumes HAK_PAGE_SIZE pages; on a kernel with other pages its purges and guard
// pages would fail or hit the wrong memory. It says so in one line and sends every request to
// the next allocator (wrap.h), whose blocks free, realloc and malloc_usable_size then take.
static void refuse_other_page_sizes(void) {
  size_t page = hak_os.page_size();
  if (page == HAK_PAGE_SIZE) return;
  hak_warn("hakmem: the kernel's pages are %zu bytes, hakmem needs %zu-byte pages: every "
           "allocation goes to the next allocator", page, HAK_PAGE_SIZE);
  hak_config.wrap_tiny = hak_config.wrap_mid = hak_config.wrap_large = hak_config.wrap_huge = 0;
}

static void thread_exit(void* heap) {
  thread_exiting = 1;
  hak_heap_thread_exit(heap);
}

static void process_init(void) {
  initializing_here = 1;
  hak_config_init_once();
  refuse_other_page_sizes();
#if HAKMEM_SECURE
  hak_block_keys[0] = (uintptr_t)hak_os_random();
  hak_block_keys[1] = (uintptr_t)hak_os_random();
#endif
  hak_crash_install();
  // A child of a fork during this function runs it again: what was done already is not redone
  // (handlers registered twice would take every lock twice at the next fork).
  static int key_created, handlers_registered;
  if (!key_created) key_created = pthread_key_create(&exit_key, thread_exit) == 0;
  // Before any other thread may take one of the locks: a fork while one holds it, with no
  // handler to take it first, would leave it locked forever in the child.
  if (!handlers_registered) {
    handlers_registered = pthread_atfork(fork_prepare, fork_parent, fork_child) == 0;
  }
  initializing_here = 0;
  atomic_store_explicit(&initialised, 1, memory_order_release);
}

void hak_init(void) {
  if (atomic_load_explicit(&initialised, memory_order_acquire)) return;
  // pthread_atfork may allocate: the initialising thread then comes back here, and finds
  // everything that allocation needs done already.
  if (initializing_here) return;
  pthread_once(&init_once, process_init);
}

hak_heap_t* hak_init_thread(void) {
  hak_heap_t* heap = hak_tls.heap;
  if (heap != HAK_EMPTY_HEAP) return heap;
  hak_init();
  heap = hak_heap_create();
  // After the heap is installed: pthread_setspecific may allocate, and must find it ready.
  if (heap != NULL) pthread_setspecific(exit_key, heap);
  return heap;
}

hak_heap_t* hak_init_freeing_thread(void) {
  hak_heap_t* heap = thread_exiting ? NULL : hak_init_thread();
  return heap ? heap : HAK_EMPTY_HEAP;
}
