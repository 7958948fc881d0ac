// The learner on synthetic windows: idle classes, cache limits, rounding trials, the extra class.
#include "hakmem/ace/learner.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "hakmem/size_class.h"

namespace {

const unsigned kMidClass = hak_size_class(3072);
const unsigned kMidIndex = kMidClass - HAK_TINY_CLASSES;

hak_ace_settings_t Settings() {
  hak_ace_settings_t s{};
  s.idle_ms = 30;
  s.hit_low = 0.90;
  s.hit_high = 1.0;
  s.mid_cache_kb = 1024;
  s.mid_round_pct = 100;
  s.large_round_pct = 100;
  s.mid_round_max_pct = 100;
  s.large_round_max_pct = 100;
  s.extra_class_share = 0.5;
  return s;
}

// A window of 10 ms in which nothing happened.
hak_ace_window_t Quiet() {
  hak_ace_window_t w;
  memset(&w, 0, sizeof w);
  w.ms = 10;
  return w;
}

// A window in which nothing happened but other classes' growth: idle classes are released only
// while memory grows elsewhere.
hak_ace_window_t Growing() {
  hak_ace_window_t w = Quiet();
  w.fresh_blocks = 100;
  return w;
}

// A window where kMidClass served `hits` from its cache and flushed `flushed` blocks.
hak_ace_window_t MidTraffic(uint64_t hits, uint64_t flushed) {
  hak_ace_window_t w = Quiet();
  w.active[kMidClass] = 1;
  w.hits[kMidIndex] = hits;
  w.flushed[kMidIndex] = flushed;
  return w;
}

void Collect(void* arg, const char* line) { static_cast<std::vector<std::string>*>(arg)->push_back(line); }

TEST(Learner, QuietWindowsDecideNothing) {
  hak_ace_learner_t l;
  hak_ace_settings_t s = Settings();
  hak_ace_learner_init(&l, &s);
  hak_ace_window_t w = Quiet();
  for (int i = 0; i < 100; i++) EXPECT_EQ(hak_ace_learner_step(&l, &w, nullptr, nullptr), 0);
  EXPECT_EQ(l.decisions, 0u);
  for (unsigned c = 0; c < HAK_CLASS_COUNT; c++) EXPECT_FALSE(hak_ace_policy_idle(&l.policy, c));
}

TEST(Learner, AClassUnusedForIdleMsIsReleasedAndComesBackWhenUsed) {
  hak_ace_learner_t l;
  hak_ace_settings_t s = Settings();
  hak_ace_learner_init(&l, &s);
  std::vector<std::string> log;
  hak_ace_window_t used = Quiet();
  used.active[kMidClass] = 1;
  hak_ace_window_t quiet = Growing();
  EXPECT_EQ(hak_ace_learner_step(&l, &used, Collect, &log), 0);
  EXPECT_EQ(hak_ace_learner_step(&l, &quiet, Collect, &log), 0);
  EXPECT_EQ(hak_ace_learner_step(&l, &quiet, Collect, &log), 0);
  EXPECT_FALSE(hak_ace_policy_idle(&l.policy, kMidClass));
  EXPECT_EQ(hak_ace_learner_step(&l, &quiet, Collect, &log), 1) << "third quiet window";
  EXPECT_TRUE(hak_ace_policy_idle(&l.policy, kMidClass));
  EXPECT_FALSE(hak_ace_policy_idle(&l.policy, kMidClass + 1)) << "never used: nothing to give back";
  EXPECT_EQ(hak_ace_learner_step(&l, &quiet, Collect, &log), 0) << "decided once";
  EXPECT_EQ(hak_ace_learner_step(&l, &used, Collect, &log), 1);
  EXPECT_FALSE(hak_ace_policy_idle(&l.policy, kMidClass));
  ASSERT_EQ(log.size(), 2u);
  const std::string name = "class " + std::to_string(kMidClass) + " (3072 B)";
  EXPECT_EQ(log[0], name + " idle for 30 ms: its memory goes back");
  EXPECT_EQ(log[1], name + " in use again after 40 ms: idle after 120 ms");
}

// Quiet windows until the class is released; returns how many it took.
int WindowsUntilIdle(hak_ace_learner_t* l, unsigned cls) {
  hak_ace_window_t quiet = Growing();
  for (int n = 1; n < 1000; n++) {
    hak_ace_learner_step(l, &quiet, nullptr, nullptr);
    if (hak_ace_policy_idle(&l->policy, cls)) return n;
  }
  return -1;
}

TEST(Learner, AClassThatComesBackSoonAfterItsReleaseWaitsLongerAndLessAfterLongAbsences) {
  hak_ace_learner_t l;
  hak_ace_settings_t s = Settings();  // idle after 30 ms, windows of 10 ms
  hak_ace_learner_init(&l, &s);
  hak_ace_window_t used = Quiet();
  used.active[kMidClass] = 1;
  hak_ace_learner_step(&l, &used, nullptr, nullptr);
  EXPECT_EQ(WindowsUntilIdle(&l, kMidClass), 3);
  hak_ace_learner_step(&l, &used, nullptr, nullptr);  // back at once: a regret
  EXPECT_EQ(WindowsUntilIdle(&l, kMidClass), 12);
  hak_ace_learner_step(&l, &used, nullptr, nullptr);
  EXPECT_EQ(WindowsUntilIdle(&l, kMidClass), 48);
  for (int i = 0; i < 200; i++) hak_ace_learner_step(&l, &used, nullptr, nullptr);
  for (int i = 0; i < 20; i++) {  // flapping never pushes it past 64 times the configured time
    hak_ace_learner_step(&l, &used, nullptr, nullptr);
    WindowsUntilIdle(&l, kMidClass);
  }
  EXPECT_EQ(l.classes[kMidClass].idle_after_ms, 64u * 30);
  hak_ace_window_t quiet = Growing();
  for (int i = 0; i < 64 * 3 * 8; i++) hak_ace_learner_step(&l, &quiet, nullptr, nullptr);
  hak_ace_learner_step(&l, &used, nullptr, nullptr);  // back after long: the release paid
  EXPECT_EQ(l.classes[kMidClass].idle_after_ms, 32u * 30);
}

TEST(Learner, NoClassIsReleasedWhileNothingGrows) {
  hak_ace_learner_t l;
  hak_ace_settings_t s = Settings();
  hak_ace_learner_init(&l, &s);
  hak_ace_window_t used = Quiet();
  used.active[kMidClass] = 1;
  hak_ace_learner_step(&l, &used, nullptr, nullptr);
  hak_ace_window_t freeing_only = Quiet();  // a program that only frees moves no counter
  for (int i = 0; i < 50; i++) EXPECT_EQ(hak_ace_learner_step(&l, &freeing_only, nullptr, nullptr), 0);
  EXPECT_FALSE(hak_ace_policy_idle(&l.policy, kMidClass));
  hak_ace_window_t growing = Growing();
  EXPECT_EQ(hak_ace_learner_step(&l, &growing, nullptr, nullptr), 1) << "quiet long enough already";
  EXPECT_TRUE(hak_ace_policy_idle(&l.policy, kMidClass));
}

TEST(Learner, TinyClassesAreNeverReleased) {
  hak_ace_learner_t l;
  hak_ace_settings_t s = Settings();
  hak_ace_learner_init(&l, &s);
  hak_ace_window_t used = Quiet();
  used.active[5] = 1;  // a tiny class: its use shows only at refills, far apart
  hak_ace_learner_step(&l, &used, nullptr, nullptr);
  hak_ace_window_t growing = Growing();
  for (int i = 0; i < 100; i++) EXPECT_EQ(hak_ace_learner_step(&l, &growing, nullptr, nullptr), 0);
  EXPECT_FALSE(hak_ace_policy_idle(&l.policy, 5));
}

TEST(Learner, IdleReleaseCanBeTurnedOff) {
  hak_ace_learner_t l;
  hak_ace_settings_t s = Settings();
  s.idle_ms = 0;
  hak_ace_learner_init(&l, &s);
  hak_ace_window_t used = Quiet();
  used.active[kMidClass] = 1;
  hak_ace_window_t quiet = Growing();
  hak_ace_learner_step(&l, &used, nullptr, nullptr);
  for (int i = 0; i < 50; i++) EXPECT_EQ(hak_ace_learner_step(&l, &quiet, nullptr, nullptr), 0);
  EXPECT_FALSE(hak_ace_policy_idle(&l.policy, kMidClass));
}

TEST(Learner, ALowHitRateRaisesTheCacheLimitUpToTwiceTheConfiguredOne) {
  hak_ace_learner_t l;
  hak_ace_settings_t s = Settings();
  hak_ace_learner_init(&l, &s);
  const uint32_t configured = hak_ace_default_cache_limit(1024, 3072);
  EXPECT_EQ(l.policy.mid_cache_limit[kMidIndex], configured);
  hak_ace_window_t w = MidTraffic(500, 500);  // half the frees went back to the slabs
  uint32_t last = configured;
  for (int i = 0; i < 200; i++) {
    hak_ace_learner_step(&l, &w, nullptr, nullptr);
    EXPECT_GE(l.policy.mid_cache_limit[kMidIndex], last) << "only grows";
    last = l.policy.mid_cache_limit[kMidIndex];
  }
  EXPECT_EQ(last, 2 * configured);
}

TEST(Learner, AHighBandLowersTheLimitOfACacheThatAlwaysHitsToAnEighth) {
  hak_ace_learner_t l;
  hak_ace_settings_t s = Settings();
  s.hit_high = 0.95;
  hak_ace_learner_init(&l, &s);
  const uint32_t configured = hak_ace_default_cache_limit(1024, 3072);
  hak_ace_window_t w = MidTraffic(1000, 0);
  for (int i = 0; i < 200; i++) hak_ace_learner_step(&l, &w, nullptr, nullptr);
  EXPECT_EQ(l.policy.mid_cache_limit[kMidIndex], configured / 8);
}

TEST(Learner, FewEventsLeaveTheLimitAlone) {
  hak_ace_learner_t l;
  hak_ace_settings_t s = Settings();
  hak_ace_learner_init(&l, &s);
  const uint32_t configured = l.policy.mid_cache_limit[kMidIndex];
  hak_ace_window_t w = MidTraffic(10, 20);  // rate 1/3, but only 30 events
  for (int i = 0; i < 100; i++) hak_ace_learner_step(&l, &w, nullptr, nullptr);
  EXPECT_EQ(l.policy.mid_cache_limit[kMidIndex], configured);
}

// Runs `windows` windows whose mid score is score_of(rounding limit in force); returns the
// rounding limit in force at the end and counts the windows each one was in force.
template <typename Score>
uint32_t RunRounding(hak_ace_learner_t* l, int windows, Score score_of,
                     std::vector<int>* in_force) {
  for (int i = 0; i < windows; i++) {
    uint32_t pct = l->policy.mid_round_pct;
    double score = score_of(pct);
    (*in_force)[(pct - 100) / 10]++;
    hak_ace_window_t w = Quiet();
    w.active[kMidClass] = 1;
    w.hits[kMidIndex] = (uint64_t)(10000 * score);
    w.misses[kMidIndex] = 10000 - w.hits[kMidIndex];
    hak_ace_learner_step(l, &w, nullptr, nullptr);
  }
  return l->policy.mid_round_pct;
}

TEST(Learner, AWmaxCandidateThatScoresWorseIsRolledBack) {
  hak_ace_learner_t l;
  hak_ace_settings_t s = Settings();
  s.mid_round_max_pct = 130;  // candidates 100, 110, 120, 130
  s.hit_low = 0;             // keep the cap controllers out of it
  hak_ace_learner_init(&l, &s);
  std::vector<int> in_force(4);
  uint32_t end =
      RunRounding(&l, 2000, [](uint32_t pct) { return pct == 100 ? 0.95 : 0.60; }, &in_force);
  EXPECT_EQ(end, 100u);
  EXPECT_EQ(l.mid_rounding.canary.adopted, 0u);
  EXPECT_GE(l.mid_rounding.canary.rolled_back, 3u) << "each candidate tried";
  EXPECT_GT(in_force[0], 2000 * 3 / 4) << "exploration stays a small share of the windows";
}

TEST(Learner, AWmaxCandidateThatScoresBetterIsAdoptedAndKept) {
  hak_ace_learner_t l;
  hak_ace_settings_t s = Settings();
  s.mid_round_max_pct = 130;
  s.hit_low = 0;
  hak_ace_learner_init(&l, &s);
  std::vector<int> in_force(4);
  auto score = [](uint32_t pct) { return pct == 120 ? 0.97 : 0.80; };
  uint32_t end = RunRounding(&l, 3000, score, &in_force);
  EXPECT_EQ(end, 120u);
  EXPECT_GE(l.mid_rounding.canary.adopted, 1u);
  EXPECT_GT(in_force[2], 3000 / 2);
}

TEST(Learner, NoWmaxSearchWhenTheLargestCandidateIsTheConfiguredValue) {
  hak_ace_learner_t l;
  hak_ace_settings_t s = Settings();
  hak_ace_learner_init(&l, &s);
  std::vector<int> in_force(4);
  EXPECT_EQ(RunRounding(&l, 500, [](uint32_t) { return 0.5; }, &in_force), 100u);
  EXPECT_EQ(in_force[0], 500);
}

hak_ace_window_t Sizes(size_t dominant, uint64_t dominant_count, uint64_t spread_count) {
  hak_ace_window_t w = Quiet();
  w.mid_sizes[(dominant - 1) >> 7] = dominant_count;
  for (unsigned i = 8; i < HAK_ACE_SIZE_BUCKETS; i += 7) w.mid_sizes[i] += spread_count;
  return w;
}

TEST(Learner, TheExtraClassGoesWhereOneSizeDominates) {
  hak_ace_learner_t l;
  hak_ace_settings_t s = Settings();
  hak_ace_learner_init(&l, &s);
  std::vector<std::string> log;
  hak_ace_window_t w = Sizes(4200, 900, 2);  // 4200 rounds up to 4608 in the regular classes
  int changed = 0;
  for (int i = 0; i < 10 && !changed; i++) changed = hak_ace_learner_step(&l, &w, Collect, &log);
  EXPECT_EQ(changed, 1);
  EXPECT_EQ(l.policy.extra_class_size, 4224u);
  EXPECT_EQ(l.policy.mid_cache_limit[HAK_EXTRA_CLASS - HAK_TINY_CLASSES],
            hak_ace_default_cache_limit(1024, 4224));
  ASSERT_EQ(log.size(), 1u);
  EXPECT_NE(log[0].find(": 4224 B (was 4608 B)"), std::string::npos) << log[0];
  for (int i = 0; i < 10; i++) EXPECT_EQ(hak_ace_learner_step(&l, &w, nullptr, nullptr), 0) << "once";
  // The new class's cache limit is steered like any other: it grows under flushes, within bounds.
  const unsigned extra = HAK_EXTRA_CLASS - HAK_TINY_CLASSES;
  const uint32_t placed = l.policy.mid_cache_limit[extra];
  hak_ace_window_t flushing = Quiet();
  flushing.active[HAK_EXTRA_CLASS] = 1;
  flushing.hits[extra] = 100;
  flushing.flushed[extra] = 900;
  for (int i = 0; i < 100; i++) hak_ace_learner_step(&l, &flushing, nullptr, nullptr);
  EXPECT_EQ(l.policy.mid_cache_limit[extra], 2 * placed);
}

TEST(Learner, TheExtraClassLeavesSpreadSizesAndWellFittedSizesAlone) {
  hak_ace_learner_t l;
  hak_ace_settings_t s = Settings();
  hak_ace_learner_init(&l, &s);
  hak_ace_window_t spread = Sizes(4200, 20, 20);
  for (int i = 0; i < 100; i++) hak_ace_learner_step(&l, &spread, nullptr, nullptr);
  EXPECT_EQ(l.policy.extra_class_size, 0u) << "no dominant size";
  hak_ace_window_t fitted = Sizes(4090, 900, 2);  // 4096 is a regular class
  for (int i = 0; i < 100; i++) hak_ace_learner_step(&l, &fitted, nullptr, nullptr);
  EXPECT_EQ(l.policy.extra_class_size, 0u) << "its class fits it already";
}

}  // namespace
