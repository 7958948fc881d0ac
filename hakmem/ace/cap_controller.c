#include "hakmem/ace/cap_controller.h"

void hak_cap_controller_init(hak_cap_controller_t* c, uint32_t cap, uint32_t min, uint32_t max,
                             uint32_t step, uint32_t dwell, double low, double high) {
  if (min > max) min = max;
  c->min = min;
  c->max = max;
  c->cap = cap < min ? min : cap > max ? max : cap;
  c->step = c->first_step = step ? step : 1;
  c->settled = 0;
  c->outside = 0;
  c->dwell = dwell;
  c->wait = 0;
  c->low = low;
  c->high = high < low ? low : high;
  c->last_move = 0;
}

#define SETTLED_PATIENCE 8

uint32_t hak_cap_controller_observe(hak_cap_controller_t* c, double hit_rate) {
  if (c->wait > 0) {
    c->wait--;
    return c->cap;
  }
  int move = hit_rate < c->low && c->cap < c->max    ? +1
             : hit_rate > c->high && c->cap > c->min ? -1
                                                      : 0;
  if (c->settled) {
    double drift = hit_rate - c->settled_rate;
    c->outside = drift > c->high - c->low || -drift > c->high - c->low ? c->outside + 1 : 0;
    if (c->outside < SETTLED_PATIENCE * (c->dwell + 1)) return c->cap;
    c->settled = 0;  // the workload changed: search again
    c->outside = 0;
    c->step = c->first_step;
    c->last_move = 0;
  }
  if (move == 0) return c->cap;
  if (c->last_move != 0 && move != c->last_move) {
    if (c->step == 1 && move < 0) {  // between two adjacent caps: keep the one with more hits
      c->settled = 1;
      c->settled_rate = hit_rate;
      return c->cap;
    }
    if (c->step > 1) c->step /= 2;
  }
  if (move > 0) {
    c->cap = c->max - c->cap < c->step ? c->max : c->cap + c->step;
  } else {
    c->cap = c->cap - c->min < c->step ? c->min : c->cap - c->step;
  }
  c->last_move = move;
  c->wait = c->dwell;
  return c->cap;
}
