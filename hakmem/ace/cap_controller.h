// ace/cap_controller: steers one capacity (a mid cache's limit, a refill batch) so that the hit
// rate of the cache it sizes stays in a target band, with bounded steps, a dwell time between
// moves, and a step that halves whenever the direction reverses: a hit rate that flips across
// the band makes the steps shrink until the cap settles, never a sustained oscillation. Where no
// cap lands inside the band, it settles on the smallest cap above the band's bottom, and leaves
// it only for a sustained change (hit rates a band's width away from the one it settled on, for
// SETTLED_PATIENCE dwell times), which restarts it with its first step.
//
// Owns: nothing but the state it is handed. May use: base. Pure arithmetic; the caller
// serialises calls (the engine's background thread).
#ifndef HAKMEM_ACE_CAP_CONTROLLER_H
#define HAKMEM_ACE_CAP_CONTROLLER_H

#include <stdint.h>

#include "hakmem/base.h"

HAK_EXTERN_C_BEGIN

typedef struct hak_cap_controller_s {
  uint32_t cap;
  uint32_t min, max;
  uint32_t first_step;
  uint32_t step;          // current step (halves on every reversal, never below 1)
  uint32_t dwell;         // windows to wait after a move before the next one
  uint32_t wait;          // windows left to wait
  double low, high;       // target hit-rate band
  int last_move;          // +1 grew, -1 shrank, 0 none yet
  int settled;            // a step-1 reversal was refused: the cap holds
  double settled_rate;    // the hit rate it settled on
  uint32_t outside;       // consecutive windows far from settled_rate
} hak_cap_controller_t;

void hak_cap_controller_init(hak_cap_controller_t* c, uint32_t cap, uint32_t min, uint32_t max,
                             uint32_t step, uint32_t dwell, double low, double high);

// Feeds the hit rate of one observation window; returns the cap to use from now on. Below the
// band the cap grows (more hits), above it shrinks (less memory held), inside it stays.
uint32_t hak_cap_controller_observe(hak_cap_controller_t* c, double hit_rate);

HAK_EXTERN_C_END

#endif  // HAKMEM_ACE_CAP_CONTROLLER_H
