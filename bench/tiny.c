// tiny: --threads independent workers (default 1), each with its own working set of --slots
// small blocks of random size in [--min, --max] (default 16..256 B). Every step frees a random
// slot and refills it with a new block, writing its first byte; all frees are thread-local.
// --iterations steps per thread. The compare runner uses it as tiny_1t and tiny_2t.
#include <pthread.h>

#include "bench/bench_util.h"

static long iterations, slots, min_size, max_size;

static void* worker(void* arg) {
  uint64_t seed = (uint64_t)(uintptr_t)arg;
  void** a = calloc((size_t)slots, sizeof(void*));
  if (a == NULL) abort();
  uint64_t span = (uint64_t)(max_size - min_size + 1);
  for (long i = 0; i < iterations; i++) {
    uint64_t r = bench_rand(&seed);
    size_t k = (size_t)(r % (uint64_t)slots);
    free(a[k]);
    char* p = malloc((size_t)min_size + (size_t)((r >> 32) % span));
    if (p == NULL) abort();
    p[0] = (char)i;
    a[k] = p;
  }
  for (long k = 0; k < slots; k++) free(a[k]);
  free(a);
  return NULL;
}

int main(int argc, char** argv) {
  long threads = bench_arg(argc, argv, "threads", 1);
  iterations = bench_arg(argc, argv, "iterations", 50000000);
  slots = bench_arg(argc, argv, "slots", 256);
  min_size = bench_arg(argc, argv, "min", 16);
  max_size = bench_arg(argc, argv, "max", 256);
  if (threads <= 0 || iterations < 0 || slots <= 0 || min_size <= 0 || max_size < min_size) {
    return 2;
  }
  pthread_t* tids = calloc((size_t)threads, sizeof *tids);
  if (tids == NULL) abort();
  double start = bench_now();
  for (long t = 0; t < threads; t++) {
    void* seed = (void*)(uintptr_t)(0x9E3779B97F4A7C15ull * (uint64_t)(t + 1));
    if (pthread_create(&tids[t], NULL, worker, seed) != 0) abort();
  }
  for (long t = 0; t < threads; t++) pthread_join(tids[t], NULL);
  double seconds = bench_now() - start;
  free(tids);
  bench_report("tiny", seconds, (uint64_t)(threads * iterations));
  return 0;
}
