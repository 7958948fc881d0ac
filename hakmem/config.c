#include "hakmem/config.h"

#include <limits.h>

#include "hakmem/base.h"

hak_config_t hak_config = {
#define HAK_CONFIG_DEFAULT(field, env, def, lo, hi, doc) .field = (def),
    HAK_CONFIG_FIELDS(HAK_CONFIG_DEFAULT)
#undef HAK_CONFIG_DEFAULT
};

int hak_config_parse_int(const char* text, int64_t lo, int64_t hi, int64_t* out) {
  if (text == NULL || *text == '\0') return 0;
  int negative = *text == '-';
  if (negative) text++;
  int64_t value = 0;
  for (; *text; text++) {
    if (*text < '0' || *text > '9') return 0;
    if (value > (INT64_MAX - (*text - '0')) / 10) return 0;
    value = value * 10 + (*text - '0');
  }
  if (negative) value = -value;
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
