// HAKMEM_WRAP_*: each routed range comes from glibc, every API call takes such blocks back, and
// realloc moves blocks between the two allocators in both directions. (The next allocator is
// glibc's malloc, or a sanitizer's: malloc_usable_size is not called here, as ASan's rejects
// glibc's blocks when its runtime is linked into the program.)
#include "hakmem/wrap.h"

#include <gtest/gtest.h>
#include <stdint.h>
#include <string.h>

#include <thread>

#include "hakmem/config.h"
#include "hakmem/hakmem.h"
#include "hakmem/segment.h"

namespace {

// Whether p is hakmem's: its address map says so. (Usable sizes cannot tell under ASan, which
// reports requested sizes for both allocators.)
bool FromHakmem(const void* p) { return hak_map_word(p) != 0; }

// Runs `body` with the given ranges routed, in a thread of its own (a heap with no current
// slabs, as a process that started with the variables set).
void WithRouted(int tiny, int mid, int large, int huge, void (*body)()) {
  hak_config_init_once();  // or the first allocation would read the environment over these
  hak_config_t saved = hak_config;
  hak_config.wrap_tiny = !tiny;
  hak_config.wrap_mid = !mid;
  hak_config.wrap_large = !large;
  hak_config.wrap_huge = !huge;
  std::thread(body).join();
  // Field by field: a background thread (the purger) may be reading the others.
  hak_config.wrap_tiny = saved.wrap_tiny;
  hak_config.wrap_mid = saved.wrap_mid;
  hak_config.wrap_large = saved.wrap_large;
  hak_config.wrap_huge = saved.wrap_huge;
}

TEST(Wrap, OffByDefault) {
  EXPECT_FALSE(hak_wrap_active());
  EXPECT_FALSE(hak_wrap_routes(10));
  EXPECT_FALSE(hak_wrap_routes(10 << 20));
}

TEST(Wrap, TinyRangeComesFromTheNextAllocator) {
  WithRouted(1, 0, 0, 0, [] {
    EXPECT_TRUE(hak_wrap_routes(100));
    EXPECT_FALSE(hak_wrap_routes(5000));
    char* p = static_cast<char*>(hak_malloc(100));
    ASSERT_NE(p, nullptr);
    EXPECT_FALSE(FromHakmem(p));
    EXPECT_GE(hak_usable_size(p), 100u) << "the next allocator's answer";
    memset(p, 7, 100);
    // Growing into a range hakmem serves moves the block to hakmem, contents and all.
    char* q = static_cast<char*>(hak_realloc(p, 5000));
    ASSERT_NE(q, nullptr);
    EXPECT_TRUE(FromHakmem(q));
    EXPECT_EQ(q[99], 7);
    // And shrinking back into the routed range moves it to glibc again.
    char* r = static_cast<char*>(hak_realloc(q, 50));
    EXPECT_EQ(r[49], 7);
    EXPECT_FALSE(FromHakmem(r));
    hak_free(r);
    void* aligned = hak_aligned_alloc(256, 100);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(aligned) % 256, 0u);
    hak_free(aligned);
    void* mid = hak_malloc(5000);
    EXPECT_TRUE(FromHakmem(mid)) << "the mid range stays hakmem's";
    hak_free(mid);
  });
}

TEST(Wrap, EveryRangeRouted) {
  WithRouted(1, 1, 1, 1, [] {
    for (size_t n : {size_t{24}, size_t{5000}, size_t{200} << 10, size_t{8} << 20}) {
      char* p = static_cast<char*>(hak_calloc(1, n));
      ASSERT_NE(p, nullptr) << n;
      EXPECT_EQ(p[n - 1], 0);
      EXPECT_FALSE(FromHakmem(p)) << n;
      EXPECT_GE(hak_usable_size(p), n);
      p = static_cast<char*>(hak_realloc(p, n * 2));
      ASSERT_NE(p, nullptr);
      hak_free(p);
    }
  });
}

TEST(Wrap, LargeRangeOnly) {
  WithRouted(0, 0, 1, 0, [] {
    void* large = hak_malloc(200 << 10);
    EXPECT_FALSE(FromHakmem(large));
    EXPECT_GE(hak_usable_size(large), size_t{200} << 10);
    void* huge = hak_malloc(8 << 20);
    EXPECT_TRUE(FromHakmem(huge));
    hak_free(large);
    hak_free(huge);
  });
}

}  // namespace
