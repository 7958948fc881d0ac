// slab box: carving, the three free lists and their counts, remote frees, block validation and
// double-free detection. Slabs live in a real segment taken from the segment box.
#include "hakmem/slab.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>
#include <vector>

#include "hakmem/size_class.h"

namespace {

class SlabTest : public ::testing::Test {
 protected:
  void SetUp() override {
    segment_ = hak_segment_acquire(HAK_KIND_SMALL, nullptr, 0x7770);
    ASSERT_NE(segment_, nullptr);
    index_ = hak_segment_take_slab(segment_, 5);
    slab_ = hak_slab_init(segment_, (unsigned)index_, 3, 48);
  }
  void TearDown() override {
    hak_segment_slab_freed(segment_, (unsigned)index_, 5, 1);
    hak_segment_release(segment_);
  }
  void* Pop() {
    hak_block_t* b = slab_->free;
    if (b != nullptr) {
      slab_->free = hak_block_next(b);
      hak_block_handed_out(b);
    }
    return b;
  }
  hak_segment_t* segment_ = nullptr;
  int index_ = -1;
  hak_slab_t* slab_ = nullptr;
};

TEST_F(SlabTest, InitComputesCapacityBelowTheHeaders) {
  EXPECT_EQ(slab_->block_size, 48u);
  // Slab 0 ends with the segment's headers, other small slabs hold blocks to their end; secure
  // builds keep a guard page after the blocks.
  size_t kept = index_ == 0 ? HAK_SEGMENT_HEADER_SIZE + 64 * HAK_SLAB_HEADER_SIZE : 0;
  if (HAKMEM_SECURE) kept = hak_align_up(kept, 4096) + 4096;
  EXPECT_EQ(slab_->capacity, ((1u << HAK_SMALL_SLAB_SHIFT) - kept) / 48);
  EXPECT_EQ(hak_small_slab_of(hak_slab_start(slab_)), slab_);
  EXPECT_EQ(hak_small_slab_of(hak_slab_start(slab_) + 48 * (slab_->capacity - 1)), slab_);
}

TEST(SlabLayout, HeadersOfASegmentsSlabsAreConsecutiveAtTheEndOfSlabZero) {
  for (hak_segment_kind_t kind : {HAK_KIND_SMALL, HAK_KIND_MEDIUM}) {
    hak_segment_t* segment = hak_segment_acquire(kind, nullptr, 0x7770);
    ASSERT_NE(segment, nullptr);
    uint8_t* base = reinterpret_cast<uint8_t*>(hak_segment_of(segment));
    size_t slab_size = hak_segment_slab_size(segment);
    EXPECT_EQ(reinterpret_cast<uint8_t*>(hak_slab_at(segment, segment->slab_count - 1)) +
                  HAK_SLAB_HEADER_SIZE, base + slab_size) << "the last header ends slab 0";
    EXPECT_EQ(reinterpret_cast<uint8_t*>(segment) + HAK_SEGMENT_HEADER_SIZE,
              reinterpret_cast<uint8_t*>(hak_slab_at(segment, 0)));
    for (unsigned i = 0; i < segment->slab_count; i++) {
      hak_slab_t* header = hak_slab_at(segment, i);
      EXPECT_EQ(header, hak_slab_at(segment, 0) + i);
      uint8_t* start = base + (size_t)i * slab_size;
      // Every address of the slab, first byte to last, finds its header.
      for (size_t off : {(size_t)0, (size_t)16, slab_size / 2, slab_size - 1}) {
        EXPECT_EQ(hak_slab_of_shift(start + off, segment->slab_shift), header) << i << " " << off;
      }
      EXPECT_LE(hak_segment_slab_usable(segment->slab_shift, i),
                i == 0 ? (size_t)(reinterpret_cast<uint8_t*>(segment) - base) : slab_size);
    }
    hak_segment_release(segment);
  }
}

TEST_F(SlabTest, CarveHandsOutDistinctAlignedBlocksUntilFull) {
  std::set<void*> seen;
  unsigned total = 0;
  for (unsigned n; (n = hak_slab_carve(slab_, 100)) > 0;) {
    total += n;
    for (void* p; (p = Pop()) != nullptr;) {
      EXPECT_TRUE(seen.insert(p).second);
      EXPECT_TRUE(hak_slab_is_block(slab_, p));
      EXPECT_FALSE(hak_slab_is_block(slab_, static_cast<char*>(p) + 8)) << "interior pointer";
    }
  }
  EXPECT_EQ(total, slab_->capacity);
  EXPECT_EQ(slab_->carved, slab_->capacity);
  EXPECT_EQ(slab_->used, slab_->capacity);
}

TEST_F(SlabTest, UncarvedSpaceIsNotABlock) {
  hak_slab_carve(slab_, 4);
  EXPECT_FALSE(hak_slab_is_block(slab_, hak_slab_start(slab_) + 4 * 48));
}

TEST_F(SlabTest, LocalFreesBecomeTheNextFreeList) {
  hak_slab_carve(slab_, 8);
  std::vector<void*> blocks;
  for (void* p; (p = Pop()) != nullptr;) blocks.push_back(p);
  for (size_t i = 0; i + 1 < blocks.size(); i++) EXPECT_EQ(hak_slab_free_local(slab_, blocks[i], HAK_SMALL_SLAB_SHIFT), 0);
  EXPECT_EQ(hak_slab_free_local(slab_, blocks.back(), HAK_SMALL_SLAB_SHIFT), 1) << "the last free empties the slab";
  EXPECT_EQ(slab_->used, 0u);
  hak_slab_check_empty(slab_);
  EXPECT_EQ(hak_slab_take_local(slab_), 1);
  EXPECT_EQ(slab_->used, 8u);
  EXPECT_EQ(Pop(), blocks.back()) << "LIFO: the most recently freed block is reused first";
}

TEST_F(SlabTest, RemoteFreesAreCollectedInOneBatch) {
  hak_slab_carve(slab_, 64);
  std::vector<void*> blocks;
  for (void* p; (p = Pop()) != nullptr;) blocks.push_back(p);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; t++) {
    threads.emplace_back([&, t] {
      for (size_t i = t; i < blocks.size(); i += 4) hak_slab_free_remote(slab_, blocks[i]);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(hak_slab_collect_remote(slab_), 64u);
  EXPECT_EQ(hak_slab_collect_remote(slab_), 0u) << "the list was taken whole";
  EXPECT_EQ(slab_->used, 0u);
  hak_slab_check_empty(slab_);
}

// Pushes blocks[first, first + n) as one linked batch, as remote.h hands batches over.
void PushBatch(hak_slab_t* slab, const std::vector<void*>& blocks, size_t first, size_t n) {
  for (size_t i = first; i < first + n; i++) {
    auto* b = static_cast<hak_block_t*>(blocks[i]);
    hak_block_mark_free(b, HAK_SMALL_SLAB_SHIFT);
    hak_block_set_next(b, i + 1 < first + n ? static_cast<hak_block_t*>(blocks[i + 1]) : nullptr);
  }
  hak_slab_free_remote_list(slab, static_cast<hak_block_t*>(blocks[first]),
                            static_cast<hak_block_t*>(blocks[first + n - 1]), (unsigned)n);
}

size_t Length(const hak_block_t* list) {
  size_t n = 0;
  for (; list != nullptr; list = hak_block_next(list)) n++;
  return n;
}

TEST_F(SlabTest, TheRemoteWordCountsWhatItHolds) {
  hak_slab_carve(slab_, 16);
  std::vector<void*> blocks;
  for (void* p; (p = Pop()) != nullptr;) blocks.push_back(p);
  PushBatch(slab_, blocks, 0, 3);
  PushBatch(slab_, blocks, 3, 5);
  uintptr_t word = __atomic_load_n(&slab_->remote, __ATOMIC_RELAXED);
  EXPECT_EQ(hak_slab_remote_count(word), 8u);
  EXPECT_EQ(hak_slab_remote_head(word), blocks[3]) << "the batch pushed last comes first";
  EXPECT_EQ(Length(hak_slab_remote_head(word)), 8u);

  // Onto an empty local_free, and then in front of a non-empty one.
  EXPECT_EQ(hak_slab_collect_remote(slab_), 8u);
  EXPECT_EQ(slab_->used, 8u);
  EXPECT_EQ(Length(slab_->local_free), 8u);
  PushBatch(slab_, blocks, 8, 4);
  EXPECT_EQ(hak_slab_collect_remote(slab_), 4u);
  EXPECT_EQ(slab_->used, 4u);
  EXPECT_EQ(slab_->local_free, blocks[8]);
  EXPECT_EQ(Length(slab_->local_free), 12u);
  for (size_t i = 12; i < 16; i++) hak_slab_free_local(slab_, blocks[i], HAK_SMALL_SLAB_SHIFT);
  hak_slab_check_empty(slab_);
}

TEST_F(SlabTest, UnloadMovesTheFreeListBack) {
  hak_slab_carve(slab_, 10);
  void* p = Pop();
  hak_slab_unload_free(slab_);
  EXPECT_EQ(slab_->free, nullptr);
  EXPECT_EQ(slab_->used, 1u) << "only the block handed out stays used";
  EXPECT_EQ(hak_slab_free_local(slab_, p, HAK_SMALL_SLAB_SHIFT), 1);
  hak_slab_check_empty(slab_);
}

// The block test against division, for every class: at every offset near each block start of a
// medium slab, and at every offset of a small slab for the tiny classes.
TEST(BlockTest, MatchesDivisionForEveryClassAndOffset) {
  for (unsigned cls = 0; cls < HAK_REGULAR_CLASSES; cls++) {
    const uint64_t size = hak_class_size(cls);
    const uint64_t slab = cls < HAK_TINY_CLASSES ? (uint64_t{1} << HAK_SMALL_SLAB_SHIFT) : HAK_MEDIUM_SLAB_SIZE;
    const uint64_t magic = hak_block_magic(size);
    for (unsigned carved : {0u, 1u, 7u, (unsigned)(slab / size / 2), (unsigned)(slab / size)}) {
      const uint64_t limit = hak_block_limit(size, carved);
      auto check = [&](uint64_t offset) {
        bool start = offset % size == 0 && offset / size < carved;
        ASSERT_EQ(offset * magic < limit, start) << size << " " << offset << " " << carved;
      };
      if (cls < HAK_TINY_CLASSES) {
        for (uint64_t offset = 0; offset < slab; offset++) check(offset);
      } else {
        for (uint64_t q = 0; q * size < slab; q++) {
          for (uint64_t r : {uint64_t{0}, uint64_t{1}, uint64_t{8}, uint64_t{16}, size / 2, size - 1}) {
            if (q * size + r < slab) check(q * size + r);
          }
        }
      }
    }
  }
}

using SlabDeathTest = SlabTest;

TEST_F(SlabDeathTest, DoubleLocalFreeIsReportedWhenTheSlabEmpties) {
  hak_slab_carve(slab_, 2);
  void* a = Pop();
  void* b = Pop();
  hak_slab_free_local(slab_, a, HAK_SMALL_SLAB_SHIFT);
  hak_slab_free_local(slab_, b, HAK_SMALL_SLAB_SHIFT);
  EXPECT_DEATH(
      {
        slab_->used = 1;  // as if `a` were freed a second time before the slab emptied
        hak_slab_free_local(slab_, a, HAK_SMALL_SLAB_SHIFT);
        hak_slab_check_empty(slab_);
      },
      "hakmem: double free detected");
}

TEST_F(SlabDeathTest, RemoteListLongerThanTheSlabIsCorruption) {
  hak_slab_carve(slab_, 2);
  void* a = Pop();
  Pop();
  EXPECT_DEATH(
      {
        // Never carved: asan builds poison it.
        HAK_UNPOISON(hak_slab_start(slab_) + 96, sizeof(hak_block_t));
        hak_slab_free_remote(slab_, a);
        hak_slab_free_remote(slab_, hak_slab_start(slab_) + 48);
        hak_slab_free_remote(slab_, hak_slab_start(slab_) + 96);
        slab_->used = 1;
        hak_slab_collect_remote(slab_);
      },
      "hakmem: double free or corrupted remote free list");
}

TEST_F(SlabDeathTest, ARemoteListShorterThanItsCountIsCorruption) {
  hak_slab_carve(slab_, 8);
  std::vector<void*> blocks;
  for (void* p; (p = Pop()) != nullptr;) blocks.push_back(p);
  hak_slab_free_local(slab_, blocks[7], HAK_SMALL_SLAB_SHIFT);  // local_free is walked onto
  EXPECT_DEATH(
      {
        PushBatch(slab_, blocks, 0, 3);
        hak_block_set_next(static_cast<hak_block_t*>(blocks[1]), nullptr);  // a lost link
        hak_slab_collect_remote(slab_);
      },
      "hakmem: corrupted remote free list");
}

}  // namespace
