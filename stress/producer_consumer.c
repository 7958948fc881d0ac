// producer_consumer: --pairs producer threads allocate stamped blocks and hand them in batches
// to their consumer thread, which verifies and frees them: every free is remote. With
// --pause-us=N a consumer sleeps up to N microseconds after each batch, so that the purger's
// thread takes its remote batches over (remote.h) while it may wake up and free again.
#include <pthread.h>
#include <unistd.h>

#include "stress/stress_util.h"

#define BATCH 64
#define QUEUE 16  // batches in flight per pair

typedef struct pair_s {
  pthread_mutex_t lock;
  pthread_cond_t changed;
  void* batches[QUEUE][BATCH];
  unsigned head, count;
  int done;
  uint64_t seed;
} pair_t;

static void* produce(void* arg) {
  pair_t* q = (pair_t*)arg;
  while (stress_running()) {
    void* batch[BATCH];
    for (int i = 0; i < BATCH; i++) batch[i] = stress_alloc(stress_size(bench_rand(&q->seed)));
    pthread_mutex_lock(&q->lock);
    while (q->count == QUEUE) pthread_cond_wait(&q->changed, &q->lock);
    memcpy(q->batches[(q->head + q->count) % QUEUE], batch, sizeof batch);
    q->count++;
    pthread_cond_broadcast(&q->changed);
    pthread_mutex_unlock(&q->lock);
    atomic_fetch_add(&stress_ops, BATCH);
  }
  pthread_mutex_lock(&q->lock);
  q->done = 1;
  pthread_cond_broadcast(&q->changed);
  pthread_mutex_unlock(&q->lock);
  return NULL;
}

static long pause_us;

static void* consume(void* arg) {
  pair_t* q = (pair_t*)arg;
  uint64_t seed = (uint64_t)(uintptr_t)q * 0x5851F42D4C957F2Dull | 1;  // q->seed is the producer's
  for (;;) {
    void* batch[BATCH];
    pthread_mutex_lock(&q->lock);
    while (q->count == 0 && !q->done) pthread_cond_wait(&q->changed, &q->lock);
    if (q->count == 0) {
      pthread_mutex_unlock(&q->lock);
      return NULL;
    }
    memcpy(batch, q->batches[q->head], sizeof batch);
    q->head = (q->head + 1) % QUEUE;
    q->count--;
    pthread_cond_broadcast(&q->changed);
    pthread_mutex_unlock(&q->lock);
    for (int i = 0; i < BATCH; i++) stress_free(batch[i]);
    if (pause_us > 0) usleep((useconds_t)(bench_rand(&seed) % (uint64_t)pause_us));
  }
}

int main(int argc, char** argv) {
  long pairs = bench_arg(argc, argv, "pairs", 2);
  pause_us = bench_arg(argc, argv, "pause-us", 0);
  if (pairs <= 0 || pairs > 64 || pause_us < 0) return 2;
  stress_start(argc, argv, 2);
  pair_t* q = calloc((size_t)pairs, sizeof *q);
  pthread_t* tids = calloc((size_t)pairs * 2, sizeof *tids);
  for (long i = 0; i < pairs; i++) {
    pthread_mutex_init(&q[i].lock, NULL);
    pthread_cond_init(&q[i].changed, NULL);
    q[i].seed = 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1);
    pthread_create(&tids[2 * i], NULL, produce, &q[i]);
    pthread_create(&tids[2 * i + 1], NULL, consume, &q[i]);
  }
  for (long i = 0; i < 2 * pairs; i++) pthread_join(tids[i], NULL);
  free(q);
  free(tids);
  return stress_finish("producer_consumer");
}
