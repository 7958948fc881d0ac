// xmalloc: producer/consumer pairs in the style of the xmalloc test. --threads (even, default 2)
// threads form pairs; each producer mallocs --iterations blocks of random size in [--min, --max]
// (default 16..512 B), writes their first byte and hands them over in batches of 64 pointers
// through a mutex+condvar ring of 16 batches; its consumer frees them, so every free is remote.
// A side that finds the ring empty (full) sleeps until it is half full (half empty), so a futex
// wake-up is paid per 8 batches at most and the allocator, not the handoff, dominates.
#include <pthread.h>

#include "bench/bench_util.h"

#define BATCH 64
#define RING 16

typedef struct pair_s {
  pthread_mutex_t lock;
  pthread_cond_t not_full;
  pthread_cond_t not_empty;
  long head, tail;  // batches taken and batches put
  void* ring[RING][BATCH];
  uint64_t seed;
  char pad[64];  // keeps the locks of neighbouring pairs off one cache line
} pair_t;

static long iterations, batches, min_size, max_size;

static void* producer(void* arg) {
  pair_t* pr = (pair_t*)arg;
  uint64_t span = (uint64_t)(max_size - min_size + 1);
  void* batch[BATCH];
  for (long b = 0; b < batches; b++) {
    for (int i = 0; i < BATCH; i++) {
      uint64_t r = bench_rand(&pr->seed);
      char* p = malloc((size_t)min_size + (size_t)((r >> 32) % span));
      if (p == NULL) abort();
      p[0] = (char)i;
      batch[i] = p;
    }
    pthread_mutex_lock(&pr->lock);
    if (pr->tail - pr->head == RING) {
      while (pr->tail - pr->head > RING / 2) pthread_cond_wait(&pr->not_full, &pr->lock);
    }
    memcpy(pr->ring[pr->tail % RING], batch, sizeof batch);
    pr->tail++;
    if (pr->tail - pr->head >= RING / 2 || pr->tail == batches) {
      pthread_cond_signal(&pr->not_empty);
    }
    pthread_mutex_unlock(&pr->lock);
  }
  return NULL;
}

static void* consumer(void* arg) {
  pair_t* pr = (pair_t*)arg;
  void* batch[BATCH];
  for (long b = 0; b < batches; b++) {
    pthread_mutex_lock(&pr->lock);
    if (pr->tail == pr->head) {
      long need = batches - b < RING / 2 ? batches - b : RING / 2;
      while (pr->tail - pr->head < need) pthread_cond_wait(&pr->not_empty, &pr->lock);
    }
    memcpy(batch, pr->ring[pr->head % RING], sizeof batch);
    pr->head++;
    if (pr->tail - pr->head <= RING / 2) pthread_cond_signal(&pr->not_full);
    pthread_mutex_unlock(&pr->lock);
    for (int i = 0; i < BATCH; i++) free(batch[i]);
  }
  return NULL;
}

int main(int argc, char** argv) {
  long threads = bench_arg(argc, argv, "threads", 2);
  iterations = bench_arg(argc, argv, "iterations", 4000000);
  min_size = bench_arg(argc, argv, "min", 16);
  max_size = bench_arg(argc, argv, "max", 512);
  if (threads < 2 || threads % 2 != 0 || iterations < 0 || min_size <= 0 || max_size < min_size) {
    return 2;
  }
  long pairs = threads / 2;
  batches = iterations / BATCH;
  pair_t* pair = calloc((size_t)pairs, sizeof *pair);
  pthread_t* tids = calloc((size_t)threads, sizeof *tids);
  if (pair == NULL || tids == NULL) abort();
  double start = bench_now();
  for (long k = 0; k < pairs; k++) {
    pthread_mutex_init(&pair[k].lock, NULL);
    pthread_cond_init(&pair[k].not_full, NULL);
    pthread_cond_init(&pair[k].not_empty, NULL);
    pair[k].seed = 0x9E3779B97F4A7C15ull * (uint64_t)(k + 1);
    if (pthread_create(&tids[2 * k], NULL, producer, &pair[k]) != 0) abort();
    if (pthread_create(&tids[2 * k + 1], NULL, consumer, &pair[k]) != 0) abort();
  }
  for (long t = 0; t < threads; t++) pthread_join(tids[t], NULL);
  double seconds = bench_now() - start;
  free(tids);
  free(pair);
  bench_report("xmalloc", seconds, (uint64_t)(pairs * batches * BATCH));
  return 0;
}
