// os box: aligned mappings, prefix mappings, purge and the swappable primitive table.
#include "hakmem/os/os.h"

#include <gtest/gtest.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

namespace {

bool Aligned(const void* p, size_t a) { return (reinterpret_cast<uintptr_t>(p) & (a - 1)) == 0; }

bool Mapped(const void* p) {
  unsigned char vec;
  void* page = reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(p) & ~(HAK_PAGE_SIZE - 1));
  return mincore(page, HAK_PAGE_SIZE, &vec) == 0;
}

TEST(Os, MapAlignedTrimsEverythingOutsideTheRange) {
  for (size_t alignment : {HAK_PAGE_SIZE, (size_t)1 << 16, (size_t)1 << 22, (size_t)1 << 24}) {
    const size_t size = 3 * HAK_PAGE_SIZE;
    auto* p = static_cast<uint8_t*>(hak_os_map_aligned(size, alignment));
    ASSERT_NE(p, nullptr) << alignment;
    EXPECT_TRUE(Aligned(p, alignment)) << alignment;
    memset(p, 1, size);
    EXPECT_TRUE(Mapped(p + size - 1));
    // The reservation was size + alignment: whatever lay past the block was trimmed off (with
    // page alignment there is no excess, and a neighbouring mapping may sit right there).
    if (alignment > HAK_PAGE_SIZE) {
      EXPECT_FALSE(Mapped(p + size)) << "tail not trimmed for alignment " << alignment;
    }
    EXPECT_EQ(hak_os.unmap(p, size), 0);
  }
}

TEST(Os, MapAlignedWithPrefixPutsTheBlockAtTheOffset) {
  const size_t alignment = (size_t)1 << 22, prefix = HAK_PAGE_SIZE, size = 5 * HAK_PAGE_SIZE;
  auto* base = static_cast<uint8_t*>(hak_os_map_aligned_with_prefix(prefix, size, alignment));
  ASSERT_NE(base, nullptr);
  EXPECT_TRUE(Aligned(base, alignment));
  memset(base, 2, prefix + size);
  EXPECT_FALSE(Mapped(base + prefix + size));
  EXPECT_EQ(hak_os.unmap(base, prefix + size), 0);
}

TEST(Os, PurgeDropsContentsButKeepsTheMapping) {
  auto* p = static_cast<uint8_t*>(hak_os_map_aligned(4 * HAK_PAGE_SIZE, HAK_PAGE_SIZE));
  ASSERT_NE(p, nullptr);
  memset(p, 7, 4 * HAK_PAGE_SIZE);
  ASSERT_EQ(hak_os.purge(p, 4 * HAK_PAGE_SIZE), 0);
  for (size_t i = 0; i < 4 * HAK_PAGE_SIZE; i += 512) ASSERT_EQ(p[i], 0);
  EXPECT_EQ(hak_os.unmap(p, 4 * HAK_PAGE_SIZE), 0);
}

int failing_maps;
void* FailingMap(void*, size_t) {
  failing_maps++;
  return nullptr;
}

TEST(Os, InjectedMapFailureReachesTheCaller) {
  hak_os_ops_t ops = hak_os;
  ops.map = FailingMap;
  hak_os_set_ops(&ops);
  failing_maps = 0;
  EXPECT_EQ(hak_os_map_aligned(HAK_PAGE_SIZE, (size_t)1 << 22), nullptr);
  EXPECT_EQ(hak_os_map_aligned_with_prefix(HAK_PAGE_SIZE, HAK_PAGE_SIZE, (size_t)1 << 22), nullptr);
  hak_os_reset_ops();
  EXPECT_GE(failing_maps, 2);
  void* p = hak_os_map_aligned(HAK_PAGE_SIZE, HAK_PAGE_SIZE);
  EXPECT_NE(p, nullptr) << "reset must restore the real primitives";
  hak_os.unmap(p, HAK_PAGE_SIZE);
}

TEST(Os, ClockAndRssAreSane) {
  uint64_t t0 = hak_os_now_ms();
  EXPECT_GT(t0, 0u);
  EXPECT_GE(hak_os_now_ms(), t0);
  size_t before = hak_os_rss_bytes();
  ASSERT_GT(before, 0u);
  const size_t size = 64u << 20;
  auto* p = static_cast<uint8_t*>(hak_os_map_aligned(size, HAK_PAGE_SIZE));
  ASSERT_NE(p, nullptr);
  memset(p, 3, size);
  EXPECT_GE(hak_os_rss_bytes(), before + size / 2);
  hak_os.unmap(p, size);
}

}  // namespace
