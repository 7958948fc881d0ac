// cache_scratch: the Hoard passive-false-sharing test. The main thread mallocs one --size byte
// object (default 8) per thread, back to back, and hands object t to thread t, which frees it and
// then --iterations times mallocs an object, writes every byte of it --writes times and frees it.
// An allocator that gives the freed object (on a cache line shared with the other threads'
// objects) back to the thread that freed it makes the threads' writes bounce that line.
#include <pthread.h>

#include "bench/bench_util.h"

static long iterations, writes, size;

static void* worker(void* arg) {
  free(arg);
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
  char** objs = calloc((size_t)threads, sizeof *objs);
  if (tids == NULL || objs == NULL) abort();
  for (long t = 0; t < threads; t++) {
    objs[t] = malloc((size_t)size);
    if (objs[t] == NULL) abort();
    memset(objs[t], (int)t, (size_t)size);
  }
  double start = bench_now();
  for (long t = 0; t < threads; t++) {
    if (pthread_create(&tids[t], NULL, worker, objs[t]) != 0) abort();
  }
  for (long t = 0; t < threads; t++) pthread_join(tids[t], NULL);
  double seconds = bench_now() - start;
  free(objs);
  free(tids);
  bench_report("cache_scratch", seconds, (uint64_t)(threads * iterations));
  return 0;
}
