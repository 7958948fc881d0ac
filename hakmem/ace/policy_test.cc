// Policy snapshots: versions, round trips, and whole copies while a publisher rewrites slots
// under readers (run under tsan by CI's tsan config).
#include "hakmem/ace/policy.h"

#include <gtest/gtest.h>

#include <string.h>

#include <atomic>
#include <thread>
#include <vector>

namespace {

// A policy whose every field is a function of `seed`: a torn copy mixes two seeds.
hak_ace_policy_t Make(uint32_t seed) {
  hak_ace_policy_t p = {};
  p.mid_round_pct = 100 + seed % 100;
  p.large_round_pct = 100 + seed % 300;
  p.extra_class_size = seed * 128;
  for (unsigned i = 0; i < HAK_ACE_MID_CLASSES; i++) p.mid_cache_limit[i] = seed * 31 + i;
  return p;
}

bool Whole(const hak_ace_policy_t& p) {
  uint32_t seed = p.extra_class_size / 128;
  hak_ace_policy_t expected = Make(seed);
  expected.version = p.version;
  return memcmp(&expected, &p, sizeof p) == 0;
}

TEST(Policy, PublishThenRead) {
  hak_ace_policy_t out = {};
  uint64_t before = hak_ace_policy_version();
  hak_ace_policy_t p = Make(7);
  uint64_t v = hak_ace_policy_publish(&p);
  EXPECT_EQ(v, before + 1);
  EXPECT_EQ(hak_ace_policy_version(), v);
  EXPECT_EQ(hak_ace_policy_read(&out), v);
  EXPECT_EQ(out.version, v);
  EXPECT_TRUE(Whole(out));
  EXPECT_EQ(out.mid_cache_limit[3], 7u * 31 + 3);
}

TEST(Policy, ReadersNeverSeeATornSnapshot) {
  hak_ace_policy_t first = Make(1);
  hak_ace_policy_publish(&first);
  std::atomic<bool> stop{false};
  std::atomic<long> torn{0}, reads{0};
  std::atomic<int> started{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; r++) {
    readers.emplace_back([&] {
      started++;
      uint64_t last = 0;
      while (!stop.load()) {
        hak_ace_policy_t out;
        uint64_t v = hak_ace_policy_read(&out);
        if (!Whole(out) || v < last) torn++;
        last = v;
        reads++;
      }
    });
  }
  while (started.load() < 3) std::this_thread::yield();
  // Publish while the readers read: at least 20000 times and until they have read 10000 copies.
  for (uint32_t seed = 2; seed < 20000 || reads.load() < 10000; seed++) {
    hak_ace_policy_t p = Make(seed);
    hak_ace_policy_publish(&p);
  }
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(torn.load(), 0);
  EXPECT_GE(reads.load(), 10000);
}

}  // namespace
