// The large pool through the public API: span reuse, merging of free neighbours, realloc in
// place, purge timing, alignment, zeroing, misuse, memory returned after a 1 GiB peak.
#include "hakmem/pool/large.h"

#include <gtest/gtest.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <random>
#include <thread>
#include <vector>

#include "hakmem/base.h"
#include "hakmem/config.h"
#include "hakmem/hakmem.h"

namespace {

constexpr size_t kKiB = 1024;

char* Alloc(size_t n) { return static_cast<char*>(hak_malloc(n)); }

size_t DirtyBytes() {
  hak_large_totals_t totals;
  hak_large_totals(&totals);
  return totals.dirty_bytes;
}

TEST(Large, FreedSpanIsReusedAsIs) {
  char* a = Alloc(200 * kKiB);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % 4096, 0u);
  EXPECT_EQ(hak_usable_size(a), 200 * kKiB);
  memset(a, 1, 200 * kKiB);
  hak_free(a);
  size_t dirty = DirtyBytes();
  EXPECT_GE(dirty, 200 * kKiB);
  char* b = Alloc(200 * kKiB);
  EXPECT_EQ(DirtyBytes(), dirty - 200 * kKiB);  // committed pages again: no fresh faults
  hak_free(b);
}

TEST(Large, WmaxTakesASlightlyLargerSpanWhole) {
  const int64_t saved = hak_config.large_round_pct;
  for (int64_t pct : {100, 125}) {
    hak_config.large_round_pct = pct;
    char* a = Alloc(200 * kKiB);
    char* guard = Alloc(100 * kKiB);  // a's span stays 200 KiB when freed
    ASSERT_EQ(guard, a + 200 * kKiB);
    hak_free(a);
    char* b = Alloc(180 * kKiB);
    EXPECT_EQ(b, a);
    EXPECT_EQ(hak_usable_size(b), (pct == 100 ? 180 : 200) * kKiB) << pct;
    hak_free(b);
    hak_free(guard);
  }
  hak_config.large_round_pct = saved;
}

TEST(Large, FreeNeighboursMerge) {
  char* a = Alloc(100 * kKiB);
  char* b = Alloc(100 * kKiB);
  char* c = Alloc(100 * kKiB);
  ASSERT_EQ(b, a + 100 * kKiB);
  ASSERT_EQ(c, b + 100 * kKiB);
  char* guard = Alloc(100 * kKiB);  // keeps the merged span from reaching the arena's free tail
  hak_free(a);
  hak_free(c);
  hak_free(b);  // merges with both
  char* merged = Alloc(300 * kKiB);
  EXPECT_EQ(merged, a);
  hak_free(merged);
  hak_free(guard);
}

TEST(Large, ReallocGrowsAndShrinksInPlace) {
  char* a = Alloc(100 * kKiB);
  char* guard = Alloc(600 * kKiB);
  hak_free(guard);  // a's right neighbour is free now
  memset(a, 7, 100 * kKiB);
  char* grown = static_cast<char*>(hak_realloc(a, 400 * kKiB));
  EXPECT_EQ(grown, a);
  EXPECT_EQ(hak_usable_size(grown), 400 * kKiB);
  for (size_t i = 0; i < 100 * kKiB; i += 4096) ASSERT_EQ(grown[i], 7);
  char* shrunk = static_cast<char*>(hak_realloc(grown, 250 * kKiB));
  EXPECT_EQ(shrunk, a);
  EXPECT_EQ(hak_usable_size(shrunk), 252 * kKiB);  // whole pages
  char* tail = Alloc(120 * kKiB);  // fits in the pages the shrink gave back
  EXPECT_EQ(tail, a + 252 * kKiB);
  hak_free(tail);
  hak_free(shrunk);
}

TEST(Large, ReallocMovesWhenTheNeighbourIsTaken) {
  char* a = Alloc(100 * kKiB);
  char* b = Alloc(100 * kKiB);
  memset(a, 3, 100 * kKiB);
  char* moved = static_cast<char*>(hak_realloc(a, 300 * kKiB));
  ASSERT_NE(moved, a);
  for (size_t i = 0; i < 100 * kKiB; i += 512) ASSERT_EQ(moved[i], 3);
  hak_free(moved);
  hak_free(b);
}

TEST(Large, DirtySpansAreTakenBeforeCleanOnes) {
  hak_large_trim();  // every free span clean, as in a program whose frees were purged
  char* clean = Alloc(200 * kKiB);  // freed and purged below: a clean span that fits 128 KiB better
  char* clean_guard = Alloc(100 * kKiB);
  char* freed = Alloc(800 * kKiB);
  char* guard = Alloc(100 * kKiB);  // keeps the freed span from merging with a neighbour
  hak_free(clean);
  hak_large_trim();
  memset(freed, 1, 800 * kKiB);
  hak_free(freed);
  size_t dirty = DirtyBytes();
  ASSERT_GE(dirty, 800 * kKiB);
  char* a = Alloc(128 * kKiB);  // the clean span's pages are not resident: taking them grows RSS
  EXPECT_TRUE(a >= freed && a < freed + 800 * kKiB) << static_cast<void*>(a);
  EXPECT_EQ(DirtyBytes(), dirty - 128 * kKiB);
  hak_free(a);
  hak_free(guard);
  hak_free(clean_guard);
}

TEST(Large, ReallocMovesToDirtyPagesRatherThanGrowIntoCleanOnes) {
  hak_large_trim();
  char* freed = Alloc(800 * kKiB);
  char* guard = Alloc(100 * kKiB);
  char* a = Alloc(100 * kKiB);  // carved from the front of a clean span: clean pages follow it
  memset(freed, 1, 800 * kKiB);
  hak_free(freed);
  memset(a, 5, 100 * kKiB);
  char* grown = static_cast<char*>(hak_realloc(a, 400 * kKiB));
  EXPECT_TRUE(grown >= freed && grown < freed + 800 * kKiB) << static_cast<void*>(grown);
  for (size_t i = 0; i < 100 * kKiB; i += 512) ASSERT_EQ(grown[i], 5);
  hak_free(grown);
  hak_free(guard);
}

TEST(Large, FreeSpansArePurgedAfterTheDelay) {
  std::vector<char*> blocks;
  for (int i = 0; i < 8; i++) {
    blocks.push_back(Alloc(512 * kKiB));
    memset(blocks.back(), 1, 512 * kKiB);
  }
  for (char* p : blocks) hak_free(p);
  hak_large_totals_t totals;
  hak_large_totals(&totals);
  EXPECT_GE(totals.dirty_bytes, 4u << 20);
  usleep(600 * 1000);  // more than HAKMEM_PURGE_DELAY_MS (250) and its purge interval
  hak_free(Alloc(100 * kKiB));  // any large call runs the purge that is due
  hak_large_totals(&totals);
  EXPECT_LT(totals.dirty_bytes, 1u << 20);
}

TEST(Large, CallocOfAReusedSpanIsZero) {
  char* a = Alloc(300 * kKiB);
  memset(a, 0xff, 300 * kKiB);
  hak_free(a);
  size_t dirty = DirtyBytes();
  auto* z = static_cast<unsigned char*>(hak_calloc(1, 300 * kKiB));
  ASSERT_EQ(DirtyBytes(), dirty - 300 * kKiB);  // it reused committed (dirty) pages
  for (size_t i = 0; i < 300 * kKiB; i++) ASSERT_EQ(z[i], 0) << i;
  hak_free(z);
}

TEST(Large, AlignmentsUpToTwoMiB) {
  for (size_t align = 4096; align <= (2u << 20); align *= 2) {
    void* p = hak_aligned_alloc(align, 300 * kKiB);
    ASSERT_NE(p, nullptr) << align;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % align, 0u) << align;
    memset(p, 1, 300 * kKiB);
    hak_free(p);
  }
}

TEST(Large, CrossThreadFrees) {
  std::vector<char*> blocks;
  std::mt19937 rng(5);
  for (int i = 0; i < 64; i++) {
    size_t n = 65 * kKiB + rng() % (900 * kKiB);
    char* p = Alloc(n);
    memset(p, i, n);
    blocks.push_back(p);
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; t++) {
    threads.emplace_back([&, t] {
      for (int i = t; i < 64; i += 4) {
        EXPECT_EQ(blocks[i][0], static_cast<char>(i));
        hak_free(blocks[i]);
        hak_free(Alloc(70 * kKiB + i * kKiB));
      }
    });
  }
  for (auto& t : threads) t.join();
}

TEST(LargeDeathTest, DoubleFreeAndInteriorPointersAbort) {
  char* a = Alloc(100 * kKiB);
  EXPECT_DEATH(hak_free(a + 4096), "no live large block's start");
  hak_free(a);
  EXPECT_DEATH(hak_free(a), "no live large block's start");
}

TEST(Large, RssFallsAfterAOneGiBPeak) {
  std::vector<char*> blocks;
  std::mt19937 rng(11);
  size_t total = 0;
  while (total < (1u << 30)) {
    size_t n = 64 * kKiB + rng() % (960 * kKiB);
    char* p = Alloc(n);
    ASSERT_NE(p, nullptr);
    memset(p, 1, n);
    blocks.push_back(p);
    total += n;
  }
  hak_stats_t peak;
  hak_stats(&peak);
  for (char* p : blocks) hak_free(p);
  // Keep the allocator busy for up to a second; RSS must fall below 10% of the peak. Under ASan
  // the shadow of every byte once written, an eighth of it, stays resident: ASan's, not ours.
  size_t limit = peak.rss_bytes / 10 + (HAK_ASAN ? peak.rss_bytes / 8 : 0);
  hak_stats_t now;
  int ms = 0;
  for (; ms < 1000; ms += 10) {
    hak_free(Alloc(80 * kKiB));
    usleep(10 * 1000);
    hak_stats(&now);
    if (now.rss_bytes < limit) break;
  }
  printf("rss %zu MiB at the peak, %zu MiB %d ms after the last free\n", peak.rss_bytes >> 20,
         now.rss_bytes >> 20, ms + 10);
  EXPECT_GT(peak.rss_bytes, 1u << 30);
  EXPECT_LT(now.rss_bytes, limit) << now.rss_bytes << " of " << peak.rss_bytes;
}

}  // namespace
