// ace/ucb1: the UCB1 multi-armed bandit the adaptive cache engine picks candidate settings with
// (which rounding limit to try next).
//
// Owns: nothing but the state it is handed. May use: base. Pure arithmetic: no allocation, no
// clock, no threads; the caller serialises calls (the engine's one background thread does).
//
// Each arm is tried once, then the one maximising  mean reward + sqrt(2 ln(total) / plays)
// (Auer, Cesa-Bianchi and Fischer, 2002). Rewards are in [0, 1].
#ifndef HAKMEM_ACE_UCB1_H
#define HAKMEM_ACE_UCB1_H

#include <stdint.h>

#include "hakmem/base.h"

HAK_EXTERN_C_BEGIN

#define HAK_UCB1_MAX_ARMS 8

typedef struct hak_ucb1_s {
  unsigned arms;
  uint64_t plays[HAK_UCB1_MAX_ARMS];
  double reward_sum[HAK_UCB1_MAX_ARMS];
  uint64_t total;
} hak_ucb1_t;

// arms in [1, HAK_UCB1_MAX_ARMS].
void hak_ucb1_init(hak_ucb1_t* bandit, unsigned arms);
// The arm to play next.
unsigned hak_ucb1_select(const hak_ucb1_t* bandit);
// Records a play of `arm` that earned `reward` (clamped to [0, 1]).
void hak_ucb1_update(hak_ucb1_t* bandit, unsigned arm, double reward);
double hak_ucb1_mean(const hak_ucb1_t* bandit, unsigned arm);
// ln(n) for n >= 1 (0 for 0), within 2e-6: n = m 2^e with m in [1, 2], and
// ln m = 2 atanh((m - 1) / (m + 1)), whose series is summed to the t^9 term (t <= 1/3). Its own,
// not libm's: loading libm for the one log the engine takes per decision cost a program that
// does not use libm itself 256 KiB of peak RSS.
double hak_ucb1_ln(uint64_t n);

HAK_EXTERN_C_END

#endif  // HAKMEM_ACE_UCB1_H
