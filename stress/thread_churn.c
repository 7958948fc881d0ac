// thread_churn: generations of short-lived threads. Each thread frees the blocks a thread of the
// previous generation left behind (remote frees into the segments of a thread that has exited),
// allocates a new set, frees half of it and exits holding the rest: its segments are abandoned
// with live blocks, then adopted by whichever heap needs memory next.
#include <pthread.h>

#include "stress/stress_util.h"

#define BLOCKS 256

typedef void* block_set_t[BLOCKS];

static long threads;
static block_set_t* left;  // left[t]: what slot t of the last generation kept (read-only now)
static block_set_t* kept;  // kept[t]: what slot t of this generation keeps

static void* live_briefly(void* arg) {
  long slot = (long)(intptr_t)arg;
  uint64_t seed = 0x9E3779B97F4A7C15ull * (uint64_t)(slot + 1) ^ (uint64_t)(bench_now() * 1e9);
  void** inherited = left[(slot + 1) % threads];
  for (int i = 0; i < BLOCKS; i++) stress_free(inherited[i]);
  void** mine = kept[slot];
  for (int i = 0; i < BLOCKS; i++) {
    void* p = stress_alloc(stress_size(bench_rand(&seed)));
    if (i % 2) {
      stress_free(p);
      p = NULL;
    }
    mine[i] = p;
  }
  return NULL;
}

int main(int argc, char** argv) {
  threads = bench_arg(argc, argv, "threads", 4);
  if (threads <= 0 || threads > 256) return 2;
  stress_start(argc, argv, 2);
  left = calloc((size_t)threads, sizeof *left);
  kept = calloc((size_t)threads, sizeof *kept);
  pthread_t* tids = calloc((size_t)threads, sizeof *tids);
  while (stress_running()) {
    for (long t = 0; t < threads; t++) pthread_create(&tids[t], NULL, live_briefly, (void*)(intptr_t)t);
    for (long t = 0; t < threads; t++) pthread_join(tids[t], NULL);
    block_set_t* swap = left;
    left = kept;
    kept = swap;  // every block in it was freed by this generation
    atomic_fetch_add(&stress_ops, (unsigned long)(threads * BLOCKS * 2));
  }
  for (long t = 0; t < threads; t++) {
    for (int i = 0; i < BLOCKS; i++) stress_free(left[t][i]);
  }
  free(left);
  free(kept);
  free(tids);
  return stress_finish("thread_churn");
}
