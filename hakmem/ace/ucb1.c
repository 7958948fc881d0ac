#include "hakmem/ace/ucb1.h"

#include <math.h>
#include <string.h>

void hak_ucb1_init(hak_ucb1_t* bandit, unsigned arms) {
  memset(bandit, 0, sizeof *bandit);
  if (arms < 1) arms = 1;
  bandit->arms = arms > HAK_UCB1_MAX_ARMS ? HAK_UCB1_MAX_ARMS : arms;
}

double hak_ucb1_mean(const hak_ucb1_t* bandit, unsigned arm) {
  return bandit->plays[arm] ? bandit->reward_sum[arm] / (double)bandit->plays[arm] : 0.0;
}

unsigned hak_ucb1_select(const hak_ucb1_t* bandit) {
  for (unsigned a = 0; a < bandit->arms; a++) {
    if (bandit->plays[a] == 0) return a;
  }
  double log_total = log((double)bandit->total);
  unsigned best = 0;
  double best_index = -1.0;
  for (unsigned a = 0; a < bandit->arms; a++) {
    double index = hak_ucb1_mean(bandit, a) + sqrt(2.0 * log_total / (double)bandit->plays[a]);
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
