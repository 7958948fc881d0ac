// thread_churn: --rounds (default 10000) rounds of starting --threads (default 2) short-lived
// threads and joining them. Each thread first frees the --keep (default 32) blocks that the
// thread with its index left in the previous round, then does --ops (default 2000) malloc/free
// steps on a 64-slot working set of random sizes in [--min, --max] (default 16..1024 B), and
// exits leaving --keep new blocks behind for the next round, so thread exit leaves memory in use.
#include <pthread.h>

#include "bench/bench_util.h"

#define LOCAL 64

typedef struct worker_s {
  void** left;  // this index's --keep blocks, handed from round to round
  uint64_t seed;
} worker_t;

static long ops, keep, min_size, max_size;

static void* worker(void* arg) {
  worker_t* w = (worker_t*)arg;
  // A local copy: the workers' records share a cache line, which a store per step would bounce
  // between their threads (the harness's cost, not the allocator's).
  uint64_t seed = w->seed;
  uint64_t span = (uint64_t)(max_size - min_size + 1);
  for (long k = 0; k < keep; k++) free(w->left[k]);
  void* a[LOCAL] = {0};
  for (long i = 0; i < ops; i++) {
    uint64_t r = bench_rand(&seed);
    size_t k = (size_t)(r % LOCAL);
    free(a[k]);
    char* p = malloc((size_t)min_size + (size_t)((r >> 32) % span));
    if (p == NULL) abort();
    p[0] = (char)i;
    a[k] = p;
  }
  for (int k = 0; k < LOCAL; k++) free(a[k]);
  for (long k = 0; k < keep; k++) {
    char* p = malloc((size_t)min_size + (size_t)(bench_rand(&seed) % span));
    if (p == NULL) abort();
    p[0] = (char)k;
    w->left[k] = p;
  }
  return NULL;
}

int main(int argc, char** argv) {
  long rounds = bench_arg(argc, argv, "rounds", 10000);
  long threads = bench_arg(argc, argv, "threads", 2);
  ops = bench_arg(argc, argv, "ops", 2000);
  keep = bench_arg(argc, argv, "keep", 32);
  min_size = bench_arg(argc, argv, "min", 16);
  max_size = bench_arg(argc, argv, "max", 1024);
  if (rounds < 0 || threads <= 0 || ops < 0 || keep < 0 || min_size <= 0 || max_size < min_size) {
    return 2;
  }
  pthread_t* tids = calloc((size_t)threads, sizeof *tids);
  worker_t* w = calloc((size_t)threads, sizeof *w);
  if (tids == NULL || w == NULL) abort();
  for (long t = 0; t < threads; t++) {
    w[t].left = calloc((size_t)keep + 1, sizeof(void*));
    if (w[t].left == NULL) abort();
  }
  double start = bench_now();
  for (long round = 0; round < rounds; round++) {
    for (long t = 0; t < threads; t++) {
      w[t].seed = 0x9E3779B97F4A7C15ull * (uint64_t)(round * threads + t + 1);
      if (pthread_create(&tids[t], NULL, worker, &w[t]) != 0) abort();
    }
    for (long t = 0; t < threads; t++) pthread_join(tids[t], NULL);
  }
  double seconds = bench_now() - start;
  for (long t = 0; t < threads; t++) {
    for (long k = 0; k < keep; k++) free(w[t].left[k]);
    free(w[t].left);
  }
  free(w);
  free(tids);
  bench_report("thread_churn", seconds, (uint64_t)(rounds * threads * ops));
  return 0;
}
