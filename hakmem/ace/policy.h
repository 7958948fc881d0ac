// ace/policy: the settings the adaptive cache engine publishes and the thread heaps apply on
// their slow paths: an immutable snapshot swapped in with an atomic pointer.
//
// Owns: the snapshot slots and the published pointer. May use: base, size_class. The engine's
// one background thread publishes; any thread reads. Snapshots live in a small ring of slots
// that publication reuses; each slot carries a sequence number, odd while it is rewritten, so
// that a reader that was slow enough to see its slot reused retries instead of keeping a torn
// copy: a reader's copy is always one published snapshot, whole.
#ifndef HAKMEM_ACE_POLICY_H
#define HAKMEM_ACE_POLICY_H

#include <stdint.h>

#include "hakmem/base.h"
#include "hakmem/size_class.h"

HAK_EXTERN_C_BEGIN

#define HAK_ACE_MID_CLASSES (HAK_CLASS_COUNT - HAK_TINY_CLASSES)
#define HAK_ACE_CLASS_WORDS ((HAK_CLASS_COUNT + 31) / 32)

typedef struct hak_ace_policy_s {
  uint64_t version;                              // 0: nothing published yet
  uint32_t mid_round_pct;                         // HAKMEM_MID_ROUND_PCT's role
  uint32_t large_round_pct;                       // HAKMEM_LARGE_ROUND_PCT's role
  uint32_t extra_class_size;                     // 0: the extra mid class is not placed
  uint32_t mid_cache_limit[HAK_ACE_MID_CLASSES];  // blocks per thread and mid class
  // Bit c: class c went idle in every thread: heaps give back its cached blocks, its empty
  // slabs and their pages when they next apply the policy.
  uint32_t idle_classes[HAK_ACE_CLASS_WORDS];
} hak_ace_policy_t;

HAK_INLINE int hak_ace_policy_idle(const hak_ace_policy_t* policy, unsigned cls) {
  return (policy->idle_classes[cls / 32] >> (cls % 32)) & 1;
}

// Publishes a copy of *policy with the next version number; returns that version. One
// publisher at a time.
uint64_t hak_ace_policy_publish(const hak_ace_policy_t* policy);

// The version of the newest snapshot (0 if none): a cheap test for "anything new since".
uint64_t hak_ace_policy_version(void);

// Copies the newest snapshot into *out; returns its version (0, and *out untouched, if none).
uint64_t hak_ace_policy_read(hak_ace_policy_t* out);

// What the engine reports for stats.
typedef struct hak_ace_engine_status_s {
  int running;
  uint64_t windows;    // observation windows since the process (or fork child) started it
  uint64_t decisions;  // decisions the learner made in them
  uint32_t extra_class_size;  // placed by the engine; 0: none
} hak_ace_engine_status_t;

// Set by the engine's box when it is linked in (a constructor), so that stats can report it
// without linking it; NULL otherwise.
extern void (*hak_ace_engine_status_reader)(hak_ace_engine_status_t* out);

HAK_EXTERN_C_END

#endif  // HAKMEM_ACE_POLICY_H
