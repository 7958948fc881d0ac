// fastpath_loop: --iterations malloc(--size) + free pairs in a tight loop, for callgrind.
// Run it twice with different iteration counts; the difference divided by the difference in
// iterations is the cost of one pair with warm-up and loop setup subtracted. --live blocks of the
// same size stay allocated throughout, so the pair never empties its page: without them some
// allocators take a page-retire path on every free that no real program hits.
#include "bench/bench_util.h"

int main(int argc, char** argv) {
  long iterations = bench_arg(argc, argv, "iterations", 1000000);
  size_t size = (size_t)bench_arg(argc, argv, "size", 32);
  long live = bench_arg(argc, argv, "live", 0);
  if (live < 0 || live > 1000000) return 2;
  void** kept = malloc(((size_t)live + 1) * sizeof(void*));
  if (kept == NULL) return 1;
  for (long i = 0; i < live; i++) kept[i] = malloc(size);
  for (long i = 0; i < iterations; i++) {
    void* volatile p = malloc(size);
    free(p);
  }
  for (long i = 0; i < live; i++) free(kept[i]);
  free(kept);
  return 0;
}
