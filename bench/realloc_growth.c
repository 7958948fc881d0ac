// realloc_growth: --slots buffers (default 64) grown and shrunk only with realloc, interleaved by
// picking a random buffer each step. A growing buffer gets 1.5x its size or a random increment of
// up to a quarter of it (+16 B) until it reaches --max (default 1 MiB), then shrinks by 2/3x or a
// random decrement down to --min (default 16 B), then grows again. New tail bytes are written on
// every growth, the last byte on every shrink. ops = realloc calls (--iterations).
#include "bench/bench_util.h"

typedef struct buf_s {
  char* p;
  size_t n;
  int shrinking;
} buf_t;

int main(int argc, char** argv) {
  long iterations = bench_arg(argc, argv, "iterations", 300000);
  long slots = bench_arg(argc, argv, "slots", 64);
  long min_size = bench_arg(argc, argv, "min", 16);
  long max_size = bench_arg(argc, argv, "max", 1L << 20);
  uint64_t seed = (uint64_t)bench_arg(argc, argv, "seed", 42);
  if (iterations < 0 || slots <= 0 || min_size <= 0 || max_size < min_size) return 2;
  buf_t* buf = calloc((size_t)slots, sizeof *buf);
  if (buf == NULL) abort();
  size_t lo = (size_t)min_size, hi = (size_t)max_size;
  double start = bench_now();
  for (long i = 0; i < iterations; i++) {
    uint64_t r = bench_rand(&seed);
    buf_t* b = &buf[r % (uint64_t)slots];
    size_t n = b->n;
    size_t step = 1 + (size_t)((r >> 32) % (n / 4 + 16));
    int by_factor = (int)((r >> 24) & 1);
    size_t m;
    if (!b->shrinking) {
      m = by_factor ? n + n / 2 : n + step;
      if (m < lo) m = lo;
      if (m >= hi) m = hi, b->shrinking = 1;
    } else {
      m = by_factor ? n / 3 * 2 : (n > step ? n - step : 0);
      if (m <= lo) m = lo, b->shrinking = 0;
    }
    char* q = realloc(b->p, m);
    if (q == NULL) abort();
    if (m > n) {
      memset(q + n, (int)(i & 0x7f) | 1, m - n);
    } else {
      q[m - 1] = (char)i;
    }
    b->p = q;
    b->n = m;
  }
  double seconds = bench_now() - start;
  for (long k = 0; k < slots; k++) free(buf[k].p);
  free(buf);
  bench_report("realloc_growth", seconds, (uint64_t)iterations);
  return 0;
}
