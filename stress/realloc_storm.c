// realloc_storm: --threads workers resize random blocks across the tiny, mid and huge ranges
// (and sometimes to zero, which frees), checking after every move that the prefix survived.
#include <pthread.h>

#include "stress/stress_util.h"

#define SLOTS 256

static void* storm(void* arg) {
  uint64_t seed = 0x9E3779B97F4A7C15ull * (uint64_t)((intptr_t)arg + 1);
  void* slot[SLOTS] = {0};
  unsigned long ops = 0;
  while (stress_running()) {
    for (int i = 0; i < 1000; i++, ops++) {
      uint64_t r = bench_rand(&seed);
      size_t k = (size_t)(r % SLOTS);
      size_t n = (r >> 60) == 0 ? 0 : stress_size(r >> 16);
      void* p = slot[k];
      size_t old = p ? stress_verify(p) : 0;
      uint64_t head[2];
      if (p) memcpy(head, p, sizeof head);
      void* q = hak_realloc(p, n);
      if (n == 0) {
        if (p == NULL) hak_free(q);  // realloc(NULL, 0) is malloc(0)
        slot[k] = NULL;              // realloc(p, 0) freed p
        continue;
      }
      if (q == NULL) abort();
      if (p && (memcmp(q, head, sizeof head) != 0 ||
                (n >= old && ((unsigned char*)q)[old - 1] != (unsigned char)head[1]))) {
        fprintf(stderr, "realloc_storm: realloc(%p, %zu) from %zu bytes lost the prefix\n", p, n, old);
        abort();
      }
      stress_stamp(q, n);
      slot[k] = q;
    }
  }
  for (int k = 0; k < SLOTS; k++) stress_free(slot[k]);
  atomic_fetch_add(&stress_ops, ops);
  return NULL;
}

int main(int argc, char** argv) {
  long threads = bench_arg(argc, argv, "threads", 2);
  if (threads <= 0 || threads > 256) return 2;
  stress_start(argc, argv, 2);
  pthread_t* tids = calloc((size_t)threads, sizeof *tids);
  for (long t = 0; t < threads; t++) pthread_create(&tids[t], NULL, storm, (void*)(intptr_t)t);
  for (long t = 0; t < threads; t++) pthread_join(tids[t], NULL);
  free(tids);
  return stress_finish("realloc_storm");
}
