// fastpath_loop: --iterations malloc(--size) + free pairs in a tight loop, for callgrind.
// Run it twice with different iteration counts; the difference divided by the difference in
// iterations is the cost of one pair with warm-up and loop setup subtracted.
#include "bench/bench_util.h"

int main(int argc, char** argv) {
  long iterations = bench_arg(argc, argv, "iterations", 1000000);
  size_t size = (size_t)bench_arg(argc, argv, "size", 32);
  for (long i = 0; i < iterations; i++) {
    void* volatile p = malloc(size);
    free(p);
  }
  return 0;
}
