// Bad frees in every build (release and secure alike): each one aborts with one line that says
// what was wrong, before anything is corrupted. Interior, misaligned and never handed out
// pointers fail the block test; double frees find the free mark (slab.h). Also realloc and
// malloc_usable_size of such pointers, and aligned requests while mid rounding is on (BUILD runs
// this binary with HAKMEM_MID_ROUND_PCT=125).
#include <gtest/gtest.h>
#include <stdint.h>
#include <string.h>

#include <string>
#include <thread>
#include <vector>

#include "hakmem/hakmem.h"
#include "hakmem/heap.h"
#include "hakmem/size_class.h"
#include "hakmem/slab.h"

namespace {

const char kAddr[] = "0x[0-9a-f]+";

// The one line hakmem prints before it aborts (qemu-user may add a line of its own).
std::string Line(const std::string& what, const std::string& detail) {
  return "^hakmem: " + what + " at " + kAddr + ": " + detail + "; aborting\n(qemu: [^\n]*\n)?$";
}

std::string Interior(const char* op, size_t into, size_t block) {
  return Line("interior pointer", std::string(op) + "\\(\\) of an address " + std::to_string(into) +
                                      (into == 1 ? " byte" : " bytes") + " into the " +
                                      std::to_string(block) + "-byte block at " + kAddr);
}

// block 0: any size (mid rounding may serve a request from a larger class).
std::string FreeAlready(const char* what, const char* op, size_t block) {
  return Line(what, std::string(op) + "\\(\\) of a " + (block ? std::to_string(block) : "[0-9]+") +
                        "-byte block that is free already \\(freed before, or carved and never "
                        "handed out\\)");
}

std::string DoubleFree(size_t block) { return FreeAlready("double free", "free", block); }

char* Alloc(size_t n) { return static_cast<char*>(hak_malloc(n)); }

TEST(BadFreeDeathTest, InteriorAndMisalignedTinyPointers) {
  char* p = Alloc(48);
  EXPECT_DEATH(hak_free(p + 1), Interior("free", 1, 48));
  EXPECT_DEATH(hak_free(p + 8), Interior("free", 8, 48));
  EXPECT_DEATH(hak_free(p + 32), Interior("free", 32, 48));
  char* q = Alloc(1000);
  EXPECT_DEATH(hak_free(q + 512), Interior("free", 512, 1024));
  EXPECT_DEATH(hak_free(q + 16), Interior("free", 16, 1024));
  hak_free(q);
  hak_free(p);
}

TEST(BadFreeDeathTest, InteriorAndMisalignedMidPointers) {
  char* p = Alloc(5000);
  EXPECT_DEATH(hak_free(p + 8), Interior("free", 8, 5120));
  EXPECT_DEATH(hak_free(p + 2048), Interior("free", 2048, 5120));
  EXPECT_DEATH(hak_free(p + 3), Interior("free", 3, 5120));
  hak_free(p);
}

// A slot past the slab's carved blocks: never handed out, and no free list holds it either.
// (ASan builds poison such memory; hakmem's checks read none of it.)
TEST(BadFreeDeathTest, ABlockNeverCarvedIsNamed) {
  char* p = Alloc(48);
  hak_slab_t* s = hak_small_slab_of(p);
  ASSERT_LT(s->carved, s->capacity);
  char* never = reinterpret_cast<char*>(hak_slab_start(s)) + (size_t)(s->capacity - 1) * 48;
  EXPECT_DEATH(hak_free(never),
               Line("block never allocated", "free\\(\\) of a 48-byte block that was never handed out"));
  hak_free(p);
  if (HAK_ASAN) GTEST_SKIP() << "ASan reports the mid fast path's write into never-carved memory";
  char* m = Alloc(2048);
  hak_slab_t* ms = hak_slab_of_shift(m, HAK_MEDIUM_SLAB_SHIFT);
  ASSERT_LT(ms->carved, ms->capacity);
  char* never_mid = reinterpret_cast<char*>(hak_slab_start(ms)) + (size_t)(ms->capacity - 1) * 2048;
  // The mid free fast path reads no slab header: the block is caught when the cache gives it
  // back to its slab.
  EXPECT_DEATH(
      {
        hak_free(never_mid);
        hak_trim();
      },
      Line("block never allocated", "free\\(\\) of a 2048-byte block that was never handed out"));
  hak_free(m);
}

// A carved block still on its slab's free list was never handed out: freeing it is caught by
// the mark that carving sets.
TEST(BadFreeDeathTest, ACarvedBlockNeverHandedOutIsFreeAlready) {
  hak_free(Alloc(48));
  hak_slab_t* s = hak_tls.direct[hak_tiny_index(48)];
  ASSERT_NE(s->free, nullptr);
  void* on_list = s->free;
  EXPECT_DEATH(hak_free(on_list), DoubleFree(48));
}

TEST(BadFreeDeathTest, ImmediateDoubleFrees) {
  EXPECT_DEATH(
      {
        void* p = Alloc(48);
        hak_free(p);
        hak_free(p);
      },
      DoubleFree(48));
  EXPECT_DEATH(
      {
        void* p = Alloc(40000);
        hak_free(p);
        hak_free(p);
      },
      DoubleFree(40960));
}

TEST(BadFreeDeathTest, DoubleFreesWithOtherFreesInBetween) {
  for (size_t size : {size_t{48}, size_t{640}, size_t{4096}, size_t{9000}, size_t{65536}}) {
    EXPECT_DEATH(
        {
          void* a = Alloc(size);
          void* b = Alloc(size);
          void* c = Alloc(size);
          hak_free(a);
          hak_free(b);
          hak_free(c);
          hak_free(a);
        },
        DoubleFree(0))
        << size;
  }
}

// After the mid cache handed the block back to its slab (trim), the mark is still there.
TEST(BadFreeDeathTest, AMidDoubleFreeAfterTheCacheFlushedIsCaught) {
  EXPECT_DEATH(
      {
        void* p = Alloc(9000);
        void* keep = Alloc(9000);  // the slab stays in use
        hak_free(p);
        hak_trim();
        hak_free(p);
        hak_free(keep);
      },
      DoubleFree(9216));
}

TEST(BadFreeDeathTest, DoubleFreesAcrossThreadsAreCaught) {
  EXPECT_DEATH(
      {
        void* p = Alloc(48);
        hak_free(p);
        std::thread([p] { hak_free(p); }).join();  // the remote path
      },
      DoubleFree(48));
  EXPECT_DEATH(
      {
        void* p = Alloc(48);
        std::thread([p] { hak_free(p); }).join();  // on the slab's remote list
        hak_free(p);
      },
      DoubleFree(48));
}

// An overflow that wrote over a free block's link does not turn the next check into a crash:
// no free list is walked to find a double free.
TEST(BadFreeDeathTest, ADoubleFreeAfterACorruptedListIsStillNamed) {
  if (HAK_ASAN) GTEST_SKIP() << "ASan reports the overflow itself";
  EXPECT_DEATH(
      {
        char* a = Alloc(48);
        char* b = Alloc(48);
        hak_free(a);
        hak_free(b);
        memset(a, 0x41, 16);  // as an overflow off the block below would
        hak_free(b);
      },
      DoubleFree(48));
}

TEST(BadFreeDeathTest, ReallocOfAFreedOrInteriorBlock) {
  EXPECT_DEATH(
      {
        void* p = Alloc(48);
        hak_free(p);
        hak_realloc(p, 48);
      },
      FreeAlready("freed block", "realloc", 48));
  EXPECT_DEATH(
      {
        void* p = Alloc(5000);
        hak_free(p);
        hak_realloc(p, 5000);
      },
      FreeAlready("freed block", "realloc", 5120));
  char* p = Alloc(48);
  EXPECT_DEATH(hak_realloc(p + 16, 48), Interior("realloc", 16, 48));
  char* m = Alloc(5000);
  EXPECT_DEATH(hak_realloc(m + 64, 100), Interior("realloc", 64, 5120));
  EXPECT_DEATH(
      {
        hak_free(p);
        hak_usable_size(p);
      },
      FreeAlready("freed block", "malloc_usable_size", 48));
  hak_free(m);
  hak_free(p);
}

TEST(BadFreeDeathTest, ForeignAndLargePointersAreNamed) {
  static char not_heap[64];
  EXPECT_DEATH(hak_free(not_heap + 16),
               Line("invalid pointer", "free\\(\\) of a pointer not allocated by hakmem"));
  EXPECT_DEATH(hak_realloc(not_heap + 16, 10),
               Line("invalid pointer", "realloc\\(\\) of a pointer not allocated by hakmem"));
  EXPECT_DEATH(
      {
        void* p = Alloc(200 << 10);
        hak_free(p);
        hak_realloc(p, 100);
      },
      Line("invalid pointer", "realloc\\(\\) of a pointer into hakmem's memory that is no block "
                              "it holds for the program \\(freed already, or not a block's start\\)"));
}

// Handing a block out clears its mark: blocks freed, reused and freed again, on their own
// thread and on another, are plain frees.
TEST(BadFree, BlocksHandedOutAgainFreeNormally) {
  for (size_t size : {size_t{16}, size_t{48}, size_t{1024}, size_t{9000}, size_t{65536}}) {
    std::vector<void*> blocks;
    for (int round = 0; round < 3; round++) {
      for (int i = 0; i < 500; i++) blocks.push_back(hak_malloc(size));
      if (round == 1) {
        std::thread([&blocks] {
          for (void* p : blocks) hak_free(p);
        }).join();
      } else {
        for (void* p : blocks) hak_free(p);
      }
      blocks.clear();
    }
  }
}

// With HAKMEM_MID_ROUND_PCT=125 a mid request may take a cached block of a larger class; an
// aligned request must not, since that class's blocks are not multiples of its alignment.
TEST(BadFree, AlignedRequestsNeverTakeARoundedBlock) {
  std::thread([] {
    void* first = Alloc(4500);   // 4608-byte blocks: the slab's first one is aligned to 1 MiB,
    void* second = Alloc(4500);  // the second one only to 512 bytes
    hak_free(second);
    void* q = nullptr;
    ASSERT_EQ(hak_posix_memalign(&q, 4096, 4096), 0);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(q) % 4096, 0u);
    hak_free(q);
    void* c = Alloc(1400);  // 1408-byte blocks
    void* d = Alloc(1400);
    hak_free(d);
    void* r = hak_aligned_alloc(256, 1280);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(r) % 256, 0u);
    hak_free(r);
    hak_free(c);
    hak_free(first);
  }).join();
}

}  // namespace
