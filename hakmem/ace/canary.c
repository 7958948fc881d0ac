#include "hakmem/ace/canary.h"

void hak_canary_init(hak_canary_t* c, unsigned incumbent, double score) {
  c->incumbent = incumbent;
  c->incumbent_score = score;
  c->candidate = incumbent;
  c->trialing = 0;
  c->adopted = c->rolled_back = 0;
}

void hak_canary_start(hak_canary_t* c, unsigned candidate) {
  c->candidate = candidate;
  c->trialing = candidate != c->incumbent;
}

unsigned hak_canary_finish(hak_canary_t* c, double score, double margin) {
  if (!c->trialing) {
    hak_canary_observe_incumbent(c, score);
    return c->incumbent;
  }
  c->trialing = 0;
  if (score > c->incumbent_score + margin) {
    c->incumbent = c->candidate;
    c->incumbent_score = score;
    c->adopted++;
  } else {
    c->rolled_back++;
  }
  return c->incumbent;
}

void hak_canary_observe_incumbent(hak_canary_t* c, double score) { c->incumbent_score = score; }
