// Under the asan config the allocator poisons what the program may not touch: a use after free,
// an overflow past the requested size and a read of never-allocated slab space are reported by
// ASan. In other configs these tests are skipped.
#include <gtest/gtest.h>

#include "hakmem/base.h"
#include "hakmem/hakmem.h"

namespace {

#if HAK_ASAN
#define REQUIRE_ASAN()
#else
#define REQUIRE_ASAN() GTEST_SKIP() << "needs --config=asan"
#endif

// Keeps the compiler from proving the access away.
void Touch(volatile char* p) { *p = 1; }

TEST(AsanDeathTest, UseAfterFreeIsReported) {
  REQUIRE_ASAN();
  for (size_t n : {40u, 3000u}) {
    EXPECT_DEATH(
        {
          char* p = static_cast<char*>(hak_malloc(n));
          hak_free(p);
          Touch(p + n / 2);
        },
        "use-after-poison")
        << n;
  }
}

TEST(AsanDeathTest, OverflowPastTheRequestedSizeIsReported) {
  REQUIRE_ASAN();
  for (size_t n : {40u, 1500u}) {  // block sizes 48 and 1536: the overflow stays in the block
    EXPECT_DEATH(
        {
          char* p = static_cast<char*>(hak_malloc(n));
          Touch(p + n);
        },
        "use-after-poison")
        << n;
  }
}

TEST(AsanDeathTest, RequestedBytesStayUsable) {
  REQUIRE_ASAN();
  char* p = static_cast<char*>(hak_malloc(40));
  for (int i = 0; i < 40; i++) Touch(p + i);
  EXPECT_EQ(hak_usable_size(p), 40u);
  p = static_cast<char*>(hak_realloc(p, 30));  // shrinks in place: byte 30 is now out of bounds
  EXPECT_EQ(hak_usable_size(p), 30u);
  EXPECT_DEATH(Touch(p + 30), "use-after-poison");
  hak_free(p);
}

}  // namespace
