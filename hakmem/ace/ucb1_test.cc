// UCB1 on simulated bandits (deterministic seeds) and the canary's adopt / rollback.
#include "hakmem/ace/ucb1.h"

#include <gtest/gtest.h>
#include <math.h>

#include <random>
#include <vector>

#include "hakmem/ace/canary.h"

namespace {

// Plays `rounds` times against Bernoulli arms of the given means; returns plays per arm.
std::vector<uint64_t> Play(hak_ucb1_t* bandit, const std::vector<double>& means, int rounds,
                           unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  for (int i = 0; i < rounds; i++) {
    unsigned arm = hak_ucb1_select(bandit);
    hak_ucb1_update(bandit, arm, uniform(rng) < means[arm] ? 1.0 : 0.0);
  }
  return std::vector<uint64_t>(bandit->plays, bandit->plays + bandit->arms);
}

TEST(Ucb1, TriesEveryArmOnceFirst) {
  hak_ucb1_t b;
  hak_ucb1_init(&b, 5);
  for (unsigned a = 0; a < 5; a++) {
    EXPECT_EQ(hak_ucb1_select(&b), a);
    hak_ucb1_update(&b, a, 0.5);
  }
}

// The arm with the best mean reward so far (the first of equals).
unsigned BestMean(const hak_ucb1_t& b) {
  unsigned best = 0;
  for (unsigned a = 1; a < b.arms; a++) {
    if (hak_ucb1_mean(&b, a) > hak_ucb1_mean(&b, best)) best = a;
  }
  return best;
}

unsigned InForce(const hak_canary_t& c) { return c.trialing ? c.candidate : c.incumbent; }

TEST(Ucb1, ConvergesToTheBestArmWithinTheRegretBound) {
  const std::vector<double> means = {0.30, 0.50, 0.70, 0.45};
  const int rounds = 5000;
  for (unsigned seed : {1u, 2u, 3u}) {
    hak_ucb1_t b;
    hak_ucb1_init(&b, (unsigned)means.size());
    std::vector<uint64_t> plays = Play(&b, means, rounds, seed);
    EXPECT_EQ(BestMean(b), 2u) << "seed " << seed;
    EXPECT_GT(plays[2], rounds * 8 / 10) << "seed " << seed;
    // Auer et al.: a suboptimal arm i is played at most 8 ln(n) / gap_i^2 + 1 + pi^2 / 3 times
    // in expectation.
    for (unsigned a = 0; a < means.size(); a++) {
      if (a == 2) continue;
      double gap = means[2] - means[a];
      double bound = 8.0 * log((double)rounds) / (gap * gap) + 1.0 + M_PI * M_PI / 3.0;
      EXPECT_LE((double)plays[a], bound) << "arm " << a << " seed " << seed;
    }
  }
}

TEST(Ucb1, ItsLogarithmMatchesLibms) {
  EXPECT_EQ(hak_ucb1_ln(1), 0.0);
  for (uint64_t n : {2ull, 3ull, 5ull, 7ull, 10ull, 1000ull, 65535ull, 65536ull, 1000003ull,
                     (1ull << 32) + 1, (1ull << 53) - 1, ~0ull}) {
    EXPECT_NEAR(hak_ucb1_ln(n), log((double)n), 2e-6) << n;
  }
  for (uint64_t n = 1; n < 100000; n += 7) EXPECT_NEAR(hak_ucb1_ln(n), log((double)n), 2e-6) << n;
}

TEST(Ucb1, RewardsAreClampedToTheUnitInterval) {
  hak_ucb1_t b;
  hak_ucb1_init(&b, 2);
  hak_ucb1_update(&b, 0, 7.0);
  hak_ucb1_update(&b, 1, -3.0);
  hak_ucb1_update(&b, 1, NAN);
  EXPECT_DOUBLE_EQ(hak_ucb1_mean(&b, 0), 1.0);
  EXPECT_DOUBLE_EQ(hak_ucb1_mean(&b, 1), 0.0);
  hak_ucb1_update(&b, 9, 1.0);  // no such arm: ignored
  EXPECT_EQ(b.total, 3u);
}

TEST(Canary, ARegressingCandidateIsRolledBack) {
  hak_canary_t c;
  hak_canary_init(&c, 0, 0.80);
  hak_canary_start(&c, 3);
  EXPECT_EQ(InForce(c), 3u) << "the candidate runs during its trial";
  EXPECT_EQ(hak_canary_finish(&c, 0.70, 0.01), 0u);
  EXPECT_EQ(InForce(c), 0u);
  EXPECT_EQ(c.rolled_back, 1u);
  // Within the margin is no improvement either.
  hak_canary_start(&c, 2);
  EXPECT_EQ(hak_canary_finish(&c, 0.805, 0.01), 0u);
}

TEST(Canary, ABetterCandidateIsAdopted) {
  hak_canary_t c;
  hak_canary_init(&c, 0, 0.50);
  hak_canary_start(&c, 1);
  EXPECT_EQ(hak_canary_finish(&c, 0.60, 0.01), 1u);
  EXPECT_EQ(c.adopted, 1u);
  EXPECT_DOUBLE_EQ(c.incumbent_score, 0.60);
  // The incumbent's score follows the workload between trials.
  hak_canary_observe_incumbent(&c, 0.40);
  hak_canary_start(&c, 0);
  EXPECT_EQ(hak_canary_finish(&c, 0.45, 0.01), 0u) << "the old setting now wins";
}

}  // namespace
