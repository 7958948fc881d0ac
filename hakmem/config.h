// config: every HAKMEM_* environment variable, read once at init into a plain struct.
//
// Owns: hak_config, the table of variables and the profiles. May use: base. Read by every box
// after hak_config_init(); never written after init, so readers need no synchronisation.
// getenv is called only from hak_config_init; environ is read only by hak_config_init_once.
//
// Each row: X(field, ENV_NAME, default, min, max, one-line doc). The same table drives parsing,
// validation, `hakmem_config list|explain|validate` and the generated docs/ENV.md. Invalid values
// print one warning naming the variable, the bad value and the value used; unknown HAKMEM_* names
// print one warning naming the closest known one. Nothing here ever aborts.
//
// HAKMEM_PROFILE (throughput, low-memory, low-latency, debug) replaces some defaults with a
// coherent set; a variable set explicitly wins over its profile.
#ifndef HAKMEM_CONFIG_H
#define HAKMEM_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "hakmem/base.h"

HAK_EXTERN_C_BEGIN

#define HAK_CONFIG_FIELDS(X)                                                                    \
  X(purge_delay_ms, "HAKMEM_PURGE_DELAY_MS", 250, 0, 3600000,                                    \
    "Milliseconds a free slab or cached segment stays committed before its pages are returned") \
  X(purger, "HAKMEM_PURGER", 1, 0, 1,                                                            \
    "1: a thread returns freed memory after the purge delay even if the program makes no call; it exists only while memory waits") \
  X(segment_cache, "HAKMEM_SEGMENT_CACHE", 8, 0, 1024,                                           \
    "Empty 4 MiB segments kept mapped past the purge delay (purged); more wait out the delay only")      \
  X(mid_cache_kb, "HAKMEM_MID_CACHE_KB", 1024, 0, 65536,                                       \
    "KiB of recently freed blocks each thread keeps per mid size class (1-64 KiB) for reuse")  \
  X(mid_round_pct, "HAKMEM_MID_ROUND_PCT", 100, 100, 200,                                         \
    "A 1-64 KiB request whose class has nothing cached may take a cached block up to this % of it") \
  X(large_round_pct, "HAKMEM_LARGE_ROUND_PCT", 100, 100, 400,                                     \
    "A free span up to this % of a large request is taken whole instead of split")             \
  X(large_max_kb, "HAKMEM_LARGE_MAX_KB", 4096, 64, 16384,                                        \
    "Blocks above 64 KiB up to this many KiB are page spans of shared arenas (reused, merged)")  \
  X(huge_cache_mb, "HAKMEM_HUGE_CACHE_MB", 64, 0, 1048576,                                      \
    "MiB of freed huge blocks (above HAKMEM_LARGE_MAX_KB) kept mapped for reuse, unmapped after the purge delay")\
  X(huge_round_pct, "HAKMEM_HUGE_ROUND_PCT", 125, 100, 400,                                       \
    "A cached block up to this percentage of the request is reused as is, not resized")        \
  X(wrap_tiny, "HAKMEM_WRAP_TINY", 1, 0, 1,                                                      \
    "0: blocks up to 1 KiB come from the next allocator (glibc), to bisect a problem to a box")  \
  X(wrap_mid, "HAKMEM_WRAP_MID", 1, 0, 1,                                                        \
    "0: blocks above 1 KiB up to 64 KiB come from the next allocator (glibc)")                   \
  X(wrap_large, "HAKMEM_WRAP_LARGE", 1, 0, 1,                                                    \
    "0: blocks above 64 KiB up to HAKMEM_LARGE_MAX_KB come from the next allocator (glibc)")     \
  X(wrap_huge, "HAKMEM_WRAP_HUGE", 1, 0, 1,                                                      \
    "0: blocks above HAKMEM_LARGE_MAX_KB come from the next allocator (glibc)")                  \
  X(check_frees, "HAKMEM_CHECK_FREES", 1, 0, 1,                                                  \
    "Walk the free list of each slab that empties; abort on a block on it twice (bad list)")    \
  X(stats, "HAKMEM_STATS", 0, 0, 1,                                                              \
    "Print a report of the allocator's counters on stderr at exit")                             \
  X(crash_handler, "HAKMEM_CRASH_HANDLER", 1, 0, 1,                                              \
    "On SIGSEGV, SIGBUS or SIGABRT print one line saying whether the address is hakmem memory")   \
  X(ace, "HAKMEM_ACE", 1, 0, 1,                                                                  \
    "1: the adaptive cache engine tunes caches from a background thread (docs/ACE.md); 0: off")   \
  X(ace_interval_ms, "HAKMEM_ACE_INTERVAL_MS", 10, 1, 1000,                                      \
    "Milliseconds between two observations of the adaptive cache engine")                         \
  X(ace_log, "HAKMEM_ACE_LOG", 0, 0, 1,                                                          \
    "1: the adaptive cache engine prints each decision on one line on stderr")                    \
  X(ace_idle_ms, "HAKMEM_ACE_IDLE_MS", 40, 0, 60000,                                             \
    "A size class no thread used for this long gives back its cached blocks and pages (0: never)") \
  X(ace_hit_low_pct, "HAKMEM_ACE_HIT_LOW_PCT", 90, 0, 100,                                       \
    "Below this mid cache hit rate (%) the engine raises the class's cache limit, up to twice HAKMEM_MID_CACHE_KB") \
  X(ace_hit_high_pct, "HAKMEM_ACE_HIT_HIGH_PCT", 100, 0, 100,                                    \
    "Above this mid cache hit rate (%) the engine lowers the class's cache limit (100: never)") \
  X(ace_mid_round_max_pct, "HAKMEM_ACE_MID_ROUND_MAX_PCT", 100, 100, 200,                          \
    "Largest mid rounding limit the engine's bandit tries, in three steps from HAKMEM_MID_ROUND_PCT (equal: no search)") \
  X(ace_large_round_max_pct, "HAKMEM_ACE_LARGE_ROUND_MAX_PCT", 100, 100, 400,                      \
    "Largest large rounding limit the engine's bandit tries, in three steps from HAKMEM_LARGE_ROUND_PCT (equal: no search)") \
  X(ace_extra_class_pct, "HAKMEM_ACE_EXTRA_CLASS_PCT", 50, 0, 100,                                             \
    "Share (%) of mid requests one 128-byte size range must hold to get a size class of its own (0: never)")

typedef struct hak_config_s {
#define HAK_CONFIG_FIELD(field, env, def, lo, hi, doc) int64_t field;
  HAK_CONFIG_FIELDS(HAK_CONFIG_FIELD)
#undef HAK_CONFIG_FIELD
  int profile;  // hak_profile_t
} hak_config_t;

extern hak_config_t hak_config;

typedef enum {
  HAK_PROFILE_NONE = 0,  // the table's defaults
  HAK_PROFILE_THROUGHPUT,
  HAK_PROFILE_LOW_MEMORY,
  HAK_PROFILE_LOW_LATENCY,
  HAK_PROFILE_DEBUG,
  HAK_PROFILE_COUNT,
} hak_profile_t;

#define HAK_PROFILE_ENV "HAKMEM_PROFILE"

// One variable of the table, for tools and tests.
typedef struct hak_config_var_s {
  const char* name;
  int64_t def;
  int64_t min;
  int64_t max;
  const char* doc;
  size_t offset;  // of its field in hak_config_t
} hak_config_var_t;

extern const hak_config_var_t hak_config_vars[];
extern const size_t hak_config_var_count;

// Parses the process environment into hak_config the first time any thread calls it, and warns
// about unknown HAKMEM_* names; later calls cost one load. Every path that reads hak_config
// before a thread heap exists calls it first.
void hak_config_init_once(void);

// How often delayed purges are looked at (heaps' slow paths, the large pool, the purger's thread):
// every half purge delay, and at least every millisecond.
HAK_INLINE uint64_t hak_purge_interval_ms(void) {
  uint64_t half = (uint64_t)hak_config.purge_delay_ms / 2;
  return half ? half : 1;
}

// Parses the environment into hak_config; `getenv_fn` is injectable for tests and tools.
// Returns the number of invalid values (each warned about and replaced by its default).
int hak_config_init(const char* (*getenv_fn)(const char* name));

// Warns about every entry of a NULL-terminated environ-style array ("NAME=VALUE") whose name
// starts with HAKMEM_ and is no variable of the table; returns how many there were.
int hak_config_warn_unknown(const char* const* entries);

// The current name of a variable that was renamed, or NULL if `old_name` is no such name.
const char* hak_config_new_name(const char* old_name);

// The variable named `name`, or NULL. If none, *closest (when not NULL) is the nearest name by
// edit distance.
const hak_config_var_t* hak_config_find(const char* name, const char** closest);

// A profile by its name (throughput, low-memory, low-latency, debug); -1 if there is none.
int hak_config_profile_parse(const char* text);
const char* hak_config_profile_name(int profile);
// The default of `var` under `profile` (its table default where the profile leaves it alone).
int64_t hak_config_profile_default(int profile, const hak_config_var_t* var);

// Parses one value; returns 1 and sets *out if `text` is a valid integer in [lo, hi].
int hak_config_parse_int(const char* text, int64_t lo, int64_t hi, int64_t* out);

HAK_EXTERN_C_END

#endif  // HAKMEM_CONFIG_H
