// The heap invariant walker: quiet on a consistent heap, loud on a corrupted free list or a lost
// block. Counts are taken relative to a first walk, as the test binary shares one allocator.
#include "hakmem/check.h"

#include <gtest/gtest.h>
#include <string.h>

#include <thread>
#include <utility>
#include <vector>

#include "hakmem/hakmem.h"
#include "hakmem/slab.h"

namespace {

hak_check_report_t Walk() {
  hak_check_report_t report;
  EXPECT_TRUE(hak_check_heap(&report)) << report.error;
  return report;
}

// Free-list links through the slab box's accessors (encoded in secure builds).
using Block = hak_block_t;
Block* Next(Block* b) { return hak_block_next(b); }
void SetNext(Block* b, Block* next) { hak_block_set_next(b, next); }

TEST(Check, CountsLiveFreeRemoteAndCachedBlocks) {
  hak_check_report_t before = Walk();
  std::vector<void*> tiny, mid;
  for (int i = 0; i < 1000; i++) tiny.push_back(hak_malloc(40));
  for (int i = 0; i < 40; i++) mid.push_back(hak_malloc(6000));
  void* large = hak_malloc(1 << 20);
  void* huge = hak_malloc(8 << 20);
  hak_check_report_t held = Walk();
  EXPECT_EQ(held.live_blocks, before.live_blocks + 1040);
  EXPECT_EQ(held.large_blocks, before.large_blocks + 1);
  EXPECT_EQ(held.huge_blocks, before.huge_blocks + 1);

  // Another thread frees half the tiny blocks: they wait on remote lists.
  std::thread([&] {
    for (size_t i = 0; i < tiny.size(); i += 2) hak_free(tiny[i]);
  }).join();
  hak_free(mid.back());  // a mid block freed by its owner goes to the mid cache
  mid.pop_back();
  hak_check_report_t freed = Walk();
  EXPECT_EQ(freed.live_blocks, before.live_blocks + 500 + 39);
  EXPECT_GE(freed.remote_blocks, 500u);
  EXPECT_GE(freed.cached_blocks, 1u);

  // Trim collects every remote list of the calling thread's heap.
  hak_trim();
  hak_check_report_t trimmed = Walk();
  EXPECT_EQ(trimmed.remote_blocks, 0u);
  EXPECT_EQ(trimmed.cached_blocks, 0u);
  EXPECT_EQ(trimmed.live_blocks, before.live_blocks + 500 + 39);

  for (size_t i = 1; i < tiny.size(); i += 2) hak_free(tiny[i]);
  for (void* p : mid) hak_free(p);
  hak_free(large);
  hak_free(huge);
  hak_check_report_t after = Walk();
  EXPECT_EQ(after.live_blocks, before.live_blocks);
#if HAKMEM_DEBUG >= 2
  EXPECT_EQ(after.counters_checked, 1);
#endif
}

// Two blocks of 432 bytes in a slab that is no longer its class's current one, so that freeing
// them puts them on its local_free list (frees into the current slab go onto its free list, which
// no count ties to the others). `held` gets every block allocated to get there.
std::pair<Block*, Block*> TwoBlocksOffTheCurrentSlab(std::vector<void*>* held) {
  void* first = hak_malloc(432);
  held->push_back(first);
  hak_slab_t* slab = hak_small_slab_of(first);
  while (slab->list == HAK_SLAB_CURRENT) held->push_back(hak_malloc(432));
  EXPECT_EQ(hak_small_slab_of((*held)[1]), slab);
  return {static_cast<Block*>((*held)[0]), static_cast<Block*>((*held)[1])};
}

void FreeTheRest(const std::vector<void*>& held, const Block* a, const Block* b) {
  for (void* p : held) {
    if (p != a && p != b) hak_free(p);
  }
}

TEST(Check, DetectsAForeignPointerOnAFreeList) {
  std::vector<void*> held;
  auto [a, b] = TwoBlocksOffTheCurrentSlab(&held);
  hak_free(a);  // a heads its slab's local_free list
  Block* saved = Next(a);
  Block outside;
  SetNext(a, &outside);
  hak_check_report_t report;
  EXPECT_FALSE(hak_check_heap(&report));
  EXPECT_NE(strstr(report.error, "which is not one of its blocks"), nullptr) << report.error;
  SetNext(a, saved);
  Walk();
  hak_free(b);
  FreeTheRest(held, a, b);
}

TEST(Check, DetectsACycle) {
  std::vector<void*> held;
  auto [a, b] = TwoBlocksOffTheCurrentSlab(&held);
  hak_free(a);
  hak_free(b);  // local_free: b -> a -> ...
  ASSERT_EQ(Next(b), a);
  Block* saved = Next(a);
  SetNext(a, b);
  hak_check_report_t report;
  EXPECT_FALSE(hak_check_heap(&report));
  EXPECT_NE(strstr(report.error, "on a free list twice"), nullptr) << report.error;
  SetNext(a, saved);
  Walk();
  FreeTheRest(held, a, b);
}

TEST(Check, DetectsALostBlock) {
  std::vector<void*> held;
  auto [a, b] = TwoBlocksOffTheCurrentSlab(&held);
  hak_free(a);
  hak_free(b);  // local_free: b -> a -> ...
  ASSERT_EQ(Next(b), a);
  SetNext(b, Next(a));  // a is now neither handed out nor free
  hak_check_report_t report;
  EXPECT_FALSE(hak_check_heap(&report));
  EXPECT_NE(strstr(report.error, "a block was lost or freed twice"), nullptr) << report.error;
  SetNext(b, a);
  Walk();
  FreeTheRest(held, a, b);
}

TEST(Check, FreesIntoTheCurrentSlabGoBackToMallocFirst) {
  void* keep = hak_malloc(432);
  void* a = hak_malloc(432);
  ASSERT_EQ(hak_small_slab_of(a)->list, HAK_SLAB_CURRENT);
  hak_free(a);
  EXPECT_EQ(hak_small_slab_of(a)->free, a) << "the next malloc of the class reuses it";
  EXPECT_EQ(hak_malloc(432), a);
  Walk();
  hak_free(a);
  hak_free(keep);
}

}  // namespace
