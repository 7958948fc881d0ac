// mid_large_mt: --threads workers, each with its own --slots working set, replace a random slot
// with a block of random size in [--min, --max] (default 8..64 KiB) --iterations times, touching
// the first and last byte of every block. All frees are thread-local.
#include <pthread.h>

#include "bench/bench_util.h"

static long iterations, slots, min_size, max_size;

static void* run(void* arg) {
  uint64_t seed = (uint64_t)(uintptr_t)arg;
  void** a = calloc((size_t)slots, sizeof(void*));
  uint64_t span = (uint64_t)(max_size - min_size + 1);
  for (long i = 0; i < iterations; i++) {
    uint64_t r = bench_rand(&seed);
    size_t k = (size_t)(r % (uint64_t)slots);
    free(a[k]);
    size_t n = (size_t)min_size + (size_t)((r >> 32) % span);
    char* p = malloc(n);
    if (p == NULL) abort();
    p[0] = 1;
    p[n - 1] = 1;
    a[k] = p;
  }
  for (long k = 0; k < slots; k++) free(a[k]);
  free(a);
  return NULL;
}

int main(int argc, char** argv) {
  long threads = bench_arg(argc, argv, "threads", 2);
  iterations = bench_arg(argc, argv, "iterations", 2000000);
  slots = bench_arg(argc, argv, "slots", 1024);
  min_size = bench_arg(argc, argv, "min", 8 * 1024);
  max_size = bench_arg(argc, argv, "max", 64 * 1024);
  if (threads <= 0 || slots <= 0 || min_size <= 0 || max_size < min_size) return 2;
  pthread_t* tids = calloc((size_t)threads, sizeof *tids);
  double start = bench_now();
  for (long t = 0; t < threads; t++) {
    pthread_create(&tids[t], NULL, run, (void*)(uintptr_t)(0x9E3779B97F4A7C15ull * (uint64_t)(t + 1)));
  }
  for (long t = 0; t < threads; t++) pthread_join(tids[t], NULL);
  bench_report("mid_large_mt", bench_now() - start, (uint64_t)(threads * iterations));
  return 0;
}
