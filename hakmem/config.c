#include "hakmem/config.h"

#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "hakmem/base.h"

extern char** environ;

hak_config_t hak_config = {
#define HAK_CONFIG_DEFAULT(field, env, def, lo, hi, doc) .field = (def),
    HAK_CONFIG_FIELDS(HAK_CONFIG_DEFAULT)
#undef HAK_CONFIG_DEFAULT
};

int hak_config_parse_int(const char* text, int64_t lo, int64_t hi, int64_t* out) {
  if (text == NULL) return 0;
  int negative = *text == '-';
  if (negative) text++;
  if (*text == '\0') return 0;  // "" and a lone "-" have no digits
  // The magnitude accumulates unsigned so that INT64_MIN, one past INT64_MAX, still parses.
  uint64_t limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
  uint64_t magnitude = 0;
  for (; *text; text++) {
    if (*text < '0' || *text > '9') return 0;
    unsigned digit = (unsigned)(*text - '0');
    if (magnitude > (limit - digit) / 10) return 0;
    magnitude = magnitude * 10 + digit;
  }
  int64_t value = negative ? (int64_t)(0 - magnitude) : (int64_t)magnitude;
  if (value < lo || value > hi) return 0;
  *out = value;
  return 1;
}

const hak_config_var_t hak_config_vars[] = {
#define HAK_CONFIG_VAR(field, env, def, lo, hi, doc) \
  {env, (def), (lo), (hi), doc, offsetof(hak_config_t, field)},
    HAK_CONFIG_FIELDS(HAK_CONFIG_VAR)
#undef HAK_CONFIG_VAR
};
const size_t hak_config_var_count = sizeof hak_config_vars / sizeof hak_config_vars[0];

static int64_t* field_of(const hak_config_var_t* var) {
  return (int64_t*)((char*)&hak_config + var->offset);
}

// Profiles: the defaults each one changes. Everything else keeps the table's default.
typedef struct profile_default_s {
  int profile;
  const char* name;
  int64_t value;
} profile_default_t;

static const char* const profile_names[HAK_PROFILE_COUNT] = {
    "default", "throughput", "low-memory", "low-latency", "debug",
};

static const profile_default_t profile_defaults[] = {
    // Keep memory longer and cache more: fewer page faults and syscalls, more RSS.
    {HAK_PROFILE_THROUGHPUT, "HAKMEM_PURGE_DELAY_MS", 1000},
    {HAK_PROFILE_THROUGHPUT, "HAKMEM_SEGMENT_CACHE", 32},
    {HAK_PROFILE_THROUGHPUT, "HAKMEM_MID_CACHE_KB", 2048},
    {HAK_PROFILE_THROUGHPUT, "HAKMEM_HUGE_CACHE_MB", 256},
    // Give memory back quickly. The mid caches keep their size: smaller ones raise peak RSS, their
    // overflow going back to slabs while refills carve fresh pages (128 KiB per class took
    // mid_large_mt from 31 to 42 MiB and realloc_growth from 44 to 52: docs/BENCHMARKS.md).
    {HAK_PROFILE_LOW_MEMORY, "HAKMEM_PURGE_DELAY_MS", 20},
    {HAK_PROFILE_LOW_MEMORY, "HAKMEM_SEGMENT_CACHE", 0},
    {HAK_PROFILE_LOW_MEMORY, "HAKMEM_HUGE_CACHE_MB", 8},
    // Few syscalls on allocation paths: purge late, keep segments and huge blocks mapped.
    {HAK_PROFILE_LOW_LATENCY, "HAKMEM_PURGE_DELAY_MS", 5000},
    {HAK_PROFILE_LOW_LATENCY, "HAKMEM_SEGMENT_CACHE", 64},
    {HAK_PROFILE_LOW_LATENCY, "HAKMEM_HUGE_CACHE_MB", 512},
    // Every check and report on.
    {HAK_PROFILE_DEBUG, "HAKMEM_CHECK_FREES", 1},
    {HAK_PROFILE_DEBUG, "HAKMEM_STATS", 1},
    {HAK_PROFILE_DEBUG, "HAKMEM_CRASH_HANDLER", 1},
};

int hak_config_profile_parse(const char* text) {
  if (text == NULL) return -1;
  for (int p = 1; p < HAK_PROFILE_COUNT; p++) {
    if (strcmp(text, profile_names[p]) == 0) return p;
  }
  return -1;
}

const char* hak_config_profile_name(int profile) {
  return profile >= 0 && profile < HAK_PROFILE_COUNT ? profile_names[profile] : "?";
}

int64_t hak_config_profile_default(int profile, const hak_config_var_t* var) {
  for (size_t i = 0; i < sizeof profile_defaults / sizeof profile_defaults[0]; i++) {
    const profile_default_t* d = &profile_defaults[i];
    if (d->profile == profile && strcmp(d->name, var->name) == 0) return d->value;
  }
  return var->def;
}

// Variables that had another name: the old one still works, with one warning naming the new one.
static const struct {
  const char* old_name;
  const char* name;
} renamed[] = {
    {"HAKMEM_MID_WMAX_PCT", "HAKMEM_MID_ROUND_PCT"},
    {"HAKMEM_LARGE_WMAX_PCT", "HAKMEM_LARGE_ROUND_PCT"},
    {"HAKMEM_HUGE_WMAX_PCT", "HAKMEM_HUGE_ROUND_PCT"},
    {"HAKMEM_ACE_MID_WMAX_MAX_PCT", "HAKMEM_ACE_MID_ROUND_MAX_PCT"},
    {"HAKMEM_ACE_LARGE_WMAX_MAX_PCT", "HAKMEM_ACE_LARGE_ROUND_MAX_PCT"},
    {"HAKMEM_ACE_DYN1_PCT", "HAKMEM_ACE_EXTRA_CLASS_PCT"},
};

const char* hak_config_new_name(const char* old_name) {
  for (size_t i = 0; i < sizeof renamed / sizeof renamed[0]; i++) {
    if (strcmp(renamed[i].old_name, old_name) == 0) return renamed[i].name;
  }
  return NULL;
}

// The value of `var` in the environment, under its name or the one it had before.
static const char* value_of(const hak_config_var_t* var, const char* (*getenv_fn)(const char*)) {
  const char* text = getenv_fn(var->name);
  if (text != NULL) return text;
  for (size_t i = 0; i < sizeof renamed / sizeof renamed[0]; i++) {
    if (strcmp(renamed[i].name, var->name) != 0) continue;
    text = getenv_fn(renamed[i].old_name);
    if (text != NULL) {
      hak_warn("hakmem: %s is now called %s; using its value", renamed[i].old_name, var->name);
    }
    return text;
  }
  return NULL;
}

int hak_config_init(const char* (*getenv_fn)(const char* name)) {
  int invalid = 0;
  const char* profile_text = getenv_fn(HAK_PROFILE_ENV);
  int profile = profile_text == NULL ? HAK_PROFILE_NONE : hak_config_profile_parse(profile_text);
  if (profile < 0) {
    hak_warn("hakmem: invalid %s=\"%.80s\" (expected throughput, low-memory, low-latency or "
             "debug); using none",
             HAK_PROFILE_ENV, profile_text);
    profile = HAK_PROFILE_NONE;
    invalid++;
  }
  hak_config.profile = profile;
  for (size_t i = 0; i < hak_config_var_count; i++) {
    const hak_config_var_t* var = &hak_config_vars[i];
    int64_t def = hak_config_profile_default(profile, var);
    const char* text = value_of(var, getenv_fn);
    *field_of(var) = def;
    if (text != NULL && !hak_config_parse_int(text, var->min, var->max, field_of(var))) {
      hak_warn("hakmem: invalid %s=\"%.80s\" (expected an integer in [%lld, %lld]); using %lld",
               var->name, text, (long long)var->min, (long long)var->max, (long long)def);
      invalid++;
    }
  }
  return invalid;
}

// Edit distance of two short names (longer ones are cut at 63 characters).
static unsigned edit_distance(const char* a, const char* b) {
  enum { MAX = 64 };
  unsigned row[MAX];
  size_t la = strnlen(a, MAX - 1), lb = strnlen(b, MAX - 1);
  for (size_t j = 0; j <= lb; j++) row[j] = (unsigned)j;
  for (size_t i = 1; i <= la; i++) {
    unsigned diagonal = row[0];
    row[0] = (unsigned)i;
    for (size_t j = 1; j <= lb; j++) {
      unsigned above = row[j];
      unsigned best = diagonal + (a[i - 1] != b[j - 1]);
      if (above + 1 < best) best = above + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      row[j] = best;
      diagonal = above;
    }
  }
  return row[lb];
}

// How far a mistyped `name` is from `known`: a name that is a prefix of the other (a truncated
// or pluralised spelling) comes first, by length difference, then edit distance.
static unsigned name_distance(const char* name, const char* known) {
  size_t ln = strlen(name), lk = strlen(known);
  size_t shorter = ln < lk ? ln : lk;
  if (strncmp(name, known, shorter) == 0) return (unsigned)(ln > lk ? ln - lk : lk - ln);
  return 1000 + edit_distance(name, known);
}

const hak_config_var_t* hak_config_find(const char* name, const char** closest) {
  unsigned best = name_distance(name, HAK_PROFILE_ENV);
  if (closest != NULL) *closest = HAK_PROFILE_ENV;
  for (size_t i = 0; i < hak_config_var_count; i++) {
    const hak_config_var_t* var = &hak_config_vars[i];
    if (strcmp(var->name, name) == 0) return var;
    unsigned d = name_distance(name, var->name);
    if (closest != NULL && d < best) {
      best = d;
      *closest = var->name;
    }
  }
  return NULL;
}

int hak_config_warn_unknown(const char* const* entries) {
  static const char prefix[] = "HAKMEM_";
  int unknown = 0;
  for (; entries != NULL && *entries != NULL; entries++) {
    const char* entry = *entries;
    if (strncmp(entry, prefix, sizeof prefix - 1) != 0) continue;
    char name[64];
    size_t len = strcspn(entry, "=");
    if (len >= sizeof name) len = sizeof name - 1;
    memcpy(name, entry, len);
    name[len] = '\0';
    const char* closest = NULL;
    if (strcmp(name, HAK_PROFILE_ENV) == 0 || hak_config_find(name, &closest) != NULL ||
        hak_config_new_name(name) != NULL) {
      continue;  // known, or renamed (hak_config_init warned)
    }
    hak_warn("hakmem: unknown variable %s ignored (did you mean %s?)", name, closest);
    unknown++;
  }
  return unknown;
}

static const char* plain_getenv(const char* name) { return getenv(name); }

// pthread_once, not a flag of our own: glibc restarts a once whose initialiser was running in
// another thread when the process forked, where a spin on a flag would wait forever in the child.
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int initialised;  // __atomic access: the one-load fast path

static void init_from_environment(void) {
  hak_config_init(plain_getenv);
  hak_config_warn_unknown((const char* const*)environ);
  __atomic_store_n(&initialised, 1, __ATOMIC_RELEASE);
}

void hak_config_init_once(void) {
  if (__atomic_load_n(&initialised, __ATOMIC_ACQUIRE)) return;
  pthread_once(&init_once, init_from_environment);
}
