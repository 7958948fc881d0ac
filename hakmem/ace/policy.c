#include "hakmem/ace/policy.h"

#include <sched.h>
#include <stddef.h>
#include <string.h>

// The fields are copied word by word with atomics: a reader may race with the rewrite of its slot
// (it then retries), which must not be a data race in the C sense. Release stores and acquire
// loads order each word after the odd sequence number and before the final check, with no
// fences (which ThreadSanitizer cannot follow).
#define POLICY_WORDS (sizeof(hak_ace_policy_t) / sizeof(uint32_t))
#define SLOTS 8

typedef struct slot_s {
  uint64_t seq;  // odd while being written
  uint32_t words[POLICY_WORDS];
} slot_t;

HAK_STATIC_ASSERT(sizeof(hak_ace_policy_t) % sizeof(uint32_t) == 0, "policy copies by words");

static slot_t slots[SLOTS];
static slot_t* current;    // __atomic access
static uint64_t published; // publisher only
static uint64_t latest;    // version of *current, __atomic access

static void copy_in(slot_t* slot, const hak_ace_policy_t* policy) {
  const uint32_t* from = (const uint32_t*)policy;
  for (size_t i = 0; i < POLICY_WORDS; i++) {
    __atomic_store_n(&slot->words[i], from[i], __ATOMIC_RELEASE);
  }
}

uint64_t hak_ace_policy_publish(const hak_ace_policy_t* policy) {
  uint64_t version = ++published;
  slot_t* slot = &slots[version % SLOTS];
  hak_ace_policy_t copy = *policy;
  copy.version = version;
  uint64_t seq = __atomic_load_n(&slot->seq, __ATOMIC_RELAXED);
  __atomic_store_n(&slot->seq, seq + 1, __ATOMIC_RELAXED);  // odd: being written
  copy_in(slot, &copy);
  __atomic_store_n(&slot->seq, seq + 2, __ATOMIC_RELEASE);
  __atomic_store_n(&current, slot, __ATOMIC_RELEASE);
  __atomic_store_n(&latest, version, __ATOMIC_RELEASE);
  return version;
}

uint64_t hak_ace_policy_version(void) { return __atomic_load_n(&latest, __ATOMIC_ACQUIRE); }

uint64_t hak_ace_policy_read(hak_ace_policy_t* out) {
  for (;;) {
    slot_t* slot = __atomic_load_n(&current, __ATOMIC_ACQUIRE);
    if (slot == NULL) return 0;
    uint64_t seq = __atomic_load_n(&slot->seq, __ATOMIC_ACQUIRE);
    if (seq & 1) {  // reused and being rewritten under us: the pointer has moved on
      sched_yield();
      continue;
    }
    uint32_t words[POLICY_WORDS];
    for (size_t i = 0; i < POLICY_WORDS; i++) {
      words[i] = __atomic_load_n(&slot->words[i], __ATOMIC_ACQUIRE);
    }
    if (__atomic_load_n(&slot->seq, __ATOMIC_RELAXED) != seq) continue;  // torn: again
    memcpy(out, words, sizeof words);
    return out->version;
  }
}

void (*hak_ace_engine_status_reader)(hak_ace_engine_status_t* out);
