// A kernel whose pages are not the 4 KiB hakmem is built for (injected through the os table):
// process init says so in one line and every allocation goes to the next allocator, whose
// blocks hakmem's free, realloc and malloc_usable_size take back. A process of its own: init
// runs once.
#include <gtest/gtest.h>
#include <stdint.h>
#include <string.h>

#include <string>

#include "hakmem/hakmem.h"
#include "hakmem/os/os.h"
#include "hakmem/segment.h"

namespace {

size_t SixteenKiBPages() { return 16384; }

bool Hakmems(const void* p) { return hak_map_word_checked(p) != 0; }

TEST(PageSize, AKernelWithOtherPagesGetsEveryRequestServedByTheNextAllocator) {
  hak_os_ops_t ops = hak_os;
  ops.page_size = SixteenKiBPages;
  hak_os_set_ops(&ops);
  testing::internal::CaptureStderr();
  void* tiny = hak_malloc(48);
  std::string said = testing::internal::GetCapturedStderr();
  EXPECT_EQ(said, "hakmem: the kernel's pages are 16384 bytes, hakmem needs 4096-byte pages: "
                  "every allocation goes to the next allocator\n");
  void* mid = hak_malloc(5000);
  void* large = hak_calloc(1, 200 << 10);
  void* huge = hak_malloc(8 << 20);
  void* aligned = hak_aligned_alloc(4096, 4096);
  for (void* p : {tiny, mid, large, huge, aligned}) {
    ASSERT_NE(p, nullptr);
    EXPECT_FALSE(Hakmems(p)) << p;
  }
  EXPECT_EQ(reinterpret_cast<uintptr_t>(aligned) % 4096, 0u);
  EXPECT_GE(hak_usable_size(mid), 5000u);
  memset(tiny, 1, 48);
  tiny = hak_realloc(tiny, 100000);
  ASSERT_NE(tiny, nullptr);
  EXPECT_EQ(static_cast<char*>(tiny)[47], 1);
  EXPECT_FALSE(Hakmems(tiny));
  for (void* p : {tiny, mid, large, huge, aligned}) hak_free(p);
  testing::internal::CaptureStderr();
  hak_free(hak_malloc(64));
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "") << "one line, once";
  hak_os_reset_ops();
}

}  // namespace
