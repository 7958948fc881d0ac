// Arena layout: [metadata pages | spans ...]. Every span, live or free, records its length in
// pages in the page-table entries of its first and last page, so freeing a block finds both
// neighbours in O(1) and merges with the free ones. Free spans sit in size bins (exact up to 15
// pages, then four bins per power of two), linked through side arrays rather than their own
// pages, which may have been purged. Dirty and clean spans have bins of their own, and a request
// takes a dirty span of any arena before a clean one: a clean span's pages are not resident, so
// taking one while dirty pages wait for the purge delay grows the RSS by the whole request. For
// the same reason realloc grows a block into a clean neighbour only when no dirty span could take
// the block instead (realloc_growth's peak RSS: 72 MiB with one set of bins, 58 with dirty spans
// first, 45 with the realloc rule too).
#include "hakmem/pool/large.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "hakmem/ace/policy.h"
#include "hakmem/config.h"
#include "hakmem/os/os.h"
#include "hakmem/purge_hint.h"
#include "hakmem/segment.h"

#define ARENA_PAGES ((uint32_t)(HAK_LARGE_ARENA_SIZE / HAK_PAGE_SIZE))
#define ARENA_MAGIC ((uint64_t)0x68616b6c61726765ull)
#define NO_PAGE ((uint16_t)0xffff)
#define BIN_COUNT 56
#define EXACT_BINS 16

#define SPAN_FREE 0x80000000u
#define SPAN_DIRTY 0x40000000u  // free span whose pages may still be committed
#define SPAN_PAGES 0x00ffffffu

HAK_STATIC_ASSERT(ARENA_PAGES <= NO_PAGE, "page indices fit in 16 bits");

typedef struct arena_s {
  uint64_t magic;                       // ARENA_MAGIC ^ address
  struct arena_s* next;                 // in the pool's list
  uint32_t free_pages;                  // pages in free spans
  uint32_t dirty_pages;                 // of which possibly committed
  uint64_t bin_mask[2];                 // [dirty] bit b: bin b holds a span
  uint16_t bins[2][BIN_COUNT];          // [dirty] first free span of each bin
  uint64_t empty_since_ms;              // when the arena became wholly free (0: it is not)
  uint64_t starts[ARENA_PAGES / 64];    // bit p: page p starts a live block
  uint32_t span[ARENA_PAGES];           // length | flags, at the first and last page of a span
  uint32_t freed_at[ARENA_PAGES];       // at a free span's first page: when it became free (ms)
  uint16_t next_free[ARENA_PAGES];      // bin links, at a free span's first page
  uint16_t prev_free[ARENA_PAGES];
} arena_t;

#define FIRST_PAGE ((uint32_t)((sizeof(arena_t) + HAK_PAGE_SIZE - 1) / HAK_PAGE_SIZE))
#define USABLE_PAGES (ARENA_PAGES - FIRST_PAGE)

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static arena_t* arenas;
static size_t arena_count;
static size_t live_blocks;
static size_t live_pages;
static uint64_t pages_handed, pages_requested, clean_pages_handed;  // since start, for the engine
static uint32_t round_pct;             // HAKMEM_LARGE_ROUND_PCT, or the engine's policy
static uint64_t policy_version_seen;  // of the engine's policy, last taken up
static uint64_t next_purge_ms;

void hak_large_fork_prepare(void) { pthread_mutex_lock(&pool_lock); }
void hak_large_fork_parent(void) { pthread_mutex_unlock(&pool_lock); }
void hak_large_fork_child(void) { pthread_mutex_unlock(&pool_lock); }

static void lock_pool(void) { pthread_mutex_lock(&pool_lock); }

static void unlock_pool(void) { pthread_mutex_unlock(&pool_lock); }

size_t hak_large_max(void) {
  hak_config_init_once();  // a program's first allocation may be a large one
  return (size_t)hak_config.large_max_kb * HAK_KiB;
}

static uint32_t pages_for(size_t size) { return (uint32_t)((size + HAK_PAGE_SIZE - 1) / HAK_PAGE_SIZE); }

static uint8_t* page_address(arena_t* a, uint32_t page) {
  return (uint8_t*)a + (size_t)page * HAK_PAGE_SIZE;
}

static unsigned bin_of(uint32_t pages) {
  if (pages < EXACT_BINS) return pages;
  unsigned log2 = 31u - (unsigned)__builtin_clz(pages);
  unsigned bin = EXACT_BINS + (log2 - 4) * 4 + ((pages >> (log2 - 2)) & 3);
  return bin < BIN_COUNT ? bin : BIN_COUNT - 1;
}

static void set_span(arena_t* a, uint32_t first, uint32_t pages, uint32_t flags) {
  a->span[first] = pages | flags;
  a->span[first + pages - 1] = pages | flags;
}

static void bin_insert(arena_t* a, uint32_t first, uint32_t pages, uint32_t flags, uint32_t now) {
  set_span(a, first, pages, SPAN_FREE | flags);
  a->freed_at[first] = now;
  unsigned b = bin_of(pages), dirty = (flags & SPAN_DIRTY) != 0;
  uint16_t head = a->bins[dirty][b];
  a->next_free[first] = head;
  a->prev_free[first] = NO_PAGE;
  if (head != NO_PAGE) a->prev_free[head] = (uint16_t)first;
  a->bins[dirty][b] = (uint16_t)first;
  a->bin_mask[dirty] |= (uint64_t)1 << b;
  a->free_pages += pages;
  if (flags & SPAN_DIRTY) a->dirty_pages += pages;
}

static void bin_remove(arena_t* a, uint32_t first) {
  uint32_t entry = a->span[first];
  uint32_t pages = entry & SPAN_PAGES;
  unsigned b = bin_of(pages), dirty = (entry & SPAN_DIRTY) != 0;
  uint16_t next = a->next_free[first], prev = a->prev_free[first];
  if (prev != NO_PAGE) a->next_free[prev] = next;
  else a->bins[dirty][b] = next;
  if (next != NO_PAGE) a->prev_free[next] = prev;
  if (a->bins[dirty][b] == NO_PAGE) a->bin_mask[dirty] &= ~((uint64_t)1 << b);
  a->free_pages -= pages;
  if (entry & SPAN_DIRTY) a->dirty_pages -= pages;
}

// The bins of `mask` above bin b: they hold only spans larger than any of bin b's.
static uint64_t bins_above(uint64_t mask, unsigned b) {
  return b + 1 < 64 ? mask & ~(((uint64_t)2 << b) - 1) : 0;
}

// A free span of at least `pages` pages, dirty or clean, removed from its bin; NO_PAGE if none.
static uint32_t take_free_span(arena_t* a, uint32_t pages, unsigned dirty) {
  unsigned b = bin_of(pages);
  for (uint16_t s = a->bins[dirty][b]; s != NO_PAGE; s = a->next_free[s]) {
    if ((a->span[s] & SPAN_PAGES) >= pages) {
      bin_remove(a, s);
      return s;
    }
  }
  uint64_t larger = bins_above(a->bin_mask[dirty], b);
  if (larger == 0) return NO_PAGE;
  uint16_t s = a->bins[dirty][__builtin_ctzll(larger)];
  bin_remove(a, s);
  return s;
}

static arena_t* arena_create(uint64_t now) {
  arena_t* a = hak_os_map_aligned(HAK_LARGE_ARENA_SIZE, HAK_LARGE_ARENA_SIZE);
  if (a == NULL) return NULL;
  for (size_t off = 0; off < HAK_LARGE_ARENA_SIZE; off += HAK_SEGMENT_SIZE) {
    if (hak_map_commit((uint8_t*)a + off) != 0) {
      hak_os.unmap(a, HAK_LARGE_ARENA_SIZE);
      return NULL;
    }
  }
  a->magic = ARENA_MAGIC ^ (uintptr_t)a;
  memset(a->bins, 0xff, sizeof a->bins);
  bin_insert(a, FIRST_PAGE, USABLE_PAGES, 0, (uint32_t)now);
  a->empty_since_ms = now;
  a->next = arenas;
  arenas = a;
  arena_count++;
  for (size_t off = 0; off < HAK_LARGE_ARENA_SIZE; off += HAK_SEGMENT_SIZE) {
    hak_map_set((uint8_t*)a + off, HAK_OWNER_NONE | HAK_KIND_LARGE);
  }
  return a;
}

static void arena_destroy(arena_t* a) {
  arena_t** link = &arenas;
  while (*link != a) link = &(*link)->next;
  *link = a->next;
  arena_count--;
  for (size_t off = 0; off < HAK_LARGE_ARENA_SIZE; off += HAK_SEGMENT_SIZE) {
    hak_map_set((uint8_t*)a + off, 0);
  }
  hak_os.unmap(a, HAK_LARGE_ARENA_SIZE);
}

// When the next dirty span or empty arena not yet due is (0: none), found by the last purge.
static uint64_t next_due_ms;

// Purges the free spans of `a` idle for `delay` ms (all if `force`), walking the arena in address
// order, and merges each clean span with a clean free span just before it. Freed spans merge
// only with dirty neighbours (release_span), so a large clean span never turns dirty because of
// a small free next to it.
static void purge_arena(arena_t* a, uint64_t now, uint64_t delay, int force) {
  uint32_t clean_before = NO_PAGE;  // first page of a free clean span ending at `page`
  for (uint32_t page = FIRST_PAGE; page < ARENA_PAGES;) {
    uint32_t entry = a->span[page];
    uint32_t pages = entry & SPAN_PAGES;
    uint32_t next = page + pages;
    uint32_t age = (uint32_t)now - a->freed_at[page];  // freed_at holds the low 32 bits
    if ((entry & SPAN_DIRTY) && !force && age < delay) {
      next_due_ms = hak_purge_earlier(next_due_ms, now + (delay - age));
    }
    if ((entry & SPAN_DIRTY) && (force || age >= delay)) {
      uint32_t freed_at = a->freed_at[page];
      bin_remove(a, page);
      hak_os.purge(page_address(a, page), (size_t)pages * HAK_PAGE_SIZE);
      bin_insert(a, page, pages, 0, freed_at);
      entry = a->span[page];
    }
    if ((entry & (SPAN_FREE | SPAN_DIRTY)) != SPAN_FREE) {
      clean_before = NO_PAGE;
    } else if (clean_before == NO_PAGE) {
      clean_before = page;
    } else {
      uint32_t merged = (a->span[clean_before] & SPAN_PAGES) + pages;
      bin_remove(a, clean_before);
      bin_remove(a, page);
      bin_insert(a, clean_before, merged, 0, (uint32_t)now);
    }
    page = next;
  }
}

// Purges every arena's idle free spans; unmaps arenas wholly free for the delay, but for one kept
// for the next request (all of them if `force`).
static void purge(uint64_t now, int force) {
  uint64_t delay = (uint64_t)hak_config.purge_delay_ms;
  arena_t* next;
  int kept_empty = 0;
  next_due_ms = 0;
  for (arena_t* a = arenas; a != NULL; a = next) {
    next = a->next;
    if (a->free_pages == USABLE_PAGES && (force || now - a->empty_since_ms >= delay)) {
      if (kept_empty || force) {
        arena_destroy(a);
        continue;
      }
      kept_empty = 1;
    } else if (a->free_pages == USABLE_PAGES) {
      next_due_ms = hak_purge_earlier(next_due_ms, a->empty_since_ms + delay);
    }
    if (a->dirty_pages) purge_arena(a, now, delay, force);
  }
  next_purge_ms = now + hak_purge_interval_ms();
}

// Under the pool lock: rounding limit from the engine's newest policy, else from the configuration.
static uint32_t current_round_pct(void) {
  uint64_t version = hak_ace_policy_version();
  if (version == 0) return (uint32_t)hak_config.large_round_pct;
  if (version != policy_version_seen) {
    hak_ace_policy_t policy;
    policy_version_seen = hak_ace_policy_read(&policy);
    round_pct = policy.large_round_pct;
  }
  return round_pct;
}

static void* carve_locked(uint32_t pages, int* dirty) {
  uint64_t now = hak_os_now_ms();
  if (now >= next_purge_ms) purge(now, 0);
  arena_t* a = NULL;
  uint32_t first = NO_PAGE;
  for (unsigned state = 2; a == NULL && state-- > 0;) {  // dirty spans first
    for (a = arenas; a != NULL; a = a->next) {
      uint32_t have = state ? a->dirty_pages : a->free_pages - a->dirty_pages;
      if (have >= pages && (first = take_free_span(a, pages, state)) != NO_PAGE) break;
    }
  }
  if (a == NULL) {
    a = arena_create(now);
    if (a == NULL) return NULL;
    first = take_free_span(a, pages, 0);
  }
  uint32_t entry = a->span[first];
  uint32_t have = entry & SPAN_PAGES;
  pages_requested += pages;
  // Rounding: a span a little larger than the request is taken whole, so that the few
  // pages left over do not stay behind as a splinter no later request fits.
  if ((uint64_t)have * 100 <= (uint64_t)pages * current_round_pct()) pages = have;
  if (have > pages) {
    bin_insert(a, first + pages, have - pages, entry & SPAN_DIRTY, a->freed_at[first]);
  }
  set_span(a, first, pages, 0);
  a->starts[first / 64] |= (uint64_t)1 << (first % 64);
  a->empty_since_ms = 0;
  live_blocks++;
  live_pages += pages;
  *dirty = (entry & SPAN_DIRTY) != 0;
  pages_handed += pages;
  if (!*dirty) clean_pages_handed += pages;
  return page_address(a, first);
}

void* hak_large_alloc(size_t size, int zeroed) {
  uint32_t pages = pages_for(size);
  int dirty = 0;
  lock_pool();
  void* p = carve_locked(pages, &dirty);
  unlock_pool();
  if (p == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  // Fresh and purged pages read as zero already.
  if (zeroed && dirty) memset(p, 0, (size_t)pages * HAK_PAGE_SIZE);
  return p;
}

// The arena and first page of live block p, or NULL.
static arena_t* live_block(const void* p, uint32_t* first) {
  arena_t* a = (arena_t*)((uintptr_t)p & ~(HAK_LARGE_ARENA_SIZE - 1));
  if (((uintptr_t)p & (HAK_PAGE_SIZE - 1)) != 0 || a->magic != (ARENA_MAGIC ^ (uintptr_t)a)) {
    return NULL;
  }
  uint32_t page = (uint32_t)(((uintptr_t)p - (uintptr_t)a) / HAK_PAGE_SIZE);
  if (page < FIRST_PAGE || !(a->starts[page / 64] & ((uint64_t)1 << (page % 64)))) return NULL;
  *first = page;
  return a;
}

static int dirty_free(const arena_t* a, uint32_t page) {
  return (a->span[page] & (SPAN_FREE | SPAN_DIRTY)) == (SPAN_FREE | SPAN_DIRTY);
}

// Frees pages [first, first + pages) of `a`, merged with free dirty neighbours.
static void release_span(arena_t* a, uint32_t first, uint32_t pages, uint64_t now) {
  if (first > FIRST_PAGE && dirty_free(a, first - 1)) {
    uint32_t left = first - (a->span[first - 1] & SPAN_PAGES);
    bin_remove(a, left);
    pages += first - left;
    first = left;
  }
  uint32_t end = first + pages;
  if (end < ARENA_PAGES && dirty_free(a, end)) {
    uint32_t right = a->span[end] & SPAN_PAGES;
    bin_remove(a, end);
    pages += right;
  }
  bin_insert(a, first, pages, SPAN_DIRTY, (uint32_t)now);
  hak_purge_note();
  if (a->free_pages == USABLE_PAGES) a->empty_since_ms = now;
}

void hak_large_free(void* p) {
  lock_pool();
  uint32_t first;
  arena_t* a = live_block(p, &first);
  if (a == NULL) {
    unlock_pool();
    hak_fatal("invalid pointer", p, "free() of an address that is no live large block's start "
              "(freed already, or inside a block)");
  }
  uint32_t pages = a->span[first] & SPAN_PAGES;
  a->starts[first / 64] &= ~((uint64_t)1 << (first % 64));
  live_blocks--;
  live_pages -= pages;
  uint64_t now = hak_os_now_ms();
  release_span(a, first, pages, now);
  if (now >= next_purge_ms) purge(now, 0);
  unlock_pool();
}

// Whether some arena has a dirty free span of `pages` or more (a bin above the one `pages` falls
// in holds only larger spans; its own bin is not searched).
static int dirty_span_fits(uint32_t pages) {
  unsigned b = bin_of(pages);
  for (arena_t* a = arenas; a != NULL; a = a->next) {
    if (bins_above(a->bin_mask[1], b)) return 1;
  }
  return 0;
}

void* hak_large_resize_in_place(void* p, size_t size) {
  uint32_t want = pages_for(size);
  void* result = NULL;
  lock_pool();
  uint32_t first;
  arena_t* a = live_block(p, &first);
  HAK_CHECK(a != NULL, "invalid pointer", p, "realloc() of an address that is no live large block's start");
  uint32_t have = a->span[first] & SPAN_PAGES;
  uint32_t end = first + have;
  uint64_t now = hak_os_now_ms();
  if (want < have) {
    set_span(a, first, want, 0);
    release_span(a, first + want, have - want, now);
    live_pages -= have - want;
    result = p;
  } else if (want == have) {
    result = p;
  } else if (end < ARENA_PAGES && (a->span[end] & SPAN_FREE) &&
             (a->span[end] & SPAN_PAGES) >= want - have &&
             ((a->span[end] & SPAN_DIRTY) || !dirty_span_fits(want))) {
    uint32_t entry = a->span[end];
    uint32_t right = entry & SPAN_PAGES;
    bin_remove(a, end);
    if (right > want - have) {
      bin_insert(a, first + want, right - (want - have), entry & SPAN_DIRTY, a->freed_at[end]);
    }
    set_span(a, first, want, 0);
    live_pages += want - have;
    result = p;
  }
  unlock_pool();
  return result;
}

size_t hak_large_usable_size(const void* p) {
  lock_pool();
  uint32_t first;
  arena_t* a = live_block(p, &first);
  size_t n = a ? (size_t)(a->span[first] & SPAN_PAGES) * HAK_PAGE_SIZE : 0;
  unlock_pool();
  return n;
}

uint64_t hak_large_purge_due(uint64_t now_ms) {
  lock_pool();
  purge(now_ms, 0);
  uint64_t due = next_due_ms;
  unlock_pool();
  return due;
}

void hak_large_trim(void) {
  lock_pool();
  purge(hak_os_now_ms(), 1);
  unlock_pool();
}

void hak_large_totals(hak_large_totals_t* out) {
  lock_pool();
  out->blocks = live_blocks;
  out->bytes = live_pages * HAK_PAGE_SIZE;
  out->arenas = arena_count;
  out->pages_handed = pages_handed;
  out->pages_requested = pages_requested;
  out->clean_pages_handed = clean_pages_handed;
  out->dirty_bytes = 0;
  for (arena_t* a = arenas; a != NULL; a = a->next) {
    out->dirty_bytes += (size_t)a->dirty_pages * HAK_PAGE_SIZE;
  }
  unlock_pool();
}
