// Secure builds (--config=secure): a write into a freed block is caught at the next pop, fresh
// blocks come in random order, and an overflow off a slab's blocks hits a guard page. Other
// builds skip these: they make none of those promises. (Bad frees are caught in every build:
// bad_free_test.)
#include <gtest/gtest.h>
#include <string.h>

#include <algorithm>
#include <thread>
#include <vector>

#include "hakmem/hakmem.h"
#include "hakmem/heap.h"
#include "hakmem/size_class.h"
#include "hakmem/slab.h"

namespace {

class SecureDeathTest : public testing::Test {
 protected:
  void SetUp() override {
    if (!HAKMEM_SECURE) GTEST_SKIP() << "not a secure build";
  }
};

TEST_F(SecureDeathTest, AWriteIntoAFreedTinyBlockIsCaughtAtThePop) {
  hak_free(hak_malloc(48));  // this thread's heap and a current slab for the class
  EXPECT_DEATH(
      {
        hak_slab_t* s = hak_tls.direct[hak_tiny_index(48)];
        memset(s->free, 0x41, sizeof(void*));  // what a use after free writes
        for (int i = 0; i < 2; i++) hak_malloc(48);
      },
      "^hakmem: corrupted free list at 0x[0-9a-f]+: a freed block was written to \\(use after "
      "free\\?\\); aborting\n$");
}

TEST_F(SecureDeathTest, AWriteIntoAFreedMidBlockIsCaughtAtThePop) {
  EXPECT_DEATH(
      {
        char* a = static_cast<char*>(hak_malloc(6000));
        char* b = static_cast<char*>(hak_malloc(6000));
        hak_free(a);
        hak_free(b);                     // mid cache: b -> a
        memset(b, 0, sizeof(void*));     // a zeroed link is no valid link either
        hak_malloc(6000);                // pops b, whose link is checked
      },
      "hakmem: corrupted free list at 0x[0-9a-f]+: a freed block was written to");
}

TEST_F(SecureDeathTest, FreshBlocksComeInRandomOrder) {
  std::vector<char*> blocks;
  std::thread([&] {  // a heap of its own: the class starts on a fresh slab
    for (int i = 0; i < 64; i++) blocks.push_back(static_cast<char*>(hak_malloc(400)));
  }).join();
  // In address order with probability 1/64!: never by chance.
  EXPECT_FALSE(std::is_sorted(blocks.begin(), blocks.end()));
  for (char* p : blocks) hak_free(p);
}

TEST_F(SecureDeathTest, AnOverflowOffASlabHitsItsGuardPage) {
  char* p = static_cast<char*>(hak_malloc(48));
  const hak_slab_t* slab = hak_small_slab_of(p);
  char* guard = reinterpret_cast<char*>(hak_slab_start(slab)) +
                hak_segment_slab_usable(HAK_SMALL_SLAB_SHIFT, slab->index);
  EXPECT_DEATH(*reinterpret_cast<volatile char*>(guard) = 1, "SIGSEGV");
  hak_free(p);
}

}  // namespace
