#include "hakmem/ace/engine.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "hakmem/ace/learner.h"
#include "hakmem/ace/policy.h"
#include "hakmem/config.h"
#include "hakmem/heap.h"
#include "hakmem/init.h"
#include "hakmem/os/os.h"
#include "hakmem/pool/large.h"
#include "hakmem/size_class.h"

HAK_STATIC_ASSERT(HAK_ACE_SIZE_BUCKETS == HAK_MID_SIZE_BUCKETS, "one histogram layout");
HAK_STATIC_ASSERT(HAK_ACE_MID_CLASSES == HAK_MID_CLASSES, "one mid class numbering");

// Calls of the hook (one per 64 slow-path allocations of a thread) before the engine starts:
// short-lived programs never start it, and none starts inside its first allocations.
#define START_AFTER_HOOK_CALLS 4

enum { STOPPED, RUNNING, STOPPING };

// Three locks. engine_lock guards the learner and publication; it is a leaf: nothing else is
// locked while it is held. window_lock makes one window at a time (the thread's, or a slow
// path's while the program has one thread) and guards the learner's first set-up; observation
// takes the heap registry's and the large pool's locks under it, so it comes first in the
// process's lock order: the fork handlers take it before init's handlers take the others (this
// box registers after process init, and prepare handlers run in reverse order), then
// engine_lock, so a child never inherits a window or a policy half made. control_lock serialises
// start and stop, which create and join the thread (and may allocate). A fork child makes all
// three anew. (No pthread_once around the set-up: ThreadSanitizer's does not restart in a fork
// child one that another thread was running, and the child would wait for it forever.)
static pthread_mutex_t engine_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t window_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t control_lock = PTHREAD_MUTEX_INITIALIZER;
static int state;             // __atomic; changed under control_lock
static pthread_t thread;
static pthread_once_t fork_handlers_once = PTHREAD_ONCE_INIT;
static int learner_ready;  // __atomic; set under window_lock

static hak_ace_learner_t learner;  // under engine_lock

// Under window_lock (and learner_setup's, before any window).
static hak_heap_observation_t observed[2];
static unsigned last;  // index of the previous observation in observed[]
static hak_large_totals_t large_observed;
static uint64_t rss_observed;
static hak_ace_window_t window;
static uint64_t window_start_ms;  // __atomic: the slow path reads it without window_lock
static uint64_t backoff = 1;       // intervals between windows

// RSS only scores rounding limit trials: without a search (the default) a window does not read
// /proc.
// (Whether there is one is set before the first window and never changes.)
static uint64_t rss_bytes(void) {
  return hak_ace_learner_scores_rss(&learner) ? hak_os_rss_bytes() : 0;
}

static uint64_t grown(uint64_t now, uint64_t before) { return now > before ? now - before : 0; }

// Blocks flushed from a mid cache are left out: releasing an idle class flushes its cache, and
// must not make it look used again.
static int counters_moved(const hak_class_counters_t* now, const hak_class_counters_t* before) {
  return now->refills != before->refills || now->fresh_blocks != before->fresh_blocks ||
         now->remote_frees != before->remote_frees ||
         now->cache_overflows != before->cache_overflows || now->cache_misses != before->cache_misses;
}

static void make_window(hak_ace_window_t* w, const hak_heap_observation_t* now,
                        const hak_heap_observation_t* before, const hak_large_totals_t* large,
                        uint64_t rss) {
  memset(w, 0, sizeof *w);
  for (unsigned c = 0; c < HAK_CLASS_COUNT; c++) {
    w->active[c] = (uint8_t)counters_moved(&now->counters[c], &before->counters[c]);
    w->fresh_blocks += grown(now->counters[c].fresh_blocks, before->counters[c].fresh_blocks);
  }
  for (unsigned i = 0; i < HAK_MID_CLASSES; i++) {
    const hak_class_counters_t* n = &now->counters[HAK_TINY_CLASSES + i];
    const hak_class_counters_t* b = &before->counters[HAK_TINY_CLASSES + i];
    w->flushed[i] = grown(n->cache_flushed, b->cache_flushed);
    w->misses[i] = grown(n->cache_misses, b->cache_misses);
    uint64_t pops = grown(now->cache_pops[i], before->cache_pops[i]);
    w->hits[i] = pops > w->flushed[i] ? pops - w->flushed[i] : 0;
    if (w->hits[i] != 0 || now->cache_pushes[i] != before->cache_pushes[i]) {
      w->active[HAK_TINY_CLASSES + i] = 1;
    }
  }
  for (unsigned i = 0; i < HAK_MID_SIZE_BUCKETS; i++) {
    w->mid_sizes[i] = grown(now->mid_sizes[i], before->mid_sizes[i]);
  }
  w->large_pages = grown(large->pages_handed, large_observed.pages_handed);
  w->large_requested_pages = grown(large->pages_requested, large_observed.pages_requested);
  w->large_clean_pages = grown(large->clean_pages_handed, large_observed.clean_pages_handed);
  w->rss_bytes = rss;
  w->rss_growth = (int64_t)rss - (int64_t)rss_observed;
}

static void log_decision(void* arg, const char* line) {
  (void)arg;
  hak_warn("hakmem: ace: %s", line);
}

// One window: observe (taking the heap registry's and the large pool's locks), learn and publish
// (under engine_lock alone). The extra class is placed between the two, under the registry lock.
// Returns nonzero if the policy changed. Under window_lock.
static int run_window(void) {
  unsigned next = last ^ 1;
  hak_heap_observe(&observed[next]);
  hak_large_totals_t large;
  hak_large_totals(&large);
  uint64_t rss = rss_bytes();
  make_window(&window, &observed[next], &observed[last], &large, rss);
  uint64_t now = hak_os_now_ms();
  window.ms = (uint32_t)(now - __atomic_load_n(&window_start_ms, __ATOMIC_RELAXED));
  __atomic_store_n(&window_start_ms, now, __ATOMIC_RELAXED);
  last = next;
  large_observed = large;
  rss_observed = rss;
  pthread_mutex_lock(&engine_lock);
  int changed = hak_ace_learner_step(&learner, &window, hak_config.ace_log ? log_decision : NULL, NULL);
  uint32_t extra = learner.policy.extra_class_size;
  pthread_mutex_unlock(&engine_lock);
  if (!changed) return 0;
  int misplaced = extra != 0 && hak_class_size(HAK_EXTRA_CLASS) != extra &&
                  !hak_size_class_place_extra(extra);
  pthread_mutex_lock(&engine_lock);
  // Placed already, at another size (hak_size_class_place_extra is once per process): that one
  // stands.
  if (misplaced) hak_ace_learner_extra_placed(&learner, hak_class_size(HAK_EXTRA_CLASS));
  hak_ace_policy_publish(&learner.policy);
  pthread_mutex_unlock(&engine_lock);
  return 1;
}

// While windows change nothing the engine wakes less often, up to this many intervals apart; a
// decision brings it back to every interval.
#define MAX_BACKOFF 4

// The next window is due after this many milliseconds.
static uint64_t window_interval_ms(void) {
  return (uint64_t)hak_config.ace_interval_ms * __atomic_load_n(&backoff, __ATOMIC_RELAXED);
}

// Runs a window if no other is running. Returns 0 if it could not.
static int try_window(void) {
  if (pthread_mutex_trylock(&window_lock) != 0) return 0;
  uint64_t next = run_window() ? 1 : backoff < MAX_BACKOFF ? backoff * 2 : MAX_BACKOFF;
  __atomic_store_n(&backoff, next, __ATOMIC_RELAXED);
  pthread_mutex_unlock(&window_lock);
  return 1;
}

static void* engine_main(void* arg) {
  (void)arg;
  pthread_setname_np(pthread_self(), "hakmem-ace");  // for top -H, ps -L and debuggers
  while (__atomic_load_n(&state, __ATOMIC_ACQUIRE) == RUNNING) {
    uint64_t ms = window_interval_ms();
    struct timespec sleep = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&sleep, NULL);
    if (__atomic_load_n(&state, __ATOMIC_ACQUIRE) != RUNNING) break;
    try_window();
  }
  return NULL;
}

static void start_hook(void);
// Per thread: a shared counter would be an atomic add.
static HAK_TLS unsigned hook_calls;
static HAK_TLS int in_hook;  // what the hook calls may allocate, and come back here

static void fork_prepare(void) {
  pthread_mutex_lock(&window_lock);
  pthread_mutex_lock(&engine_lock);
}

static void fork_parent(void) {
  pthread_mutex_unlock(&engine_lock);
  pthread_mutex_unlock(&window_lock);
}

// The child has no engine thread: it starts one of its own the lazy way, learning on from the
// parent's state (whole: the parent's thread was between windows).
static void fork_child(void) {
  pthread_mutex_init(&engine_lock, NULL);
  pthread_mutex_init(&window_lock, NULL);
  pthread_mutex_init(&control_lock, NULL);
  if (__atomic_load_n(&state, __ATOMIC_RELAXED) != STOPPED) {
    __atomic_store_n(&state, STOPPED, __ATOMIC_RELAXED);
    hook_calls = 0;  // the forking thread's: the child's only one
    __atomic_store_n(&hak_heap_start_hook, start_hook, __ATOMIC_RELAXED);
  }
}

static void register_fork_handlers(void) {
  pthread_atfork(fork_prepare, fork_parent, fork_child);
}

static void learner_setup(void) {
  hak_ace_settings_t s = {
      .idle_ms = (uint32_t)hak_config.ace_idle_ms,
      .hit_low = (double)hak_config.ace_hit_low_pct / 100.0,
      .hit_high = (double)hak_config.ace_hit_high_pct / 100.0,
      .mid_cache_kb = (uint32_t)hak_config.mid_cache_kb,
      .mid_round_pct = (uint32_t)hak_config.mid_round_pct,
      .large_round_pct = (uint32_t)hak_config.large_round_pct,
      .mid_round_max_pct = (uint32_t)hak_config.ace_mid_round_max_pct,
      .large_round_max_pct = (uint32_t)hak_config.ace_large_round_max_pct,
      .extra_class_share = (double)hak_config.ace_extra_class_pct / 100.0,
  };
  hak_ace_learner_init(&learner, &s);
  hak_heap_observe(&observed[last]);
  hak_large_totals(&large_observed);
  rss_observed = rss_bytes();
  __atomic_store_n(&window_start_ms, hak_os_now_ms(), __ATOMIC_RELAXED);
}

// Once: the fork handlers (after the process's own, before any window publishes), then the
// learner.
static void setup(void) {
  if (__atomic_load_n(&learner_ready, __ATOMIC_ACQUIRE)) return;
  hak_init();
  pthread_once(&fork_handlers_once, register_fork_handlers);
  pthread_mutex_lock(&window_lock);
  if (!__atomic_load_n(&learner_ready, __ATOMIC_RELAXED)) {
    learner_setup();
    __atomic_store_n(&learner_ready, 1, __ATOMIC_RELEASE);
  }
  pthread_mutex_unlock(&window_lock);
}

// A second thread costs a program of one thread more than its windows do: with two threads in
// the process, the kernel's TLB flushes for its purges and unmaps take the slower multi-CPU
// path (measured: `fragmentation` 4-12% slower with an extra thread that only sleeps). So while
// the program has one thread, its own slow path runs the windows, at most one per interval; once
// it has more, the engine's thread takes over.
static void start_hook(void) {
  if (++hook_calls < START_AFTER_HOOK_CALLS || in_hook) return;
  if (!hak_config.ace) {
    __atomic_store_n(&hak_heap_start_hook, NULL, __ATOMIC_RELAXED);
    return;
  }
  in_hook = 1;
  if (hak_heap_live_count() > 1) {
    hak_ace_engine_start();  // clears the hook
  } else {
    setup();
    uint64_t now = hak_os_now_ms();
    uint64_t since = now - __atomic_load_n(&window_start_ms, __ATOMIC_RELAXED);
    if (since >= window_interval_ms()) try_window();
  }
  in_hook = 0;
}

int hak_ace_engine_start(void) {
  hak_config_init_once();
  if (!hak_config.ace) return 0;
  setup();
  __atomic_store_n(&hak_heap_start_hook, NULL, __ATOMIC_RELAXED);  // the thread takes over
  pthread_mutex_lock(&control_lock);
  if (__atomic_load_n(&state, __ATOMIC_RELAXED) == STOPPED) {
    // A stopped stretch is no one's quiet time.
    __atomic_store_n(&window_start_ms, hak_os_now_ms(), __ATOMIC_RELAXED);
    __atomic_store_n(&state, RUNNING, __ATOMIC_RELEASE);
    // Signals meant for the program go to its own threads, never to this one.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    if (pthread_create(&thread, NULL, engine_main, NULL) != 0) {
      __atomic_store_n(&state, STOPPED, __ATOMIC_RELEASE);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
  }
  int running = __atomic_load_n(&state, __ATOMIC_RELAXED) == RUNNING;
  pthread_mutex_unlock(&control_lock);
  return running;
}

void hak_ace_engine_stop(void) {
  __atomic_store_n(&hak_heap_start_hook, NULL, __ATOMIC_RELAXED);  // no windows from slow paths
  pthread_mutex_lock(&control_lock);
  if (__atomic_load_n(&state, __ATOMIC_RELAXED) == RUNNING) {
    __atomic_store_n(&state, STOPPING, __ATOMIC_RELEASE);
    pthread_join(thread, NULL);
    __atomic_store_n(&state, STOPPED, __ATOMIC_RELEASE);
  }
  pthread_mutex_unlock(&control_lock);
}

void hak_ace_engine_status(hak_ace_engine_status_t* out) {
  pthread_mutex_lock(&engine_lock);
  out->running = __atomic_load_n(&state, __ATOMIC_ACQUIRE) == RUNNING;
  out->windows = learner.windows;
  out->decisions = learner.decisions;
  out->extra_class_size = learner.policy.extra_class_size;
  pthread_mutex_unlock(&engine_lock);
}

__attribute__((constructor)) static void arm_start_hook(void) {
  hak_ace_engine_status_reader = hak_ace_engine_status;
  __atomic_store_n(&hak_heap_start_hook, start_hook, __ATOMIC_RELAXED);
}
