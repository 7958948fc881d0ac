// malloc_large: --slots buffers of random size in [--min, --max] (default 5..25 MiB); each of
// --iterations steps replaces one random buffer with a new zero-filled one (new char[n]() style:
// malloc + memset), the pattern of mimalloc-bench's malloc-large.
#include "bench/bench_util.h"

// Called through a volatile pointer so that the compiler cannot turn malloc + memset(0) into
// calloc: new char[n]() in C++ writes every byte, and so must this benchmark.
static void* (*volatile fill)(void*, int, size_t) = memset;

int main(int argc, char** argv) {
  long iterations = bench_arg(argc, argv, "iterations", 2000);
  long slots = bench_arg(argc, argv, "slots", 20);
  long min_size = bench_arg(argc, argv, "min", 5L << 20);
  long max_size = bench_arg(argc, argv, "max", 25L << 20);
  if (slots <= 0 || min_size <= 0 || max_size < min_size) return 2;
  void** a = calloc((size_t)slots, sizeof(void*));
  uint64_t seed = 42;
  uint64_t span = (uint64_t)(max_size - min_size + 1);
  double start = bench_now();
  for (long i = 0; i < iterations; i++) {
    uint64_t r = bench_rand(&seed);
    size_t k = (size_t)(r % (uint64_t)slots);
    size_t n = (size_t)min_size + (size_t)((r >> 24) % span);
    free(a[k]);
    a[k] = malloc(n);
    if (a[k] == NULL) abort();
    fill(a[k], 0, n);
  }
  double seconds = bench_now() - start;
  for (long k = 0; k < slots; k++) free(a[k]);
  free(a);
  bench_report("malloc_large", seconds, (uint64_t)iterations);
  return 0;
}
