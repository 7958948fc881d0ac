#include "hakmem/ace/ucb1.h"

#include <string.h>

void hak_ucb1_init(hak_ucb1_t* bandit, unsigned arms) {
  memset(bandit, 0, sizeof *bandit);
  if (arms < 1) arms = 1;
  bandit->arms = arms > HAK_UCB1_MAX_ARMS ? HAK_UCB1_MAX_ARMS : arms;
}

double hak_ucb1_mean(const hak_ucb1_t* bandit, unsigned arm) {
  return bandit->plays[arm] ? bandit->reward_sum[arm] / (double)bandit->plays[arm] : 0.0;
}

double hak_ucb1_ln(uint64_t n) {
  if (n == 0) return 0.0;
  unsigned e = 63u - (unsigned)__builtin_clzll(n);
  double m = (double)n / (double)((uint64_t)1 << e);  // in [1, 2]
  double t = (m - 1.0) / (m + 1.0);                   // in [0, 1/3]
  double t2 = t * t;
  double atanh = t * (1.0 + t2 * (1.0 / 3 + t2 * (1.0 / 5 + t2 * (1.0 / 7 + t2 / 9))));
  return (double)e * 0.69314718055994530942 + 2.0 * atanh;
}

unsigned hak_ucb1_select(const hak_ucb1_t* bandit) {
  for (unsigned a = 0; a < bandit->arms; a++) {
    if (bandit->plays[a] == 0) return a;
  }
  double log_total = hak_ucb1_ln(bandit->total);
  unsigned best = 0;
  double best_index = -1.0;
  for (unsigned a = 0; a < bandit->arms; a++) {
    double bonus = __builtin_sqrt(2.0 * log_total / (double)bandit->plays[a]);
    double index = hak_ucb1_mean(bandit, a) + bonus;
    if (index > best_index) {
      best_index = index;
      best = a;
    }
  }
  return best;
}

void hak_ucb1_update(hak_ucb1_t* bandit, unsigned arm, double reward) {
  if (arm >= bandit->arms) return;
  if (!(reward >= 0.0)) reward = 0.0;  // NaN too
  if (reward > 1.0) reward = 1.0;
  bandit->plays[arm]++;
  bandit->reward_sum[arm] += reward;
  bandit->total++;
}
