// Cross-thread frees wait in the freeing thread's batches (remote.h): the invariant walker finds
// them, they reach their slabs when a batch fills, at trim, at thread exit and in a fork child,
// and a batched block freed again is a double free.
#include "hakmem/remote.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "hakmem/check.h"
#include "hakmem/config.h"
#include "hakmem/hakmem.h"
#include "hakmem/heap.h"
#include "hakmem/size_class.h"
#include "hakmem/slab.h"

namespace {

hak_check_report_t Walk() {
  hak_check_report_t report;
  EXPECT_TRUE(hak_check_heap(&report)) << report.error;
  return report;
}

// A thread that runs each step it is given, in order, and waits between them: its heap and its
// batches stay alive while the test looks at them.
class Freer {
 public:
  Freer() : thread_([this] { Loop(); }) {}
  ~Freer() {
    Run(nullptr);
    thread_.join();
  }
  // Runs step on the thread and waits for it to finish (nullptr ends the thread).
  void Run(std::function<void()> step) {
    std::unique_lock<std::mutex> lock(mu_);
    step_ = step ? step : [this] { done_ = true; };
    pending_ = true;
    cv_.notify_all();
    cv_.wait(lock, [this] { return !pending_; });
  }
  hak_remote_out_t* out() { return out_; }

 private:
  void Loop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!done_) {
      cv_.wait(lock, [this] { return pending_; });
      step_();
      out_ = hak_tls.heap == HAK_EMPTY_HEAP ? nullptr : &hak_tls.heap->remote;
      pending_ = false;
      cv_.notify_all();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::function<void()> step_;
  bool pending_ = false;
  bool done_ = false;
  hak_remote_out_t* out_ = nullptr;
  std::thread thread_;
};

std::vector<void*> Allocate(size_t n, size_t size) {
  std::vector<void*> blocks;
  for (size_t i = 0; i < n; i++) blocks.push_back(hak_malloc(size));
  return blocks;
}

void FreeAll(const std::vector<void*>& blocks) {
  for (void* p : blocks) hak_free(p);
}

TEST(RemoteBatch, BlocksWaitInTheFreeingThreadsBatchUntilItIsTrimmed) {
  std::vector<void*> blocks = Allocate(10, 48);
  hak_check_report_t before = Walk();
  Freer freer;
  freer.Run([&] { FreeAll(blocks); });
  ASSERT_NE(freer.out(), nullptr);
  EXPECT_EQ(hak_remote_held(freer.out()), 10u);
  hak_check_report_t batched = Walk();
  EXPECT_EQ(batched.batched_blocks, before.batched_blocks + 10);
  EXPECT_EQ(batched.live_blocks, before.live_blocks - 10);
  EXPECT_EQ(batched.remote_blocks, before.remote_blocks);

  freer.Run([] { hak_trim(); });
  EXPECT_EQ(hak_remote_held(freer.out()), 0u);
  hak_check_report_t handed = Walk();
  EXPECT_EQ(handed.batched_blocks, before.batched_blocks);
  EXPECT_EQ(handed.remote_blocks, before.remote_blocks + 10);
  EXPECT_EQ(handed.live_blocks, before.live_blocks - 10);
}

TEST(RemoteBatch, AFullBatchIsHandedOverAtOnce) {
  // 1 KiB blocks: 16 KiB make a batch.
  const uint32_t limit = HAK_REMOTE_BATCH_BYTES / 1024;
  std::vector<void*> blocks = Allocate(limit, 1024);
  hak_slab_t* slab = hak_small_slab_of(blocks[0]);
  for (void* p : blocks) ASSERT_EQ(hak_small_slab_of(p), slab) << "the test wants one slab";
  hak_check_report_t before = Walk();
  Freer freer;
  freer.Run([&] {
    for (uint32_t i = 0; i + 1 < limit; i++) hak_free(blocks[i]);
  });
  EXPECT_EQ(hak_remote_held(freer.out()), limit - 1);
  freer.Run([&] { hak_free(blocks[limit - 1]); });
  EXPECT_EQ(hak_remote_held(freer.out()), 0u);
  EXPECT_EQ(Walk().remote_blocks, before.remote_blocks + limit);
}

TEST(RemoteBatch, BlocksOfABatchsWorthOrMoreGoAtOnce) {
  std::vector<void*> blocks = Allocate(4, HAK_REMOTE_BATCH_BYTES);
  hak_check_report_t before = Walk();
  Freer freer;
  freer.Run([&] { FreeAll(blocks); });
  EXPECT_EQ(hak_remote_held(freer.out()), 0u);
  EXPECT_EQ(Walk().remote_blocks, before.remote_blocks + 4);
}

TEST(RemoteBatch, WhatABatchHoldsIsBoundedWhateverTheSlabs) {
  // Blocks of every tiny and mid class, many slabs each: slots are taken over, never grown.
  std::vector<void*> blocks;
  for (size_t size = 16; size <= 65536; size += size < 1024 ? 16 : 1024) {
    std::vector<void*> some = Allocate(size <= 1024 ? 200 : 8, size);
    blocks.insert(blocks.end(), some.begin(), some.end());
  }
  Freer freer;
  freer.Run([&] { FreeAll(blocks); });
  uint32_t held = hak_remote_held(freer.out());
  EXPECT_GT(held, 0u);
  EXPECT_LE(held, HAK_REMOTE_SLOTS * (HAK_REMOTE_BATCH_BLOCKS - 1));
  size_t bytes = 0;
  for (const hak_remote_batch_t& batch : freer.out()->slots) {
    if (batch.slab == nullptr) continue;
    EXPECT_LT(batch.count, batch.limit);
    bytes += (size_t)batch.count * batch.slab->block_size;
  }
  EXPECT_LE(bytes, (size_t)HAK_REMOTE_SLOTS * HAK_REMOTE_BATCH_BYTES);
  Walk();
}

TEST(RemoteBatch, ThreadExitHandsEveryBatchOver) {
  std::vector<void*> blocks = Allocate(100, 200);
  hak_check_report_t before = Walk();
  std::thread([&] { FreeAll(blocks); }).join();
  hak_check_report_t after = Walk();
  EXPECT_EQ(after.batched_blocks, before.batched_blocks);
  EXPECT_EQ(after.live_blocks, before.live_blocks - 100);
}

TEST(RemoteBatch, AForkChildTakesOverTheBatchesOfThreadsItDoesNotHave) {
  std::vector<void*> blocks = Allocate(20, 96);
  hak_check_report_t before = Walk();
  Freer freer;
  freer.Run([&] { FreeAll(blocks); });
  ASSERT_EQ(hak_remote_held(freer.out()), 20u);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    hak_check_report_t report;
    int ok = hak_check_heap(&report);
    // The freeing thread is gone here: its batch went to the slab's remote list, none lost.
    int handed = report.batched_blocks == before.batched_blocks &&
                 report.remote_blocks + report.free_blocks >= before.remote_blocks + 20 &&
                 report.live_blocks == before.live_blocks - 20;
    _exit(ok && handed ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(hak_remote_held(freer.out()), 20u);  // the parent's freer still holds them
}

// A thread that stops after freeing into another thread's slabs (here: it waits for its next
// step) does not keep its batches: the purger's thread hands them over once a pass finds it did
// nothing since the pass before, between half a purge delay and a delay later.
TEST(RemoteBatch, ThePurgerHandsOverTheBatchesOfAThreadThatStopped) {
  if (!hak_config.purger) GTEST_SKIP() << "HAKMEM_PURGER=0";
  std::vector<void*> blocks = Allocate(10, 48);
  hak_check_report_t before = Walk();
  Freer freer;
  freer.Run([&] { FreeAll(blocks); });
  ASSERT_TRUE(hak_remote_holds(freer.out()));
  const int64_t delay_ms = hak_config.purge_delay_ms;
  for (int64_t waited = 0; hak_remote_holds(freer.out()) && waited < 8 * delay_ms; waited += 10) {
    usleep(10 * 1000);
  }
  EXPECT_FALSE(hak_remote_holds(freer.out())) << "after " << 8 * delay_ms << " ms";
  hak_stats_t stats;
  hak_stats(&stats);
  EXPECT_GE(stats.remote_takeovers, 1u);
  hak_check_report_t handed = Walk();
  EXPECT_EQ(handed.batched_blocks, before.batched_blocks);
  EXPECT_EQ(handed.remote_blocks, before.remote_blocks + 10);
  EXPECT_EQ(handed.live_blocks, before.live_blocks - 10);
}

TEST(RemoteBatchDeathTest, FreeingABatchedBlockAgainIsADoubleFree) {
  // The default death test style forks: the freeing thread is started in the child.
  void* keep = hak_malloc(48);
  void* block = hak_malloc(48);
  EXPECT_DEATH(
      {
        Freer freer;
        freer.Run([&] { hak_free(block); });
        freer.Run([&] { hak_free(block); });
      },
      "hakmem: double free at 0x[0-9a-f]+: free\\(\\) of a 48-byte block that is free already");
  hak_free(block);
  hak_free(keep);
}

TEST(RemoteBatch, TheWalkerCatchesACycleInABatch) {
  std::vector<void*> blocks = Allocate(2, 48);
  Freer freer;
  freer.Run([&] { FreeAll(blocks); });
  auto* last = static_cast<hak_block_t*>(blocks[1]);  // the batch: last -> first
  auto* first = static_cast<hak_block_t*>(blocks[0]);
  ASSERT_EQ(hak_block_next(last), first);
  hak_block_t* saved = hak_block_next(first);
  hak_block_set_next(first, last);
  hak_remote_batch_t* batch = hak_remote_slot(freer.out(), hak_small_slab_of(first));
  hak_block_t* tail = batch->tail;
  batch->tail = nullptr;  // the walk would stop at the tail before going round
  hak_check_report_t report;
  EXPECT_FALSE(hak_check_heap(&report));
  EXPECT_NE(strstr(report.error, "(remote batch list)"), nullptr) << report.error;
  hak_block_set_next(first, saved);
  batch->tail = tail;
  Walk();
}

hak_class_stats_t ClassStats(unsigned cls) {
  hak_class_stats_t stats[HAK_CLASS_COUNT];
  hak_class_stats(stats, HAK_CLASS_COUNT);
  return stats[cls];
}

size_t ClassSlabs(unsigned cls) { return ClassStats(cls).slabs; }

// Allocates blocks of `size` until the `count`-th slab its class goes through is the current
// one; returns the blocks of each of those slabs, in order.
std::vector<std::vector<void*>> FillSlabs(size_t size, size_t count) {
  std::vector<std::vector<void*>> slabs;
  hak_slab_t* current = nullptr;
  while (slabs.size() < count) {
    void* p = hak_malloc(size);
    if (hak_small_slab_of(p) != current) {
      current = hak_small_slab_of(p);
      slabs.emplace_back();
    }
    slabs.back().push_back(p);
  }
  return slabs;
}

// Allocates blocks of `size` from slab `current`, onto *blocks, until one comes from another slab:
// returns that one.
void* AllocatePast(const hak_slab_t* current, size_t size, std::vector<void*>* blocks) {
  void* p;
  while (hak_small_slab_of(p = hak_malloc(size)) == current) blocks->push_back(p);
  return p;
}

// A slab that ran out goes on its class's full list; once other threads have freed into it, the
// owner takes it up again before a fresh slab, which would fault in more pages (larson's RSS).
// Nine slabs: a refill once took a fresh slab without looking at a full list of more than eight.
TEST(RemoteBatch, AFullSlabWithRemoteFreesIsReusedBeforeAFreshSlab) {
  const size_t size = 896;  // a class no other test here uses
  std::vector<std::vector<void*>> slabs = FillSlabs(size, 9);
  hak_slab_t* current = hak_small_slab_of(slabs.back()[0]);
  std::vector<void*>& first = slabs[0];
  std::vector<void*> freed(first.begin(), first.begin() + first.size() / 2);
  first.erase(first.begin(), first.begin() + first.size() / 2);
  Freer freer;
  freer.Run([&] {
    FreeAll(freed);
    hak_trim();  // hands the batch over to the slab's remote list
  });
  size_t slabs_before = ClassSlabs(hak_size_class(size));
  void* p = AllocatePast(current, size, &slabs.back());
  EXPECT_EQ(ClassSlabs(hak_size_class(size)), slabs_before) << "a fresh slab was taken";
  hak_free(p);
  for (const std::vector<void*>& blocks : slabs) FreeAll(blocks);
  Walk();
}

// A full slab that other threads' frees emptied is taken up again as it is, its blocks already
// carved: giving it back to its segment and taking a slab anew would carve and walk it again
// (larson cut 72,000 blocks of 768 bytes this way in 24 M operations; now 340).
TEST(RemoteBatch, AFullSlabEmptiedByOtherThreadsIsReusedWithoutCarving) {
  const size_t size = 832;  // a class no other test here uses
  const unsigned cls = hak_size_class(size);
  std::vector<std::vector<void*>> slabs = FillSlabs(size, 3);
  hak_slab_t* current = hak_small_slab_of(slabs.back()[0]);
  while (current->carved < current->capacity) slabs.back().push_back(hak_malloc(size));
  hak_slab_t* emptied = hak_small_slab_of(slabs[0][0]);
  Freer freer;
  freer.Run([&] {
    FreeAll(slabs[0]);
    hak_trim();  // hands the batch over to the slab's remote list
  });
  slabs[0].clear();
  unsigned long long fresh_before = ClassStats(cls).fresh_blocks;
  void* p = AllocatePast(current, size, &slabs.back());
  EXPECT_EQ(hak_small_slab_of(p), emptied);
  EXPECT_EQ(ClassStats(cls).fresh_blocks, fresh_before) << "blocks were carved again";
  hak_free(p);
  for (const std::vector<void*>& blocks : slabs) FreeAll(blocks);
  Walk();
}

}  // namespace
