// cache_thrash: the Hoard active-false-sharing test. --threads (default 2) each --iterations times
// malloc a --size byte object (default 8), write every byte of it --writes times and free it. An
// allocator that hands neighbouring small objects of one cache line to different threads makes
// the writes bounce that line between cores.
#include <pthread.h>

#include "bench/bench_util.h"

static long iterations, writes, size;

static void* worker(void* arg) {
  (void)arg;
  for (long i = 0; i < iterations; i++) {
    volatile char* p = malloc((size_t)size);
    if (p == NULL) abort();
    for (long w = 0; w < writes; w++) {
      for (long b = 0; b < size; b++) p[b] = (char)(w + b);
    }
    free((void*)p);
  }
  return NULL;
}

int main(int argc, char** argv) {
  long threads = bench_arg(argc, argv, "threads", 2);
  iterations = bench_arg(argc, argv, "iterations", 3000000);
  writes = bench_arg(argc, argv, "writes", 100);
  size = bench_arg(argc, argv, "size", 8);
  if (threads <= 0 || iterations < 0 || writes < 0 || size <= 0) return 2;
  pthread_t* tids = calloc((size_t)threads, sizeof *tids);
  if (tids == NULL) abort();
  double start = bench_now();
  for (long t = 0; t < threads; t++) {
    if (pthread_create(&tids[t], NULL, worker, NULL) != 0) abort();
  }
  for (long t = 0; t < threads; t++) pthread_join(tids[t], NULL);
  double seconds = bench_now() - start;
  free(tids);
  bench_report("cache_thrash", seconds, (uint64_t)(threads * iterations));
  return 0;
}
