// idle_return: how soon freed memory goes back to the OS once a program stops asking for it.
// Allocates about --mib MiB in blocks of mixed sizes (1 KiB to 1 MiB, log-uniform, every page
// touched), frees all of it, then for 2 s either only sleeps (--churn=0) or only allocates and
// frees blocks of 32-200 bytes (--churn=1), and prints the resident size at 0, 100, 500, 1000
// and 2000 ms after the last free (rss_<ms>ms_kb=), with the peak before the frees (peak_kb=).
// `seconds` is the time of the allocations and frees alone.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench_util.h"

static const int marks_ms[] = {0, 100, 500, 1000, 2000};
#define MARKS (sizeof marks_ms / sizeof marks_ms[0])

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

int main(int argc, char** argv) {
  size_t target = (size_t)bench_arg(argc, argv, "mib", 1024) << 20;
  int churn = (int)bench_arg(argc, argv, "churn", 0);
  uint64_t rng = 0x1d1e;
  size_t capacity = 1 << 16, count = 0, total = 0;
  void** blocks = malloc(capacity * sizeof *blocks);
  double start = bench_now();
  while (total < target) {
    // log-uniform in [2^10, 2^20]
    double exponent = 10.0 + (double)(bench_rand(&rng) % 10001) / 1000.0;
    size_t n = (size_t)1 << (unsigned)exponent;
    n += (size_t)(bench_rand(&rng) % n);
    if (n > ((size_t)1 << 20)) n = (size_t)1 << 20;
    if (count == capacity) {
      capacity *= 2;
      blocks = realloc(blocks, capacity * sizeof *blocks);
    }
    blocks[count] = malloc(n);
    memset(blocks[count], (int)count, n);
    count++;
    total += n;
  }
  long peak_kb = bench_resident_kb();
  for (size_t i = 0; i < count; i++) free(blocks[i]);
  free(blocks);
  double elapsed = bench_now() - start;
  double freed_at = bench_now();

  long rss[MARKS];
  uint64_t pairs = 0;
  for (size_t m = 0; m < MARKS; m++) {
    double due = freed_at + marks_ms[m] / 1000.0;
    if (churn) {
      while (bench_now() < due) {
        for (int i = 0; i < 1000; i++) {
          void* p = malloc(32 + bench_rand(&rng) % 169);
          *(volatile char*)p = 1;
          free(p);
        }
        pairs += 1000;
      }
    } else {
      double left = due - bench_now();
      if (left > 0) sleep_ms((long)(left * 1000.0));
    }
    rss[m] = bench_resident_kb();
  }
  printf("idle_return seconds=%.6f ops=%zu peak_kb=%ld", elapsed, count, peak_kb);
  for (size_t m = 0; m < MARKS; m++) printf(" rss_%dms_kb=%ld", marks_ms[m], rss[m]);
  printf(" churn_pairs=%llu\n", (unsigned long long)pairs);
  return 0;
}
