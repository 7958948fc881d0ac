// Whole-allocator behaviour through the public hak_* API (the static library).
#include "hakmem/hakmem.h"

#include <errno.h>
#include <gtest/gtest.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "hakmem/base.h"
#include "hakmem/check.h"
#include "hakmem/config.h"
#include "hakmem/heap.h"
#include "hakmem/size_class.h"
#include "hakmem/slab.h"

namespace {

bool Aligned(const void* p, size_t a) { return (reinterpret_cast<uintptr_t>(p) & (a - 1)) == 0; }

TEST(Hakmem, SizesAreAlignedAndUsable) {
  std::vector<void*> blocks;
  for (size_t n = 0; n <= 300000; n = n < 2048 ? n + 1 : n * 5 / 4) {
    void* p = hak_malloc(n);
    ASSERT_NE(p, nullptr) << n;
    if (n >= 16) {
      EXPECT_TRUE(Aligned(p, 16)) << n;
    }
    EXPECT_GE(hak_usable_size(p), n);
    memset(p, 0xab, hak_usable_size(p));
    blocks.push_back(p);
  }
  for (void* p : blocks) hak_free(p);
}

TEST(Hakmem, FreeNullIsANoOp) {
  void* held = hak_malloc(48);
  hak_stats_t before;
  hak_stats(&before);
  errno = 1234;
  hak_free(nullptr);
  EXPECT_EQ(errno, 1234);
  hak_stats_t after;
  hak_stats(&after);
  EXPECT_EQ(after.slabs_in_use, before.slabs_in_use);
  EXPECT_EQ(after.large_blocks, before.large_blocks);
  EXPECT_EQ(after.huge_blocks, before.huge_blocks);
  hak_free(held);
}

TEST(Hakmem, CallocZeroesReusedMemory) {
  for (size_t n : {24u, 700u, 5000u, 70000u}) {
    void* dirty = hak_malloc(n);
    memset(dirty, 0xff, n);
    hak_free(dirty);
    auto* p = static_cast<unsigned char*>(hak_calloc(1, n));
    ASSERT_NE(p, nullptr);
    for (size_t i = 0; i < n; i++) ASSERT_EQ(p[i], 0) << n << " at " << i;
    hak_free(p);
  }
}

TEST(Hakmem, OverflowsFailWithEnomem) {
  errno = 0;
  EXPECT_EQ(hak_calloc(SIZE_MAX / 2, 3), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(hak_malloc(SIZE_MAX - 100), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  void* p = hak_malloc(10);
  errno = 0;
  EXPECT_EQ(hak_reallocarray(p, SIZE_MAX / 4, 8), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(hak_aligned_alloc(4096, SIZE_MAX - 4096), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(hak_pvalloc(SIZE_MAX - 10), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  hak_free(p);
}

TEST(Hakmem, ReallocKeepsThePrefixAcrossEveryRange) {
  auto* p = static_cast<unsigned char*>(hak_malloc(1));
  p[0] = 0;
  size_t size = 1;
  for (size_t next : {7u, 100u, 1024u, 1025u, 40000u, 65536u, 70000u, 5000000u, 9000000u,
                      100000u, 3000u, 200u, 16u}) {
    p = static_cast<unsigned char*>(hak_realloc(p, next));
    ASSERT_NE(p, nullptr);
    size_t keep = size < next ? size : next;
    for (size_t i = 0; i < keep; i++) ASSERT_EQ(p[i], static_cast<unsigned char>(i * 7)) << next;
    for (size_t i = 0; i < next; i++) p[i] = static_cast<unsigned char>(i * 7);
    size = next;
  }
  EXPECT_EQ(hak_realloc(p, 0), nullptr);  // frees, like glibc
}

TEST(Hakmem, AlignedAllocationsOfEveryPowerOfTwo) {
  for (size_t a = 1; a <= 8 * 1024 * 1024; a *= 2) {
    for (size_t n : {1u, 100u, 5000u, 100000u}) {
      void* p = hak_aligned_alloc(a, n);
      ASSERT_NE(p, nullptr) << a << " " << n;
      EXPECT_TRUE(Aligned(p, a < 16 && n >= 16 ? 16 : a)) << a << " " << n;
      EXPECT_GE(hak_usable_size(p), n);
      memset(p, 1, n);
      hak_free(p);
    }
  }
  void* p = nullptr;
  EXPECT_EQ(hak_posix_memalign(&p, 24, 10), EINVAL);
  EXPECT_EQ(hak_posix_memalign(&p, 4, 10), EINVAL);
  ASSERT_EQ(hak_posix_memalign(&p, 256, 10), 0);
  EXPECT_TRUE(Aligned(p, 256));
  hak_free(p);
  errno = 0;
  EXPECT_EQ(hak_aligned_alloc(3, 10), nullptr);
  EXPECT_EQ(errno, EINVAL);
  p = hak_memalign(48, 10);  // rounded up to 64, as glibc does
  EXPECT_TRUE(Aligned(p, 64));
  hak_free(p);
  p = hak_valloc(10);
  EXPECT_TRUE(Aligned(p, 4096));
  hak_free(p);
  p = hak_pvalloc(5000);
  EXPECT_TRUE(Aligned(p, 4096));
  EXPECT_GE(hak_usable_size(p), 8192u);
  hak_free(p);
}

TEST(Hakmem, CrossThreadFreesAreReused) {
  constexpr int kBlocks = 200000;
  std::vector<void*> blocks(kBlocks);
  for (int round = 0; round < 5; round++) {
    std::thread producer([&] {
      for (int i = 0; i < kBlocks; i++) blocks[i] = hak_malloc(16 + i % 2000);
    });
    producer.join();
    for (void* p : blocks) hak_free(p);  // remote frees: the producer has exited
  }
  hak_stats_t stats;
  hak_stats(&stats);
  // 5 rounds of ~200 MB, each freed before the next: adopted segments are reused, so about one
  // round's worth stays mapped (segments of 4 MiB).
  EXPECT_LT(stats.segments_mapped * 4, 2u * 210u) << stats.segments_mapped << " segments";
}

TEST(Hakmem, ConcurrentRemoteFreesKeepEveryBlockDistinct) {
  constexpr int kPerThread = 100000;
  std::atomic<void*> mailbox[256] = {};
  std::atomic<bool> done{false};
  // Block i carries i in its first and last word and goes through slot i % 256, whose blocks
  // come in the order i, i + 256, ...: a block handed out twice while in flight would show
  // another block's number, or two.
  int taken = 0;
  auto take = [&](int slot_index, void* p, int* expected_next) {
    auto* words = static_cast<int*>(p);
    int i = words[0];
    EXPECT_EQ(i, expected_next[slot_index]);
    EXPECT_EQ(words[(16 + (i % 64) * 16) / sizeof(int) - 1], i);
    expected_next[slot_index] += 256;
    taken++;
    hak_free(p);
  };
  int expected_next[256];
  for (int j = 0; j < 256; j++) expected_next[j] = j;
  std::thread consumer([&] {
    while (!done.load()) {
      for (int j = 0; j < 256; j++) {
        void* p = mailbox[j].exchange(nullptr);
        if (p) take(j, p, expected_next);
      }
    }
  });
  for (int i = 0; i < kPerThread; i++) {
    size_t size = 16 + (i % 64) * 16;
    auto* p = static_cast<int*>(hak_malloc(size));
    p[0] = i;
    p[size / sizeof(int) - 1] = i;
    void* expected = nullptr;
    while (!mailbox[i % 256].compare_exchange_weak(expected, p)) expected = nullptr;
  }
  done = true;
  consumer.join();
  for (int j = 0; j < 256; j++) {
    if (void* p = mailbox[j].load()) take(j, p, expected_next);
  }
  EXPECT_EQ(taken, kPerThread);
}

TEST(Hakmem, ThreadChurnDoesNotGrowTheHeap) {
  // Each short-lived thread frees what the previous one left (remote frees into abandoned
  // segments), allocates, frees half and leaves the other half: live memory stays constant.
  std::vector<void*> carried;
  auto churn = [&carried] {
    for (int t = 0; t < 50; t++) {
      std::thread([&carried] {
        for (void* p : carried) hak_free(p);
        carried.clear();
        std::vector<void*> v;
        for (int i = 0; i < 20000; i++) v.push_back(hak_malloc(32 + i % 900));
        for (size_t i = 0; i < v.size(); i++) {
          if (i % 2) carried.push_back(v[i]);
          else hak_free(v[i]);
        }
      }).join();
    }
  };
  churn();
  hak_stats_t before;
  hak_stats(&before);
  churn();
  hak_stats_t after;
  hak_stats(&after);
  EXPECT_LE(after.segments_mapped, before.segments_mapped + 1);
  for (void* p : carried) hak_free(p);
}

TEST(Hakmem, ForkedChildOfABusyParentCanAllocate) {
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  for (int t = 0; t < 3; t++) {
    workers.emplace_back([&] {
      while (!stop.load()) hak_free(hak_malloc(64));
    });
  }
  for (int i = 0; i < 20; i++) {
    pid_t pid = fork();
    if (pid == 0) {
      std::vector<void*> v;
      for (int k = 0; k < 10000; k++) v.push_back(hak_malloc(k % 3000));
      for (void* p : v) hak_free(p);
      _exit(0);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  stop = true;
  for (auto& w : workers) w.join();
}

// A fork can stop a thread inside a refill, after a slab's own frees became its free list and
// before the slab became its class's current one (or after a fresh slab was carved). The child
// takes the vanished thread's heap over with that list given back to its slab: left in place, the
// next refill of the slab would write over it, and its blocks would be lost.
TEST(Hakmem, AForkChildTakesOverASlabStoppedHalfWayIntoARefill) {
  const size_t size = 704;
  std::mutex m;
  std::condition_variable cv;
  bool stopped = false, done = false;
  std::thread refiller([&] {
    std::vector<void*> blocks;
    hak_slab_t* first = nullptr;
    for (;;) {  // until a block comes from a second slab: the first is full, no longer current
      void* p = hak_malloc(size);
      blocks.push_back(p);
      if (first == nullptr) first = hak_small_slab_of(p);
      if (hak_small_slab_of(p) != first) break;
    }
    hak_free(blocks[0]);   // onto the full slab's local_free
    hak_slab_take_local(first);  // where the refill stops
    std::unique_lock<std::mutex> lock(m);
    stopped = true;
    cv.notify_all();
    cv.wait(lock, [&] { return done; });
    lock.unlock();
    hak_slab_unload_free(first);  // the parent's refiller goes on as if it had not stopped
    for (size_t i = 1; i < blocks.size(); i++) hak_free(blocks[i]);
  });
  std::unique_lock<std::mutex> lock(m);
  cv.wait(lock, [&] { return stopped; });
  pid_t pid = fork();
  if (pid == 0) {
    std::vector<void*> v;  // enough for the child to adopt the refiller's segment
    for (int k = 0; k < 4000; k++) v.push_back(hak_malloc(size));
    for (void* p : v) hak_free(p);
    hak_check_report_t report;
    int ok = hak_check_heap(&report);
    if (!ok) fprintf(stderr, "%s\n", report.error);
    _exit(ok ? 0 : 1);
  }
  ASSERT_GE(pid, 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  done = true;
  cv.notify_all();
  lock.unlock();
  refiller.join();
}

TEST(Hakmem, RssFollowsLiveMemory) {
  constexpr size_t kBlocks = 256 * 1024;  // 256 MiB of 1 KiB blocks
  std::vector<void*> v(kBlocks);
  for (auto& p : v) memset(p = hak_malloc(1024), 1, 1024);
  hak_stats_t peak;
  hak_stats(&peak);
  for (void* p : v) hak_free(p);
  hak_trim();
  hak_stats_t after;
  hak_stats(&after);
  EXPECT_GT(peak.rss_bytes, 200u << 20);
  // ASan builds poison freed blocks: one shadow byte per 8 bytes, which stays resident, and
  // ASan's own allocator and quarantine hold some 20-30 MiB more (clang's runtime, fuzz config).
  size_t asan = HAK_ASAN ? kBlocks * 1024 / 8 + (32u << 20) : 0;
  EXPECT_LT(after.rss_bytes, peak.rss_bytes / 4 + asan) << after.rss_bytes << " of " << peak.rss_bytes;
}

// The block size behind p, a block of `requested` bytes. ASan builds report the requested size
// as usable (only those bytes are unpoisoned); the slab's block size is then read directly.
size_t Usable(void* p, size_t requested) {
  size_t usable = hak_usable_size(p);
  if (HAK_ASAN && usable == requested) {
    return hak_slab_of_shift(p, HAK_MEDIUM_SLAB_SHIFT)->block_size;
  }
  return usable;
}

// A thread of its own has a heap of its own: empty mid caches and no current slabs.
void InFreshThread(void (*body)()) { std::thread(body).join(); }

TEST(Hakmem, MidWmaxLetsARequestTakeALargerCachedBlock) {
  if (hak_config.ace) GTEST_SKIP() << "the adaptive cache engine sets the rounding limit";
  const int64_t saved = hak_config.mid_round_pct;
  hak_config.mid_round_pct = 125;
  InFreshThread([] {
    void* cached = hak_malloc(22000);  // class 22528, one above 20000's class of 20480
    hak_free(cached);
    void* p = hak_malloc(20000);
    EXPECT_EQ(p, cached) << "22528 is within 125% of 20000";
    EXPECT_EQ(Usable(p, 20000), 22528u);
    hak_free(p);
    void* far = hak_malloc(17000);  // class 18432: 22528 is 132% of 17000
    EXPECT_NE(far, p);
    hak_free(far);
  });
  hak_config.mid_round_pct = 100;
  InFreshThread([] {
    void* cached = hak_malloc(22000);
    hak_free(cached);
    void* p = hak_malloc(20000);
    EXPECT_NE(p, cached) << "no rounding at 100%";
    EXPECT_EQ(Usable(p, 20000), 20480u);
    hak_free(p);
  });
  hak_config.mid_round_pct = saved;
}

// The extra mid class, placed while threads run: a thread that made its heap before placement
// and one made after both allocate and free blocks of exactly the placed size, locally and
// remotely. In a child process: placement is once per process.
void PlaceExtraClassUnderThreads() {
  auto check = [](bool ok, const char* what) {
    if (!ok) {
      fprintf(stderr, "FAILED: %s\n", what);
      _exit(1);
    }
  };
  std::atomic<int> phase{0};
  std::vector<void*> from_early;
  std::thread early([&] {
    hak_free(hak_malloc(100));  // this thread's heap exists before placement
    phase = 1;
    while (phase.load() != 2) std::this_thread::yield();
    for (int i = 0; i < 2000; i++) {
      void* p = hak_malloc(4800);
      check(Usable(p, 4800) == 4864, "early thread: extra-class block");
      memset(p, 1, 4800);
      if (i % 2) from_early.push_back(p); else hak_free(p);
    }
  });
  while (phase.load() != 1) std::this_thread::yield();
  check(hak_size_class_place_extra(4864) == 1, "placement");
  check(hak_size_class_place_extra(8064) == 0, "placed twice");
  phase = 2;
  early.join();
  for (void* p : from_early) hak_free(p);  // remote frees of extra-class blocks (owner gone)
  std::thread late([&] {
    std::vector<void*> held;
    for (int i = 0; i < 3000; i++) held.push_back(hak_malloc(4700 + i % 100));
    for (size_t i = 0; i < held.size(); i++) {
      check(Usable(held[i], 4700 + i % 100) == 4864, "late thread: extra-class block");
    }
    for (void* p : held) hak_free(p);
    check(Usable(hak_malloc(4900), 4900) == 5120, "sizes above stay in their class");
  });
  late.join();
  hak_trim();
  hak_class_stats_t classes[128];
  size_t n = hak_class_stats(classes, 128);
  check(n > 80 && classes[80].block_size == 4864, "stats name the extra class's size");
  _exit(0);
}

TEST(HakmemDeathTest, ExtraClassPlacedWhileThreadsRun) {
  // A fresh process: the child starts threads, which a forked copy of this one may not. (Not
  // under qemu-user, which cannot re-execute the test binary.)
#if !defined(__aarch64__)
  GTEST_FLAG_SET(death_test_style, "threadsafe");
#endif
  EXPECT_EXIT(PlaceExtraClassUnderThreads(), testing::ExitedWithCode(0), "");
}

TEST(Hakmem, MidCacheReusesTheLastFreedBlockAndTrimEmptiesIt) {
  std::vector<void*> v;
  for (int i = 0; i < 2000; i++) v.push_back(hak_malloc(40000));
  void* last = v.back();
  for (void* p : v) hak_free(p);
  EXPECT_EQ(hak_malloc(40000), last) << "LIFO reuse of the most recently freed block";
  hak_free(last);
  hak_stats_t before;
  hak_stats(&before);
  hak_trim();
  hak_stats_t after;
  hak_stats(&after);
  EXPECT_LT(after.slab_bytes_in_use, before.slab_bytes_in_use) << "trim flushes the mid caches";
}

TEST(Hakmem, HugeCacheReusesFreedBlocksAndCallocStillZeroes) {
  const size_t n = 6u << 20;  // above HAKMEM_LARGE_MAX_KB: a huge block
  auto* a = static_cast<unsigned char*>(hak_malloc(n));
  ASSERT_NE(a, nullptr);
  memset(a, 0xee, n);
  hak_free(a);
  auto* b = static_cast<unsigned char*>(hak_calloc(1, n - 8192));
  EXPECT_EQ(b, a) << "the cached block fits within the rounding limit";
  for (size_t i = 0; i < n - 8192; i += 4096) ASSERT_EQ(b[i], 0) << i;
  hak_free(b);
  auto* c = static_cast<unsigned char*>(hak_malloc(2 * n));  // grows the cached block
  ASSERT_NE(c, nullptr);
  memset(c, 1, 2 * n);
  EXPECT_GE(hak_usable_size(c), 2 * n);
  hak_free(c);
  hak_trim();
  hak_stats_t stats;
  hak_stats(&stats);
  EXPECT_EQ(stats.huge_blocks, 0u);
}

TEST(Hakmem, HugeBlocksEndOnATwoMiBBoundary) {
  // The page before a huge block holds its header; the mapping ends on a 2 MiB boundary so that
  // its last part can be a transparent huge page too (no tail of 4 KiB faults).
  const size_t two_mib = 2u << 20;
  for (size_t n : {(5u << 20) + 1, (9u << 20) - 4096, 12u << 20}) {
    void* p = hak_malloc(n);
    ASSERT_NE(p, nullptr);
    size_t usable = hak_usable_size(p);
    EXPECT_GE(usable, n);
    EXPECT_LT(usable - n, two_mib);
    EXPECT_EQ((usable + 4096) % two_mib, 0u) << n;
    void* q = hak_realloc(p, n + two_mib);
    ASSERT_NE(q, nullptr);
    EXPECT_EQ((hak_usable_size(q) + 4096) % two_mib, 0u) << n;
    hak_free(q);
  }
}

TEST(HakmemDeathTest, HugeDoubleFreeIsDetected) {
  void* p = hak_malloc(8u << 20);
  EXPECT_DEATH(
      {
        hak_free(p);
        hak_free(p);
      },
      "hakmem: double free at 0x[0-9a-f]+: free\\(\\) of a huge block that was freed already");
  hak_free(p);
}

TEST(HakmemDeathTest, DoubleFreeIsDetected) {
  EXPECT_DEATH(
      {
        // Fill a slab, move on to the next one, then empty the first with one block freed twice.
        std::vector<void*> v;
        for (int i = 0; i < 20000; i++) v.push_back(hak_malloc(48));
        hak_free(v[0]);
        hak_free(v[0]);
        for (size_t i = 1; i < v.size(); i++) hak_free(v[i]);
      },
      "hakmem: .*double free");
}

}  // namespace
