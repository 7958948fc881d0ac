// larson-style server simulation: --threads workers each keep --slots blocks of random size in
// [--min, --max]; every step replaces a random block. After each round of --ops steps the workers
// pass their block arrays round-robin to the next worker, so most frees are cross-thread.
#include <pthread.h>

#include "bench/bench_util.h"

typedef struct worker_s {
  long index;
  uint64_t seed;
} worker_t;

static long threads, slots, ops, rounds, min_size, max_size;
static void*** arrays;  // arrays[t] = the block array worker t works on this round
static pthread_barrier_t barrier;

static void* run(void* arg) {
  worker_t* w = (worker_t*)arg;
  // A local copy: the workers' records share a cache line, which a store per step would bounce
  // between their threads (the harness's cost, not the allocator's).
  uint64_t seed = w->seed;
  uint64_t span = (uint64_t)(max_size - min_size + 1);
  for (long round = 0; round < rounds; round++) {
    void** a = arrays[(w->index + round) % threads];
    for (long i = 0; i < ops; i++) {
      uint64_t r = bench_rand(&seed);
      size_t k = (size_t)(r % (uint64_t)slots);
      free(a[k]);
      char* p = malloc((size_t)min_size + (size_t)((r >> 32) % span));
      if (p == NULL) abort();
      p[0] = 1;
      a[k] = p;
    }
    pthread_barrier_wait(&barrier);
  }
  return NULL;
}

int main(int argc, char** argv) {
  threads = bench_arg(argc, argv, "threads", 2);
  slots = bench_arg(argc, argv, "slots", 1000);
  ops = bench_arg(argc, argv, "ops", 20000);
  rounds = bench_arg(argc, argv, "rounds", 200);
  min_size = bench_arg(argc, argv, "min", 16);
  max_size = bench_arg(argc, argv, "max", 1024);
  if (threads <= 0 || slots <= 0 || max_size < min_size || min_size <= 0) return 2;
  arrays = calloc((size_t)threads, sizeof *arrays);
  for (long t = 0; t < threads; t++) arrays[t] = calloc((size_t)slots, sizeof(void*));
  pthread_barrier_init(&barrier, NULL, (unsigned)threads);
  pthread_t* tids = calloc((size_t)threads, sizeof *tids);
  worker_t* workers = calloc((size_t)threads, sizeof *workers);
  double start = bench_now();
  for (long t = 0; t < threads; t++) {
    workers[t].index = t;
    workers[t].seed = 0x9E3779B97F4A7C15ull * (uint64_t)(t + 1);
    pthread_create(&tids[t], NULL, run, &workers[t]);
  }
  for (long t = 0; t < threads; t++) pthread_join(tids[t], NULL);
  double seconds = bench_now() - start;
  for (long t = 0; t < threads; t++) {
    for (long k = 0; k < slots; k++) free(arrays[t][k]);
    free(arrays[t]);
  }
  bench_report("larson", seconds, (uint64_t)(threads * rounds * ops));
  return 0;
}
