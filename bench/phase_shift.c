// phase_shift: a size mix that shifts, for allocators that adapt to the current workload.
// --iterations steps (default 12M) are split into --phases (default 8) phases. Each phase draws
// sizes within +-12% of one mode, the modes cycling through 24 B, 200 B, 3 KiB, 20 KiB, 96 B,
// 48 KiB, 700 B and 9 KiB; every step frees a random slot of a --slots (default 1024) working set
// and refills it, writing the first and last byte. The whole working set is freed between phases.
#include "bench/bench_util.h"

static const size_t modes[] = {24, 200, 3 * 1024, 20 * 1024, 96, 48 * 1024, 700, 9 * 1024};
#define MODES (sizeof modes / sizeof modes[0])

int main(int argc, char** argv) {
  long iterations = bench_arg(argc, argv, "iterations", 12000000);
  long phases = bench_arg(argc, argv, "phases", 8);
  long slots = bench_arg(argc, argv, "slots", 1024);
  uint64_t seed = (uint64_t)bench_arg(argc, argv, "seed", 42);
  if (iterations < 0 || phases <= 0 || slots <= 0 || seed == 0) return 2;
  void** a = calloc((size_t)slots, sizeof *a);
  if (a == NULL) abort();
  long steps = iterations / phases;
  double start = bench_now();
  for (long phase = 0; phase < phases; phase++) {
    size_t mode = modes[(size_t)phase % MODES];
    size_t low = mode - mode * 12 / 100;
    uint64_t span = (uint64_t)(mode * 24 / 100 + 1);
    for (long i = 0; i < steps; i++) {
      uint64_t r = bench_rand(&seed);
      size_t k = (size_t)(r % (uint64_t)slots);
      free(a[k]);
      size_t n = low + (size_t)((r >> 32) % span);
      char* p = malloc(n);
      if (p == NULL) abort();
      p[0] = (char)i;
      p[n - 1] = (char)i;
      a[k] = p;
    }
    for (long k = 0; k < slots; k++) {
      free(a[k]);
      a[k] = NULL;
    }
  }
  double seconds = bench_now() - start;
  free(a);
  bench_report("phase_shift", seconds, (uint64_t)(phases * steps));
  return 0;
}
