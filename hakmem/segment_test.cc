// segment box: acquisition, the address map, header lookup, slab bookkeeping, purge, the cache
// and abandonment. Runs without heaps: owners are made-up thread ids.
#include "hakmem/segment.h"

#include <gtest/gtest.h>
#include <stdio.h>
#include <sys/mman.h>
#include <string.h>

#include <string>
#include <vector>

#include "hakmem/config.h"
#include "hakmem/os/os.h"

namespace {

const uintptr_t kOwner = 0x5550;  // any 16-byte aligned value stands for a thread id

hak_segment_totals_t Totals() {
  hak_segment_totals_t t;
  hak_segment_totals(&t);
  return t;
}

TEST(Segment, AcquireSetsTheMapWordAndLookupFindsTheHeader) {
  for (hak_segment_kind_t kind : {HAK_KIND_SMALL, HAK_KIND_MEDIUM}) {
    hak_segment_t* s = hak_segment_acquire(kind, nullptr, kOwner);
    ASSERT_NE(s, nullptr);
    auto* base = reinterpret_cast<uint8_t*>(hak_segment_of(s));
    EXPECT_EQ(reinterpret_cast<uintptr_t>(base) % HAK_SEGMENT_SIZE, 0u);
    EXPECT_EQ(s->kind, kind);
    EXPECT_EQ(s->free_count, s->slab_count);
    EXPECT_EQ(hak_segment_slab_size(s) * s->slab_count, HAK_SEGMENT_SIZE);
    for (size_t offset : {(size_t)0, (size_t)12345, HAK_SEGMENT_SIZE - 1}) {
      uintptr_t word = hak_map_word(base + offset);
      EXPECT_EQ(word, kOwner | kind);
      EXPECT_EQ(hak_segment_lookup(base + offset, word), s);
    }
    while (hak_segment_take_slab(s, 5) >= 0) {
    }
    for (unsigned i = 0; i < s->slab_count; i++) hak_segment_slab_freed(s, i, 5, 1);
    hak_segment_release(s);
    EXPECT_EQ(hak_map_word(base), HAK_OWNER_NONE | kind) << "released segments have no owner";
  }
}

// The permissions /proc/self/maps gives the page holding p ("rw-p", "r--p", ...); "" if unmapped.
std::string PagePermissions(const void* p) {
  FILE* maps = fopen("/proc/self/maps", "r");
  if (maps == nullptr) return "";
  char line[512];
  std::string found;
  auto address = reinterpret_cast<uintptr_t>(p);
  while (found.empty() && fgets(line, sizeof line, maps)) {
    unsigned long start, end;
    char perms[8];
    if (sscanf(line, "%lx-%lx %7s", &start, &end, perms) == 3 && start <= address &&
        address < end) {
      found = perms;
    }
  }
  fclose(maps);
  return found;
}

TEST(Segment, TheMapsAreChargedOnlyForThePagesOfRegionsInUse) {
  hak_segment_t* s = hak_segment_acquire(HAK_KIND_MEDIUM, nullptr, kOwner);
  ASSERT_NE(s, nullptr);
  uintptr_t base = reinterpret_cast<uintptr_t>(hak_segment_of(s));
  EXPECT_EQ(PagePermissions(&hak_segment_map[base >> HAK_SEGMENT_SHIFT]), "rw-p");
  EXPECT_EQ(PagePermissions(&hak_medium_class_map[base >> HAK_MEDIUM_SLAB_SHIFT]), "rw-p");
  while (hak_segment_take_slab(s, 40) >= 0) {
  }
  for (unsigned i = 0; i < s->slab_count; i++) hak_segment_slab_freed(s, i, 40, 1);
  hak_segment_release(s);
  if (HAK_TSAN) GTEST_SKIP() << "the maps stay writable under ThreadSanitizer (segment_map.c)";
  // The entries of the lowest 2 GiB of address space (no segment there: mmap places none so low)
  // stay on read-only zero pages, which no commit limit counts.
  EXPECT_EQ(PagePermissions(&hak_segment_map[0]), "r--p");
  EXPECT_EQ(PagePermissions(&hak_medium_class_map[0]), "r--p");
  EXPECT_EQ(hak_map_word(nullptr), 0u);
}

bool mapped_far = false;
// Maps far above where the kernel places mappings (64 TiB, still below 2^47), where no region has
// had its map entries made writable yet; protects nothing.
void* MapFarAway(void* hint, size_t size) {
  (void)hint;
  void* far = reinterpret_cast<void*>(uintptr_t{1} << 46);
  void* p = mmap(far, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  mapped_far = p == far;
  return p;
}
int refused_protects = 0;
int RefuseProtect(void*, size_t, int) {
  refused_protects++;
  return -1;
}

TEST(Segment, AMapPageTheKernelWillNotMakeWritableIsAnOutOfMemory) {
  if (HAK_TSAN) GTEST_SKIP() << "the maps stay writable under ThreadSanitizer (segment_map.c)";
  std::vector<hak_segment_t*> taken;  // the cache's segments: their entries are writable already
  while (Totals().cached_segments > 0) {
    taken.push_back(hak_segment_acquire(HAK_KIND_SMALL, nullptr, kOwner));
    ASSERT_NE(taken.back(), nullptr);
  }
  hak_os_ops_t ops = hak_os;
  ops.map = MapFarAway;
  ops.protect = RefuseProtect;
  hak_os_set_ops(&ops);
  hak_segment_t* s = hak_segment_acquire(HAK_KIND_MEDIUM, nullptr, kOwner);
  hak_os_reset_ops();
  if (!mapped_far && s != nullptr) {
    taken.push_back(s);  // the kernel placed it elsewhere (an emulator's smaller address space)
  } else {
    EXPECT_EQ(s, nullptr);
    EXPECT_GT(refused_protects, 0);
  }
  void* far = reinterpret_cast<void*>(uintptr_t{1} << 46);
  EXPECT_EQ(PagePermissions(far), "") << "the segment mapped there is given back";
  EXPECT_EQ(hak_map_word(far), 0u);
  s = hak_segment_acquire(HAK_KIND_MEDIUM, nullptr, kOwner);
  ASSERT_NE(s, nullptr) << "with the kernel willing again";
  taken.push_back(s);
  for (hak_segment_t* r : taken) {
    while (hak_segment_take_slab(r, 40) >= 0) {
    }
    for (unsigned i = 0; i < r->slab_count; i++) hak_segment_slab_freed(r, i, 40, 1);
    hak_segment_release(r);
  }
}

TEST(Segment, LookupRejectsForeignAndCorruptedRegions) {
  static char not_ours[64];
  EXPECT_EQ(hak_map_word(not_ours), 0u);
  EXPECT_EQ(hak_segment_lookup(not_ours, hak_map_word(not_ours)), nullptr);
  EXPECT_EQ(hak_map_in_range(reinterpret_cast<void*>(~(uintptr_t)0 << 60)), 0);

  hak_segment_t* s = hak_segment_acquire(HAK_KIND_SMALL, nullptr, kOwner);
  ASSERT_NE(s, nullptr);
  void* inside = reinterpret_cast<uint8_t*>(hak_segment_of(s)) + 4096;
  EXPECT_EQ(hak_segment_lookup(inside, kOwner | HAK_KIND_HUGE), nullptr) << "wrong kind";
  uint64_t cookie = s->cookie;
  s->cookie ^= 1;
  EXPECT_EQ(hak_segment_lookup(inside, hak_map_word(inside)), nullptr) << "bad cookie";
  s->cookie = cookie;
  for (unsigned i = 0; i < s->slab_count; i++) hak_segment_slab_freed(s, hak_segment_take_slab(s, 5), 5, 1);
  hak_segment_release(s);
}

TEST(Segment, TakeSlabPrefersCommittedSlabsAndRunsOut) {
  hak_segment_t* s = hak_segment_acquire(HAK_KIND_MEDIUM, nullptr, kOwner);
  ASSERT_NE(s, nullptr);
  std::vector<int> taken;
  for (int i; (i = hak_segment_take_slab(s, 5)) >= 0;) taken.push_back(i);
  ASSERT_EQ(taken.size(), s->slab_count);
  EXPECT_EQ(s->free_count, 0);
  hak_segment_slab_freed(s, 2, 5, 100);
  EXPECT_EQ(s->purge_pending, 1u);
  EXPECT_EQ(hak_segment_take_slab(s, 5), 2) << "the only free slab";
  hak_segment_slab_freed(s, 1, 5, 100);
  hak_segment_slab_freed(s, 3, 5, 100);
  EXPECT_EQ(hak_segment_purge_slabs(s, 100, 1), 2 * hak_segment_slab_size(s)) << "forced purge";
  hak_segment_slab_freed(s, 2, 5, 100);
  EXPECT_EQ(hak_segment_take_slab(s, 5), 2) << "dirty (committed) slab 2 beats purged slab 1";
  hak_segment_slab_freed(s, 0, 7, 100);
  hak_segment_slab_freed(s, 2, 5, 100);
  EXPECT_EQ(hak_segment_take_slab(s, 5), 2) << "slab 2 served class 5 last: its pages fit";
  EXPECT_EQ(hak_segment_take_slab(s, 5), 0) << "then any committed slab";
  hak_segment_slab_freed(s, 0, 7, 100);
  hak_segment_slab_freed(s, 2, 5, 100);
  hak_segment_release(s);
}

TEST(Segment, PurgeWaitsForTheDelay) {
  hak_segment_t* s = hak_segment_acquire(HAK_KIND_SMALL, nullptr, kOwner);
  ASSERT_NE(s, nullptr);
  int index = hak_segment_take_slab(s, 5);
  auto* slab = reinterpret_cast<uint8_t*>(hak_segment_of(s)) + ((size_t)index << s->slab_shift);
  memset(slab, 0x5a, 4096);
  const uint64_t freed_at = 1000;
  hak_segment_slab_freed(s, index, 5, freed_at);
  const uint64_t delay = (uint64_t)hak_config.purge_delay_ms;
  if (index != 0) {
    EXPECT_EQ(hak_segment_purge_slabs(s, freed_at + delay - 1, 0), 0u) << "too early";
    EXPECT_EQ(slab[100], 0x5a);
  }
  EXPECT_GT(hak_segment_purge_slabs(s, freed_at + delay, 0), 0u);
  EXPECT_EQ(slab[100], 0) << "purged pages read back as zero";
  EXPECT_EQ(s->purge_pending, 0u);
  hak_segment_release(s);
}

TEST(Segment, CacheKeepsReleasedSegmentsUpToItsCap) {
  std::vector<hak_segment_t*> segments;
  const size_t count = (size_t)hak_config.segment_cache + 3;
  for (size_t i = 0; i < count; i++) {
    hak_segment_t* s = hak_segment_acquire(HAK_KIND_SMALL, nullptr, kOwner);
    ASSERT_NE(s, nullptr);
    segments.push_back(s);
  }
  size_t mapped = Totals().mapped_segments;
  for (hak_segment_t* s : segments) hak_segment_release(s);
  EXPECT_EQ(Totals().cached_segments, count) << "all wait out the purge delay mapped";
  hak_segment_purge_cache(hak_os_now_ms() + (uint64_t)hak_config.purge_delay_ms, 0);
  EXPECT_EQ(Totals().cached_segments, (size_t)hak_config.segment_cache);
  EXPECT_EQ(Totals().mapped_segments, mapped - (count - hak_config.segment_cache))
      << "past the delay, segments beyond the cap are unmapped";
  // Reuse comes from the cache, as a segment of either kind.
  hak_segment_t* reused = hak_segment_acquire(HAK_KIND_MEDIUM, nullptr, kOwner);
  ASSERT_NE(reused, nullptr);
  EXPECT_EQ(Totals().cached_segments, (size_t)hak_config.segment_cache - 1);
  EXPECT_EQ(reused->kind, HAK_KIND_MEDIUM);
  EXPECT_EQ(reused->free_count, reused->slab_count);
  hak_segment_release(reused);
  size_t purged = Totals().purged_bytes;
  hak_segment_purge_cache(hak_os_now_ms(), 1);
  EXPECT_GE(Totals().purged_bytes, purged + HAK_SEGMENT_SIZE / 2);
}

TEST(Segment, ACachedSegmentStillCommittedComesBackWithDirtySlabs) {
  hak_segment_t* s = hak_segment_acquire(HAK_KIND_SMALL, nullptr, kOwner);
  ASSERT_NE(s, nullptr);
  auto* base = reinterpret_cast<uint8_t*>(hak_segment_of(s));
  while (hak_segment_take_slab(s, 5) >= 0) {
  }
  uint8_t* small_slab40 = base + ((size_t)40 << s->slab_shift);  // in medium slab 2
  memset(small_slab40, 0x5a, 4096);
  for (unsigned i = 0; i < s->slab_count; i++) hak_segment_slab_freed(s, i, 5, 1);
  hak_segment_release(s);

  // Reused before the cache purged it, as the other kind: every slab may hold committed pages.
  hak_segment_t* reused = hak_segment_acquire(HAK_KIND_MEDIUM, nullptr, kOwner);
  ASSERT_EQ(hak_segment_of(reused), static_cast<void*>(base))
      << "the cache hands out the segment released last";
  EXPECT_EQ(hak_segment_dirty_slabs(reused), reused->slab_count);
  int taken = hak_segment_take_slab(reused, 60);
  ASSERT_NE(taken, 2) << "the new owner uses another slab than the one holding the touched page";
  const uint64_t due = hak_os_now_ms() + (uint64_t)hak_config.purge_delay_ms;
  EXPECT_GT(hak_segment_purge_slabs(reused, due, 0), 0u)
      << "the slabs the new owner leaves free go back after the delay";
  EXPECT_EQ(small_slab40[100], 0);
  EXPECT_EQ(hak_segment_dirty_slabs(reused), 0u);
  hak_segment_slab_freed(reused, (unsigned)taken, 60, 1);
  hak_segment_release(reused);

  // One the cache purged already comes back clean.
  hak_segment_purge_cache(hak_os_now_ms(), 1);
  hak_segment_t* purged = hak_segment_acquire(HAK_KIND_SMALL, nullptr, kOwner);
  ASSERT_NE(purged, nullptr);
  EXPECT_EQ(hak_segment_dirty_slabs(purged), 0u);
  hak_segment_release(purged);
}

TEST(Segment, AbandonedSegmentsAreAdoptedByKind) {
  hak_segment_t* s = hak_segment_acquire(HAK_KIND_MEDIUM, nullptr, kOwner);
  ASSERT_NE(s, nullptr);
  int index = hak_segment_take_slab(s, 5);
  hak_segment_abandon(s);
  EXPECT_EQ(hak_map_word(s), HAK_OWNER_NONE | HAK_KIND_MEDIUM);
  EXPECT_EQ(Totals().abandoned_segments, 1u);
  EXPECT_EQ(hak_segment_adopt(HAK_KIND_SMALL, nullptr, kOwner + 16), nullptr);
  EXPECT_EQ(hak_segment_adopt(HAK_KIND_MEDIUM, nullptr, kOwner + 16), s);
  EXPECT_EQ(hak_map_word(s), (kOwner + 16) | HAK_KIND_MEDIUM) << "the adopter owns it now";
  EXPECT_EQ(Totals().abandoned_segments, 0u);
  hak_segment_slab_freed(s, index, 5, 1);
  hak_segment_release(s);
}

}  // namespace
