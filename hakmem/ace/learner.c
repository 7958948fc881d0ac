#include "hakmem/ace/learner.h"

#include <stdio.h>
#include <string.h>

// A rounding limit trial, and the incumbent's scoring between trials, last this many windows with
// traffic.
#define STRETCH_WINDOWS 5
// Stretches of the incumbent between two trials: exploring costs, so it is kept to a fraction.
#define REST_STRETCHES 4
// A candidate must beat the incumbent by this much reward to be adopted.
#define ADOPT_MARGIN 0.01
// Windows below these counts say too little to score.
#define MIN_CLASS_EVENTS 64
#define MIN_MID_EVENTS 256
#define MIN_LARGE_PAGES 64
#define EXTRA_CLASS_SAMPLES 4096
#define CAP_DWELL 2

// The class's block size as the learner knows it: the extra class has the size the learner chose (the
// size class table learns it only when the engine places it).
static size_t class_size(const hak_ace_learner_t* l, unsigned cls) {
  return cls == HAK_EXTRA_CLASS ? l->policy.extra_class_size : hak_class_size(cls);
}

static void report(hak_ace_learner_t* l, hak_ace_log_fn log, void* arg, const char* line) {
  l->decisions++;
  if (log) log(arg, line);
}

uint32_t hak_ace_default_cache_limit(uint32_t mid_cache_kb, size_t block_size) {
  return block_size ? (uint32_t)((size_t)mid_cache_kb * 1024 / block_size) : 0;
}

static void rounding_search_init(hak_ace_rounding_search_t* s, const char* range,
                                 uint32_t incumbent,
                      uint32_t max_pct) {
  memset(s, 0, sizeof *s);
  s->range = range;
  s->arms[0] = incumbent;
  s->arm_count = 1;
  if (max_pct > incumbent) {
    for (unsigned i = 1; i < HAK_ACE_ROUNDING_ARMS; i++) {
      s->arms[i] = incumbent + (max_pct - incumbent) * i / (HAK_ACE_ROUNDING_ARMS - 1);
    }
    s->arm_count = HAK_ACE_ROUNDING_ARMS;
  }
  hak_ucb1_init(&s->bandit, s->arm_count);
  hak_canary_init(&s->canary, 0, 0.0);
}

// The configured limit of mid class `cls` of `block_size` bytes, and a controller between an
// eighth of it and twice it.
static void limit_setup(hak_ace_learner_t* l, unsigned cls, size_t block_size) {
  uint32_t limit = hak_ace_default_cache_limit(l->settings.mid_cache_kb, block_size);
  l->policy.mid_cache_limit[cls - HAK_TINY_CLASSES] = limit;
  hak_cap_controller_init(&l->classes[cls].cap, limit, limit / 8 ? limit / 8 : 1, limit * 2,
                          limit / 4 ? limit / 4 : 1, CAP_DWELL, l->settings.hit_low,
                          l->settings.hit_high);
}

void hak_ace_learner_init(hak_ace_learner_t* l, const hak_ace_settings_t* settings) {
  memset(l, 0, sizeof *l);
  l->settings = *settings;
  l->policy.mid_round_pct = settings->mid_round_pct;
  l->policy.large_round_pct = settings->large_round_pct;
  for (unsigned c = HAK_TINY_CLASSES; c < HAK_CLASS_COUNT; c++) limit_setup(l, c, hak_class_size(c));
  for (unsigned c = 0; c < HAK_CLASS_COUNT; c++) l->classes[c].idle_after_ms = settings->idle_ms;
  rounding_search_init(&l->mid_rounding, "mid", settings->mid_round_pct,
                       settings->mid_round_max_pct);
  rounding_search_init(&l->large_rounding, "large", settings->large_round_pct,
                       settings->large_round_max_pct);
}

static void set_idle(hak_ace_policy_t* p, unsigned cls, int idle) {
  uint32_t bit = (uint32_t)1 << (cls % 32);
  if (idle) p->idle_classes[cls / 32] |= bit;
  else p->idle_classes[cls / 32] &= ~bit;
}

// A class back in use within REGRET_TIMES its idle time had its memory given back for little
// (and faults it in again): its idle time grows fourfold, up to MAX_IDLE_TIMES the configured
// one. Back after longer, the release paid: its idle time halves, down to the configured one.
#define REGRET_TIMES 8
#define MAX_IDLE_TIMES 64

static int step_idle(hak_ace_learner_t* l, const hak_ace_window_t* w, hak_ace_log_fn log,
                     void* arg) {
  int changed = 0;
  char line[160];
  uint32_t base = l->settings.idle_ms;
  for (unsigned c = 0; c < HAK_CLASS_COUNT; c++) {
    hak_ace_class_state_t* s = &l->classes[c];
    if (w->active[c]) {
      s->used = 1;
      if (s->idle) {
        if (s->quiet_ms < REGRET_TIMES * s->idle_after_ms) {
          s->idle_after_ms = s->idle_after_ms * 4 < MAX_IDLE_TIMES * base ? s->idle_after_ms * 4
                                                                          : MAX_IDLE_TIMES * base;
        } else if (s->idle_after_ms / 2 >= base) {
          s->idle_after_ms /= 2;
        }
        s->idle = 0;
        set_idle(&l->policy, c, 0);
        changed = 1;
        snprintf(line, sizeof line, "class %u (%zu B) in use again after %u ms: idle after %u ms",
                 c, class_size(l, c), s->quiet_ms, s->idle_after_ms);
        report(l, log, arg, line);
      }
      s->quiet_ms = 0;
      continue;
    }
    // Tiny classes show their use only when a slab runs dry: one allocating a block now and then
    // from a slab of hundreds would look idle. Mid classes show every cache push and pop.
    if (!s->used || base == 0 || c < HAK_TINY_CLASSES) continue;
    s->quiet_ms += w->ms;
    if (s->idle || s->quiet_ms < s->idle_after_ms || w->fresh_blocks == 0) continue;
    s->idle = 1;
    set_idle(&l->policy, c, 1);
    changed = 1;
    snprintf(line, sizeof line, "class %u (%zu B) idle for %u ms: its memory goes back", c,
             class_size(l, c), s->quiet_ms);
    report(l, log, arg, line);
  }
  return changed;
}

static int step_caps(hak_ace_learner_t* l, const hak_ace_window_t* w, hak_ace_log_fn log,
                     void* arg) {
  int changed = 0;
  char line[160];
  for (unsigned i = 0; i < HAK_ACE_MID_CLASSES; i++) {
    unsigned c = HAK_TINY_CLASSES + i;
    // A hit is a freed block the cache handed out again; a flushed one went back to its slab
    // because the cache was full (a larger cache would have kept it). Misses of a growing
    // working set are no cache's fault, and flushes of an unused class (a cache trimmed to a
    // new limit, an idle class released) say nothing of its use.
    uint64_t events = w->hits[i] + w->flushed[i];
    if (!w->active[c] || events < MIN_CLASS_EVENTS || class_size(l, c) == 0) continue;
    double rate = (double)w->hits[i] / (double)events;
    uint32_t before = l->policy.mid_cache_limit[i];
    uint32_t cap = hak_cap_controller_observe(&l->classes[c].cap, rate);
    if (cap == before) continue;
    l->policy.mid_cache_limit[i] = cap;
    changed = 1;
    snprintf(line, sizeof line, "class %u (%zu B) hit rate %u%%: cache limit %u -> %u blocks", c,
             class_size(l, c), (unsigned)(rate * 100), before, cap);
    report(l, log, arg, line);
  }
  return changed;
}

static double clamp01(double x) { return x < 0 ? 0 : x > 1 ? 1 : x; }

// RSS grown over the window, as a penalty in [0, 1]: memory is part of every score.
static double rss_penalty(const hak_ace_window_t* w) {
  if (w->rss_growth <= 0 || w->rss_bytes == 0) return 0;
  return clamp01(4.0 * (double)w->rss_growth / (double)w->rss_bytes);
}

// Feeds one window's score (negative: the range saw too little traffic to score); returns nonzero
// if the rounding limit in force changed, which is then *pct.
static int rounding_step(hak_ace_learner_t* l, hak_ace_rounding_search_t* s, double score,
                         uint32_t* pct,
                     hak_ace_log_fn log, void* arg) {
  if (s->arm_count < 2 || score < 0) return 0;
  s->score_sum += score;
  if (++s->scored < STRETCH_WINDOWS) return 0;
  double mean = s->score_sum / s->scored;
  s->score_sum = 0;
  s->scored = 0;
  hak_canary_t* canary = &s->canary;
  char line[160];
  if (canary->trialing) {
    unsigned arm = canary->candidate;
    double incumbent_score = canary->incumbent_score;
    unsigned now = hak_canary_finish(canary, mean, ADOPT_MARGIN);
    hak_ucb1_update(&s->bandit, arm, mean);
    s->rest = REST_STRETCHES;
    snprintf(line, sizeof line, "%s rounding limit %u%%: score %u vs %u per mille: %s", s->range,
             s->arms[arm], (unsigned)(mean * 1000), (unsigned)(incumbent_score * 1000),
             now == arm ? "adopted" : "rolled back");
    report(l, log, arg, line);
    *pct = s->arms[now];
    return 1;
  }
  hak_canary_observe_incumbent(canary, mean);
  hak_ucb1_update(&s->bandit, canary->incumbent, mean);
  if (s->rest > 0) {
    s->rest--;
    return 0;
  }
  unsigned next = hak_ucb1_select(&s->bandit);
  if (next == canary->incumbent) {
    s->rest = REST_STRETCHES;
    return 0;
  }
  hak_canary_start(canary, next);
  snprintf(line, sizeof line, "%s rounding limit trial of %u%% (incumbent %u%%)", s->range, s->arms[next],
           s->arms[canary->incumbent]);
  report(l, log, arg, line);
  *pct = s->arms[next];
  return 1;
}

static double mid_score(const hak_ace_window_t* w) {
  uint64_t hits = 0, slow = 0;
  for (unsigned i = 0; i < HAK_ACE_MID_CLASSES; i++) {
    hits += w->hits[i];
    slow += w->misses[i] + w->flushed[i];
  }
  if (hits + slow < MIN_MID_EVENTS) return -1;
  return clamp01(1.0 - (double)slow / (double)(hits + slow) - rss_penalty(w));
}

static double large_score(const hak_ace_window_t* w) {
  if (w->large_pages < MIN_LARGE_PAGES) return -1;
  double pages = (double)w->large_pages;
  double clean = (double)w->large_clean_pages / pages;
  double waste = (double)(w->large_pages - w->large_requested_pages) / pages;
  return clamp01(1.0 - clean - 0.5 * waste - rss_penalty(w));
}

void hak_ace_learner_extra_placed(hak_ace_learner_t* l, size_t block_size) {
  l->policy.extra_class_size = (uint32_t)block_size;
  limit_setup(l, HAK_EXTRA_CLASS, block_size);
}

int hak_ace_learner_scores_rss(const hak_ace_learner_t* l) {
  return l->mid_rounding.arm_count > 1 || l->large_rounding.arm_count > 1;
}

static int step_extra_class(hak_ace_learner_t* l, const hak_ace_window_t* w, hak_ace_log_fn log,
                     void* arg) {
  if (l->settings.extra_class_share <= 0 || l->policy.extra_class_size != 0) return 0;
  for (unsigned i = 0; i < HAK_ACE_SIZE_BUCKETS; i++) {
    l->size_counts[i] += w->mid_sizes[i];
    l->size_total += w->mid_sizes[i];
  }
  if (l->size_total < EXTRA_CLASS_SAMPLES) return 0;
  unsigned peak = 0;
  for (unsigned i = 1; i < HAK_ACE_SIZE_BUCKETS; i++) {
    if (l->size_counts[i] > l->size_counts[peak]) peak = i;
  }
  double share = (double)l->size_counts[peak] / (double)l->size_total;
  size_t size = ((size_t)peak + 1) << 7;
  size_t regular = hak_class_size(hak_mid_class_of_index[peak]);
  if (share >= l->settings.extra_class_share && hak_size_class_extra_fits(size) &&
      (regular - size) * 16 > size) {
    hak_ace_learner_extra_placed(l, size);
    char line[160];
    snprintf(line, sizeof line, "extra class: %u%% of mid requests are %zu-%zu B: %zu B (was %zu B)",
             (unsigned)(share * 100), size - 127, size, size, regular);
    report(l, log, arg, line);
    return 1;
  }
  // Not now: older samples weigh half from here on, so a new peak can emerge.
  l->size_total = 0;
  for (unsigned i = 0; i < HAK_ACE_SIZE_BUCKETS; i++) {
    l->size_counts[i] /= 2;
    l->size_total += l->size_counts[i];
  }
  return 0;
}

int hak_ace_learner_step(hak_ace_learner_t* l, const hak_ace_window_t* w, hak_ace_log_fn log,
                         void* arg) {
  l->windows++;
  int changed = step_idle(l, w, log, arg);
  changed |= step_caps(l, w, log, arg);
  changed |= rounding_step(l, &l->mid_rounding, mid_score(w), &l->policy.mid_round_pct, log, arg);
  changed |= rounding_step(l, &l->large_rounding, large_score(w), &l->policy.large_round_pct, log,
                           arg);
  changed |= step_extra_class(l, w, log, arg);
  return changed;
}
