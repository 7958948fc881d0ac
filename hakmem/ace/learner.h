// ace/learner: the adaptive cache engine's decisions, as a pure function of what it observed.
// One call per observation window turns the window's figures into the next policy:
//   - idle classes: a mid size class no thread touched for `idle_ms` milliseconds is marked idle,
//     and heaps give back its cached blocks, empty slabs and their pages (a workload that moved
//     on to other sizes stops paying for the old ones). A class back soon after (it faults its
//     pages in again) waits four times as long next time; one back after long, half as long.
//     Only while memory grows elsewhere (fresh blocks carved): a program that is only freeing
//     looks idle in every class, and its memory is better kept for its next allocations;
//   - mid cache limits: one cap controller per mid class keeps the cache's hit rate (hits over
//     hits and blocks flushed to the slabs because it was full) inside a band, never above the
//     configured limit times two nor below an eighth of it;
//   - the rounding limit of the mid and the large range: a UCB1 bandit picks a candidate, a trial
//     (ace/canary) runs it for a stretch of windows, and it is adopted only if it scored better
//     than the incumbent, else rolled back;
//   - the extra class: when one 128-byte range of mid request sizes holds `extra_class_share` of
//     the slow path's samples and its regular class rounds it up by more than 1/16, the extra
//     class goes there.
//
// Owns: hak_ace_learner_t. May use: base, size_class, ace/{cap_controller, canary, policy,
// ucb1}. No clock, no threads, no allocation: the engine's thread feeds it real windows, tests
// feed it synthetic ones.
#ifndef HAKMEM_ACE_LEARNER_H
#define HAKMEM_ACE_LEARNER_H

#include <stddef.h>
#include <stdint.h>

#include "hakmem/ace/canary.h"
#include "hakmem/ace/cap_controller.h"
#include "hakmem/ace/policy.h"
#include "hakmem/ace/ucb1.h"
#include "hakmem/base.h"
#include "hakmem/size_class.h"

HAK_EXTERN_C_BEGIN

#define HAK_ACE_ROUNDING_ARMS 4
#define HAK_ACE_SIZE_BUCKETS (HAK_MID_MAX >> 7)  // mid request sizes by 128-byte range

typedef struct hak_ace_settings_s {
  uint32_t idle_ms;             // 0: no class is ever released as idle
  double hit_low, hit_high;     // mid cache hit-rate band
  uint32_t mid_cache_kb;        // the configured mid cache size: the limits start there
  uint32_t mid_round_pct;        // configured rounding limit: the incumbents
  uint32_t large_round_pct;
  uint32_t mid_round_max_pct;    // largest candidate (100: no search)
  uint32_t large_round_max_pct;
  double extra_class_share;            // 0: no extra class
} hak_ace_settings_t;

// One window's figures, as differences over the window.
typedef struct hak_ace_window_s {
  uint32_t ms;                             // how long the window lasted
  uint8_t active[HAK_CLASS_COUNT];         // some thread used the class
  uint64_t fresh_blocks;                   // blocks carved from memory never used before
  uint64_t hits[HAK_ACE_MID_CLASSES];      // mid cache hits
  uint64_t misses[HAK_ACE_MID_CLASSES];    // mid requests neither cache nor slab served
  uint64_t flushed[HAK_ACE_MID_CLASSES];   // blocks the mid cache gave back to their slabs
  uint64_t mid_sizes[HAK_ACE_SIZE_BUCKETS];
  uint64_t large_pages;                    // pages of large spans handed out
  uint64_t large_requested_pages;          // pages those requests asked for
  uint64_t large_clean_pages;              // of them, pages not committed before (faults)
  uint64_t rss_bytes;                      // at the end of the window (0: not read, see
  int64_t rss_growth;                      // over the window   hak_ace_learner_scores_rss)
} hak_ace_window_t;

// A rounding limit search: bandit, canary, and the stretch being scored.
typedef struct hak_ace_rounding_search_s {
  const char* range;  // "mid" or "large", for the log
  uint32_t arms[HAK_ACE_ROUNDING_ARMS];
  unsigned arm_count;
  hak_ucb1_t bandit;
  hak_canary_t canary;
  double score_sum;
  uint32_t scored;    // windows scored in this stretch
  uint32_t rest;      // stretches left before the next trial
} hak_ace_rounding_search_t;

typedef struct hak_ace_class_state_s {
  hak_cap_controller_t cap;
  uint32_t quiet_ms;       // unused since
  uint32_t idle_after_ms;  // quiet time after which it is released: learnt from regrets
  uint8_t used;    // used in some window
  uint8_t idle;
} hak_ace_class_state_t;

typedef struct hak_ace_learner_s {
  hak_ace_settings_t settings;
  hak_ace_class_state_t classes[HAK_CLASS_COUNT];
  hak_ace_rounding_search_t mid_rounding, large_rounding;
  uint64_t size_counts[HAK_ACE_SIZE_BUCKETS];
  uint64_t size_total;
  hak_ace_policy_t policy;  // as decided; version is the publisher's business
  uint64_t windows;
  uint64_t decisions;
} hak_ace_learner_t;

// Where decisions are reported: one line each, no newline. NULL: not reported.
typedef void (*hak_ace_log_fn)(void* arg, const char* line);

void hak_ace_learner_init(hak_ace_learner_t* learner, const hak_ace_settings_t* settings);

// The mid cache limit (blocks) the configuration gives a class of `block_size` bytes.
uint32_t hak_ace_default_cache_limit(uint32_t mid_cache_kb, size_t block_size);

// The extra class has `block_size` bytes (the learner's choice, or a placement it lost to): its size
// and cache limit in the policy, and a controller for that limit.
void hak_ace_learner_extra_placed(hak_ace_learner_t* learner, size_t block_size);

// Whether scores use the windows' RSS figures (a rounding limit search is on); if not they may be 0.
int hak_ace_learner_scores_rss(const hak_ace_learner_t* learner);

// Turns one window into decisions; returns nonzero if learner->policy changed.
int hak_ace_learner_step(hak_ace_learner_t* learner, const hak_ace_window_t* window,
                         hak_ace_log_fn log, void* log_arg);

HAK_EXTERN_C_END

#endif  // HAKMEM_ACE_LEARNER_H
