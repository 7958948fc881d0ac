#include "hakmem/purger.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "hakmem/config.h"
#include "hakmem/heap.h"
#include "hakmem/huge.h"
#include "hakmem/os/os.h"
#include "hakmem/pool/large.h"
#include "hakmem/purge_hint.h"
#include "hakmem/segment.h"

// 1 while a thread runs or is being started. Set by whoever starts it (a compare-and-swap, no lock:
// pthread_create allocates, and an allocation may take any of the allocator's locks), cleared
// by the thread when it ends.
static int running;  // __atomic

int hak_purger_running(void) { return __atomic_load_n(&running, __ATOMIC_ACQUIRE); }

// One pass over every box that keeps freed memory committed; returns when what still waits is
// next due (0: nothing waits).
static uint64_t purge_pass(uint64_t now) {
  uint64_t due = hak_segment_purge_due(now, 0);
  due = hak_purge_earlier(due, hak_large_purge_due(now));
  due = hak_purge_earlier(due, hak_huge_purge_due(now));
  // Batches of a thread that stopped go at the first pass that finds it did nothing since the one
  // before: between half a delay and a delay after its last free.
  if (hak_heap_take_idle_batches()) due = hak_purge_earlier(due, now + hak_purge_interval_ms());
  return due;
}

// Sanitizer builds: the program's malloc is the sanitizer's, which a fork child of a threaded
// process may find locked by a thread it does not have; starting a thread allocates through it
// (seen: fork_stress's child hung in ASan's calloc under pthread_attr_setaffinity_np). Their
// fork children purge from their own slow paths only.
#define SANITIZER_RUNTIME (HAK_ASAN || HAK_TSAN)
static pid_t loaded_pid;  // of the process this library was loaded into (a constructor)

// Nonzero in a fork child. By pid rather than from a fork handler: a hung child under ASan had
// not seen the handler's flag set.
static int in_fork_child(void) { return getpid() != loaded_pid; }

static int take_running(void) {
  int expected = 0;
  return __atomic_compare_exchange_n(&running, &expected, 1, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_RELAXED);
}

static void* purger_main(void* arg) {
  (void)arg;
  pthread_setname_np(pthread_self(), "hakmem-purge");
  for (;;) {
    // Cleared before the pass: memory freed from here on is seen by this pass or noted again.
    __atomic_store_n(&hak_purge_waiting, 0, __ATOMIC_RELAXED);
    uint64_t now = hak_os_now_ms();
    uint64_t due = purge_pass(now);
    if (due == 0) {
      __atomic_store_n(&running, 0, __ATOMIC_RELEASE);
      // Memory noted since the pass, with no new thread started for it: this one goes on.
      if (!__atomic_load_n(&hak_purge_waiting, __ATOMIC_ACQUIRE) || !take_running()) return NULL;
    }
    // Until the next due time; memory freed meanwhile is due a whole delay later, so one delay
    // is the longest sleep.
    uint64_t delay = (uint64_t)hak_config.purge_delay_ms;
    uint64_t ms = due > now ? due - now : 1;
    if (ms > delay) ms = delay ? delay : 1;
    struct timespec sleep = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&sleep, NULL);
  }
}

static int create_thread(int pin) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 256 * 1024);  // it calls nothing deep (sanitizers pad frames)
  // On the CPU of the thread that freed: a CPU where this process's memory map was never loaded
  // is spared the TLB shootdowns of its unmaps, which a sleeping thread elsewhere would cost.
  int cpu = pin ? sched_getcpu() : -1;
  if (cpu >= 0 && cpu < CPU_SETSIZE) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    pthread_attr_setaffinity_np(&attr, sizeof one, &one);
  }
  pthread_t thread;
  int rc = pthread_create(&thread, &attr, purger_main, NULL);
  pthread_attr_destroy(&attr);
  return rc;
}

// At a safe point, with memory noted as waiting: starts the thread unless one runs (a running one
// clears the note on its next pass).
static void start(void) {
  if (!hak_config.purger || (SANITIZER_RUNTIME && in_fork_child())) {
    __atomic_store_n(&hak_purge_waiting, 0, __ATOMIC_RELAXED);
    return;
  }
  if (__atomic_load_n(&running, __ATOMIC_ACQUIRE) || !take_running()) return;
  // Signals meant for the program go to its own threads, never to this one.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  // Unpinned if the affinity is refused (a restricted CPU set, an emulator).
  if (create_thread(1) != 0 && create_thread(0) != 0) {
    __atomic_store_n(&hak_purge_waiting, 0, __ATOMIC_RELAXED);  // tried again at the next note
    __atomic_store_n(&running, 0, __ATOMIC_RELEASE);
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
}

void hak_purger_fork_child(void) {
  if (__atomic_load_n(&running, __ATOMIC_RELAXED)) {
    __atomic_store_n(&running, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&hak_purge_waiting, 1, __ATOMIC_RELAXED);
  }
}

__attribute__((constructor)) static void arm_starter(void) {
  loaded_pid = getpid();
  __atomic_store_n(&hak_purge_starter, start, __ATOMIC_RELAXED);
}
