// Heaps take up a published policy on their next slow-path allocation: cache limits (a cache
// over its new limit shrinks at once), the rounding limit, and idle classes' memory. The engine is
// off in this binary (HAKMEM_ACE=0): the tests publish by hand.
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "hakmem/ace/learner.h"
#include "hakmem/ace/policy.h"
#include "hakmem/config.h"
#include "hakmem/hakmem.h"
#include "hakmem/heap.h"
#include "hakmem/segment.h"
#include "hakmem/size_class.h"

namespace {

const unsigned kClass = hak_size_class(3072);
constexpr size_t kSize = 3000;

hak_ace_policy_t Defaults() {
  hak_ace_policy_t p{};
  p.mid_round_pct = 100;
  p.large_round_pct = 100;
  for (unsigned i = 0; i < HAK_ACE_MID_CLASSES; i++) {
    p.mid_cache_limit[i] = hak_ace_default_cache_limit((uint32_t)hak_config.mid_cache_kb,
                                                       hak_class_size(HAK_TINY_CLASSES + i));
  }
  return p;
}

const hak_mid_cache_t& Cache(unsigned cls) { return hak_tls.heap->mid_cache[cls - HAK_TINY_CLASSES]; }

template <typename F>
void InFreshThread(F f) {
  std::thread t(f);
  t.join();
}

// Frees n blocks of kSize into this thread's mid cache.
void FillCache(size_t n) {
  std::vector<void*> blocks;
  for (size_t i = 0; i < n; i++) blocks.push_back(hak_malloc(kSize));
  for (void* p : blocks) hak_free(p);
}

TEST(PolicyApply, ANewCacheLimitTrimsTheCacheOnTheNextSlowPath) {
  InFreshThread([] {
    FillCache(100);
    ASSERT_EQ(Cache(kClass).count, 100u);
    hak_ace_policy_t p = Defaults();
    p.mid_cache_limit[kClass - HAK_TINY_CLASSES] = 10;
    hak_ace_policy_publish(&p);
    EXPECT_EQ(Cache(kClass).count, 100u) << "nothing happens on its own";
    hak_free(hak_malloc(40000));  // a class this thread never used: a slow path
    EXPECT_EQ(Cache(kClass).limit, 10u);
    EXPECT_EQ(Cache(kClass).count, 10u);
    EXPECT_EQ(hak_tls.heap->counters[kClass].cache_flushed, 90u);
    FillCache(50);
    EXPECT_LE(Cache(kClass).count, 10u) << "the new limit holds";
  });
  hak_ace_policy_t p = Defaults();
  hak_ace_policy_publish(&p);
}

TEST(PolicyApply, AnIdleClassGivesBackItsCachedBlocksAndTheirPages) {
  InFreshThread([] {
    FillCache(300);  // about 900 KiB over a few slabs, all cached
    ASSERT_EQ(Cache(kClass).count, 300u);
    hak_segment_totals_t before;
    hak_segment_totals(&before);
    hak_ace_policy_t p = Defaults();
    p.idle_classes[kClass / 32] |= 1u << (kClass % 32);
    hak_ace_policy_publish(&p);
    hak_free(hak_malloc(100));
    EXPECT_EQ(Cache(kClass).count, 0u);
    EXPECT_EQ(hak_tls.heap->current[kClass]->class_idx, HAK_SLAB_UNUSED_CLASS)
        << "its emptied current slab went back";
    hak_segment_totals_t after;
    hak_segment_totals(&after);
    EXPECT_GE(after.purged_bytes - before.purged_bytes, (size_t)300 * 3072)
        << "the pages went back without waiting for the purge delay";
    void* again = hak_malloc(kSize);  // the class still works
    ASSERT_NE(again, nullptr);
    hak_free(again);
  });
  hak_ace_policy_t p = Defaults();
  hak_ace_policy_publish(&p);
}

TEST(PolicyApply, WmaxComesFromThePolicy) {
  hak_ace_policy_t policy = Defaults();
  policy.mid_round_pct = 125;
  hak_ace_policy_publish(&policy);
  InFreshThread([] {
    void* cached = hak_malloc(22000);  // class 22528
    hak_free(cached);
    void* p = hak_malloc(20000);  // class 20480, nothing cached: takes the 22528 block
    EXPECT_EQ(p, cached);
    hak_free(p);
  });
  policy.mid_round_pct = 100;
  hak_ace_policy_publish(&policy);
  InFreshThread([] {
    void* cached = hak_malloc(22000);
    hak_free(cached);
    void* p = hak_malloc(20000);
    EXPECT_NE(p, cached);
    hak_free(p);
  });
}

}  // namespace
