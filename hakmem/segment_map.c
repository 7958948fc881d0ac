// The segment map and the medium class map (segment.h): their storage, mapped again as read-only
// zero pages before the first region is entered, and made writable a page at a time as regions
// are handed to hakmem.
#include <pthread.h>

#include "hakmem/os/os.h"
#include "hakmem/segment.h"

// Page-aligned (HAK_PAGE_SIZE) and whole pages, so that remapping them touches no other variable.
__attribute__((aligned(4096))) uintptr_t hak_segment_map[HAK_MAP_ENTRIES];
__attribute__((aligned(4096))) uint8_t hak_medium_class_map[HAK_MEDIUM_MAP_ENTRIES];

typedef struct table_s {
  uint8_t* start;
  size_t size;
  uint64_t* writable;  // a bit per page: made writable since the table went read-only
  int read_only;       // __atomic: the pages not marked writable are read-only
} table_t;

#define MAP_PAGES (sizeof hak_segment_map / HAK_PAGE_SIZE)
#define CLASS_MAP_PAGES (sizeof hak_medium_class_map / HAK_PAGE_SIZE)
HAK_STATIC_ASSERT(sizeof hak_segment_map % (64 * HAK_PAGE_SIZE) == 0, "whole bitmap words");
HAK_STATIC_ASSERT(sizeof hak_medium_class_map % (64 * HAK_PAGE_SIZE) == 0, "whole bitmap words");

static uint64_t map_writable[MAP_PAGES / 64];
static uint64_t class_map_writable[CLASS_MAP_PAGES / 64];
static table_t map_table = {(uint8_t*)hak_segment_map, sizeof hak_segment_map, map_writable, 0};
static table_t class_table = {hak_medium_class_map, sizeof hak_medium_class_map,
                              class_map_writable, 0};
// pthread_once: a fork child whose parent forked while another thread ran it runs it again (no
// entry can be set before it ends: every commit waits for it).
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void make_read_only(table_t* t) {
  if (hak_os_zero_read_only(t->start, t->size) == 0) {
    __atomic_store_n(&t->read_only, 1, __ATOMIC_RELEASE);
  }
}

// Not under ThreadSanitizer, which takes the remap for a write of 384 MiB racing with every
// thread's reads of the maps (zero pages replaced by zero pages while no entry is set yet).
static void tables_init(void) {
  if (HAK_TSAN) return;
  make_read_only(&map_table);
  make_read_only(&class_table);
}

static int commit_entry(table_t* t, size_t offset) {
  if (!__atomic_load_n(&t->read_only, __ATOMIC_ACQUIRE)) return 0;
  size_t page = offset / HAK_PAGE_SIZE;
  uint64_t bit = (uint64_t)1 << (page % 64);
  if (__atomic_load_n(&t->writable[page / 64], __ATOMIC_ACQUIRE) & bit) return 0;
  // Two threads may both get here for one page: making it writable twice is harmless.
  if (hak_os.protect(t->start + page * HAK_PAGE_SIZE, HAK_PAGE_SIZE, 1) != 0) return -1;
  __atomic_fetch_or(&t->writable[page / 64], bit, __ATOMIC_RELEASE);
  return 0;
}

int hak_map_commit(const void* region) {
  if (!hak_map_in_range(region)) return -1;
  pthread_once(&tables_once, tables_init);
  uintptr_t address = (uintptr_t)region;
  // A region's four medium class bytes share a page: they start at a multiple of four.
  if (commit_entry(&map_table, (address >> HAK_SEGMENT_SHIFT) * sizeof(uintptr_t)) != 0) return -1;
  return commit_entry(&class_table, address >> HAK_MEDIUM_SLAB_SHIFT);
}
