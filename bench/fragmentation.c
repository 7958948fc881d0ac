// fragmentation: --rounds (default 16) rounds of growth and release phases. (1) Allocate blocks of
// log-uniform size 16 B..64 KiB until --peak-mb (default 256) MiB are live; (2) free a random 90%
// of them; (3) allocate again, now 16..256 B and 8..64 KiB in equal numbers, back up to the peak;
// (4) free all but about one block in --keep-every (default 512); the survivors stay into the next
// round. Every block is filled when allocated. After the last round it prints
// rss_after_free_kb=<resident KiB from /proc/self/statm>, to show how much the allocator retains.
// ops = blocks allocated.
#include "bench/bench_util.h"

typedef struct block_s {
  char* p;
  size_t n;
} block_t;

static block_t* blocks;
static size_t count, capacity, live_bytes;
static uint64_t seed = 42;

static void grow_to(size_t peak, int mix) {
  while (live_bytes < peak) {
    uint64_t r = bench_rand(&seed);
    size_t n;
    if (mix == 0) {
      size_t base = (size_t)16 << (r % 12);  // 16 B .. 32 KiB, then up to twice that
      n = base + (size_t)((r >> 8) % base);
    } else if ((r >> 4) & 1) {
      n = 16 + (size_t)((r >> 8) % 241);
    } else {
      n = 8192 + (size_t)((r >> 8) % (56 * 1024 + 1));
    }
    if (count == capacity) {
      capacity = capacity ? capacity * 2 : 4096;
      blocks = realloc(blocks, capacity * sizeof *blocks);
      if (blocks == NULL) abort();
    }
    char* p = malloc(n);
    if (p == NULL) abort();
    memset(p, (int)(count & 0x7f) | 1, n);
    blocks[count].p = p;
    blocks[count++].n = n;
    live_bytes += n;
  }
}

// Frees each block unless a random draw below `keep_one_in` is zero (0: frees every block); keeps
// the survivors in order.
static void release(uint64_t keep_one_in) {
  size_t kept = 0;
  for (size_t i = 0; i < count; i++) {
    if (keep_one_in != 0 && bench_rand(&seed) % keep_one_in == 0) {
      blocks[kept++] = blocks[i];
    } else {
      live_bytes -= blocks[i].n;
      free(blocks[i].p);
    }
  }
  count = kept;
}


int main(int argc, char** argv) {
  long peak_mb = bench_arg(argc, argv, "peak-mb", 256);
  long keep_every = bench_arg(argc, argv, "keep-every", 512);
  long rounds = bench_arg(argc, argv, "rounds", 16);
  seed = (uint64_t)bench_arg(argc, argv, "seed", 42);
  if (peak_mb <= 0 || keep_every <= 0 || rounds <= 0 || seed == 0) return 2;
  size_t peak = (size_t)peak_mb << 20;
  double start = bench_now();
  size_t allocated = 0;
  for (long round = 0; round < rounds; round++) {
    for (int mix = 0; mix < 2; mix++) {
      size_t before = count;
      grow_to(peak, mix);
      allocated += count - before;
      release(mix == 0 ? 10 : (uint64_t)keep_every);
    }
  }
  double seconds = bench_now() - start;
  long rss_kb = bench_resident_kb();
  release(0);
  free(blocks);
  bench_report("fragmentation", seconds, (uint64_t)allocated);
  printf("rss_after_free_kb=%ld\n", rss_kb);
  return 0;
}
