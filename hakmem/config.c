#include "hakmem/config.h"

#include <limits.h>
#include <sched.h>
#include <stdlib.h>

#include "hakmem/base.h"

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

void hak_config_init(const char* (*getenv_fn)(const char* name)) {
#define HAK_CONFIG_READ(field, env, def, lo, hi, doc)                                         \
  do {                                                                                        \
    const char* text = getenv_fn(env);                                                        \
    hak_config.field = (def);                                                                 \
    if (text != NULL && !hak_config_parse_int(text, (lo), (hi), &hak_config.field)) {         \
      hak_warn("hakmem: invalid %s=\"%s\" (expected an integer in [%lld, %lld]); using %lld", \
               env, text, (long long)(lo), (long long)(hi), (long long)(def));                \
    }                                                                                         \
  } while (0);
  HAK_CONFIG_FIELDS(HAK_CONFIG_READ)
#undef HAK_CONFIG_READ
}

static const char* plain_getenv(const char* name) { return getenv(name); }

static int init_state;  // 0: not started, 1: in progress, 2: done (__atomic access)

void hak_config_init_once(void) {
  if (__atomic_load_n(&init_state, __ATOMIC_ACQUIRE) == 2) return;
  int expected = 0;
  if (!__atomic_compare_exchange_n(&init_state, &expected, 1, 0, __ATOMIC_ACQ_REL,
                                   __ATOMIC_ACQUIRE)) {
    while (__atomic_load_n(&init_state, __ATOMIC_ACQUIRE) != 2) sched_yield();
    return;
  }
  hak_config_init(plain_getenv);
  __atomic_store_n(&init_state, 2, __ATOMIC_RELEASE);
}
