// Shared helpers for the benchmark programs: a fast PRNG, a clock and argument parsing.
// Benchmarks call plain malloc/free, so the allocator under test is chosen with LD_PRELOAD.
#ifndef HAKMEM_BENCH_BENCH_UTIL_H
#define HAKMEM_BENCH_BENCH_UTIL_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static inline uint64_t bench_rand(uint64_t* state) {
  // xorshift64*: cheap enough not to dominate a malloc+free pair.
  uint64_t x = *state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *state = x;
  return x * 0x2545F4914F6CDD1Dull;
}

static inline double bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

// Resident KiB of this process (/proc/self/statm), or -1. Allocates nothing.
static inline long bench_resident_kb(void) {
  char buf[256];
  int fd = open("/proc/self/statm", O_RDONLY);
  if (fd < 0) return -1;
  ssize_t len = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (len <= 0) return -1;
  buf[len] = '\0';
  char* field = strchr(buf, ' ');  // the second field: resident pages
  if (field == NULL) return -1;
  return strtol(field + 1, NULL, 10) * (sysconf(_SC_PAGESIZE) / 1024);
}

// Reads "--name=value" from argv, else returns the default.
static inline long bench_arg(int argc, char** argv, const char* name, long fallback) {
  size_t len = strlen(name);
  for (int i = 1; i < argc; i++) {
    if (strncmp(argv[i], "--", 2) == 0 && strncmp(argv[i] + 2, name, len) == 0 &&
        argv[i][2 + len] == '=') {
      return strtol(argv[i] + 3 + len, NULL, 10);
    }
  }
  return fallback;
}

// One result line that the compare runner parses: "<name> seconds=<s> ops=<n>".
static inline void bench_report(const char* name, double seconds, uint64_t ops) {
  printf("%s seconds=%.6f ops=%llu mops_per_s=%.2f\n", name, seconds, (unsigned long long)ops,
         (double)ops / seconds / 1e6);
}

#endif  // HAKMEM_BENCH_BENCH_UTIL_H
