// random_mixed: one thread, a working set of `--slots` pointers; each step frees a random slot
// and refills it with a random size in [--min, --max] bytes, touching the first byte.
#include "bench/bench_util.h"

int main(int argc, char** argv) {
  long slots = bench_arg(argc, argv, "slots", 256);
  long iterations = bench_arg(argc, argv, "iterations", 20000000);
  long min_size = bench_arg(argc, argv, "min", 16);
  long max_size = bench_arg(argc, argv, "max", 1024);
  uint64_t seed = (uint64_t)bench_arg(argc, argv, "seed", 42);
  if (slots <= 0 || min_size <= 0 || max_size < min_size) return 2;
  void** slot = calloc((size_t)slots, sizeof *slot);
  if (slot == NULL) return 1;
  uint64_t span = (uint64_t)(max_size - min_size + 1);
  double start = bench_now();
  for (long i = 0; i < iterations; i++) {
    uint64_t r = bench_rand(&seed);
    size_t k = (size_t)(r % (uint64_t)slots);
    free(slot[k]);
    size_t n = (size_t)min_size + (size_t)((r >> 32) % span);
    char* p = malloc(n);
    if (p == NULL) return 1;
    p[0] = (char)i;
    slot[k] = p;
  }
  double seconds = bench_now() - start;
  for (long k = 0; k < slots; k++) free(slot[k]);
  free(slot);
  bench_report("random_mixed", seconds, (uint64_t)iterations);
  return 0;
}
