// ace/canary: trials a candidate setting against the incumbent for one observation window and
// adopts it only if it scored better by a margin; otherwise the incumbent comes back (rollback).
//
// Owns: nothing but the state it is handed. May use: base. Pure logic; the caller serialises
// calls and applies the setting in force (the candidate while `trialing`, else the incumbent).
#ifndef HAKMEM_ACE_CANARY_H
#define HAKMEM_ACE_CANARY_H

#include "hakmem/base.h"

HAK_EXTERN_C_BEGIN

typedef struct hak_canary_s {
  unsigned incumbent;      // the setting in force outside trials
  double incumbent_score;  // its score in its last window
  unsigned candidate;      // under trial while `trialing`
  int trialing;
  unsigned adopted, rolled_back;
} hak_canary_t;

void hak_canary_init(hak_canary_t* c, unsigned incumbent, double score);
// Starts a trial of `candidate`: it is in force until hak_canary_finish.
void hak_canary_start(hak_canary_t* c, unsigned candidate);
// Ends the trial with the candidate's window score: adopted if it beats the incumbent's by more
// than `margin`, else rolled back. Returns the setting in force afterwards.
unsigned hak_canary_finish(hak_canary_t* c, double score, double margin);
// Records a window of the incumbent alone (its score drifts with the workload).
void hak_canary_observe_incumbent(hak_canary_t* c, double score);

HAK_EXTERN_C_END

#endif  // HAKMEM_ACE_CANARY_H
