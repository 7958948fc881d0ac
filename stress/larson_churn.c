// larson_churn: a server simulation. --threads workers each replace random blocks of a slot
// array; after every round the arrays move on to the next worker, so most frees are remote and
// every worker frees blocks of every other one. Every 8th round, while the others wait at the
// barrier, worker 0 walks the heap: their remote batches (hakmem/remote.h) hold blocks then.
#include <pthread.h>

#include "stress/stress_util.h"

static long threads, slots;
static void*** arrays;
static pthread_barrier_t barrier;
static atomic_int stop;
static unsigned long walks, walks_with_batches;

// Between the round's barriers: no other worker allocates or frees.
static void walk_mid_run(void) {
  hak_check_report_t report;
  if (!hak_check_heap(&report)) {
    fprintf(stderr, "larson_churn: heap check between rounds failed: %s\n", report.error);
    exit(1);
  }
  walks++;
  if (report.batched_blocks > 0) walks_with_batches++;
}

static void* work(void* arg) {
  long index = (long)(intptr_t)arg;
  uint64_t seed = 0x9E3779B97F4A7C15ull * (uint64_t)(index + 1);
  for (long round = 0;; round++) {
    void** a = arrays[(index + round) % threads];
    for (long i = 0; i < 4 * slots; i++) {
      uint64_t r = bench_rand(&seed);
      size_t k = (size_t)(r % (uint64_t)slots);
      stress_free(a[k]);
      a[k] = stress_alloc(stress_size(r >> 16));
    }
    atomic_fetch_add(&stress_ops, (unsigned long)(4 * slots));
    if (index == 0 && !stress_running()) atomic_store(&stop, 1);
    pthread_barrier_wait(&barrier);
    if (index == 0 && round % 8 == 7) walk_mid_run();
    int done = atomic_load(&stop);
    pthread_barrier_wait(&barrier);  // nobody starts the next round before all have read stop
    if (done) return NULL;
  }
}

int main(int argc, char** argv) {
  threads = bench_arg(argc, argv, "threads", 4);
  slots = bench_arg(argc, argv, "slots", 500);
  if (threads <= 0 || threads > 256 || slots <= 0) return 2;
  stress_start(argc, argv, 2);
  arrays = calloc((size_t)threads, sizeof *arrays);
  for (long t = 0; t < threads; t++) arrays[t] = calloc((size_t)slots, sizeof(void*));
  pthread_barrier_init(&barrier, NULL, (unsigned)threads);
  pthread_t* tids = calloc((size_t)threads, sizeof *tids);
  for (long t = 0; t < threads; t++) pthread_create(&tids[t], NULL, work, (void*)(intptr_t)t);
  for (long t = 0; t < threads; t++) pthread_join(tids[t], NULL);
  for (long t = 0; t < threads; t++) {
    for (long k = 0; k < slots; k++) stress_free(arrays[t][k]);
    free(arrays[t]);
  }
  free(arrays);
  free(tids);
  printf("larson_churn: %lu heap walks between rounds, %lu found blocks in remote batches\n", walks,
         walks_with_batches);
  if (walks > 0 && walks_with_batches == 0) {
    fprintf(stderr, "larson_churn: no walk saw a remote batch: the walker's batch check went "
            "untested\n");
    return 1;
  }
  return stress_finish("larson_churn");
}
