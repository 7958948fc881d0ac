// Stats against a known allocation pattern: fresh blocks, slabs, refills and remote frees of one
// class, exact per-call counts in the debug config, and the printed report.
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "hakmem/hakmem.h"

namespace {

constexpr size_t kSize = 200;  // class of 208-byte blocks
constexpr int kBlocks = 3000;

hak_class_stats_t ClassOf(size_t block_size) {
  std::vector<hak_class_stats_t> all(128);
  size_t n = hak_class_stats(all.data(), all.size());
  for (size_t c = 0; c < n; c++) {
    if (all[c].block_size == block_size) return all[c];
  }
  ADD_FAILURE() << "no class of " << block_size;
  return {};
}

TEST(Stats, CountsFollowAKnownPattern) {
  hak_class_stats_t before = ClassOf(208);
  std::vector<void*> blocks;
  std::thread owner([&] {
    for (int i = 0; i < kBlocks; i++) blocks.push_back(hak_malloc(kSize));
  });
  owner.join();
  hak_class_stats_t held = ClassOf(208);
  // Every block came from fresh slab memory, a few pages at a time.
  EXPECT_GE(held.fresh_blocks - before.fresh_blocks, (unsigned long long)kBlocks);
  EXPECT_LT(held.fresh_blocks - before.fresh_blocks, (unsigned long long)kBlocks + 64);
  EXPECT_GE(held.refills - before.refills, (unsigned long long)kBlocks / 64);
  EXPECT_GE(held.slabs, (size_t)(kBlocks * 208 / 65536));
  if (held.allocs >= 0) {  // debug config: exact per-call counts
    EXPECT_EQ(held.allocs - before.allocs, kBlocks);
    EXPECT_EQ(held.live - before.live, kBlocks);
  } else {
    EXPECT_EQ(held.frees, -1);
    EXPECT_EQ(held.live, -1);
  }
  // The owner exited: these frees are remote, and the next adopter collects them.
  for (void* p : blocks) hak_free(p);
  hak_trim();
  hak_class_stats_t after = ClassOf(208);
  EXPECT_GE(after.remote_frees - before.remote_frees, (unsigned long long)kBlocks / 2);
  if (after.allocs >= 0) {
    EXPECT_EQ(after.live, before.live);
  }
}

TEST(Stats, ReportNamesEveryPart) {
  void* p = hak_malloc(kSize);
  char path[] = "/tmp/hakmem_stats_XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  hak_stats_print(fd);
  std::string text(8192, '\0');
  ssize_t n = pread(fd, text.data(), text.size(), 0);
  close(fd);
  unlink(path);
  ASSERT_GT(n, 0);
  text.resize((size_t)n);
  for (const char* part : {"hakmem: stats", "rss ", "peak ", "segments:", "large:", "huge:",
                           "class", "refills", "remote"}) {
    EXPECT_NE(text.find(part), std::string::npos) << part << "\n" << text;
  }
  EXPECT_NE(text.find("   208 "), std::string::npos) << "the class in use is listed\n" << text;
  hak_free(p);
}

TEST(Stats, PeakRssIsAtLeastRss) {
  hak_stats_t s;
  hak_stats(&s);
  EXPECT_GT(s.rss_bytes, 0u);
  EXPECT_GE(s.peak_rss_bytes, s.rss_bytes);
}

}  // namespace
