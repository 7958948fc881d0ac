#include "hakmem/huge.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "hakmem/base.h"
#include "hakmem/config.h"
#include "hakmem/os/os.h"
#include "hakmem/purge_hint.h"
#include "hakmem/segment.h"

#define HUGE_MAGIC ((uint64_t)0x68616b6875676521ull)
#define CACHED_MAGIC ((uint64_t)0x68616b6361636865ull)
#define CACHE_SLOTS 16

typedef struct huge_header_s {
  uint64_t magic;      // HUGE_MAGIC ^ address of the block
  void* map_base;      // start of the whole mapping
  size_t map_size;     // bytes mapped from map_base
  size_t usable;       // bytes from the block to the end of the mapping
} huge_header_t;

static _Atomic size_t live_blocks;
static _Atomic size_t live_bytes;

// Freed blocks kept mapped for reuse: a program that frees and allocates buffers of a few MiB
// in turn would otherwise page-fault every byte of every buffer. Entries are page-aligned blocks
// (their headers say CACHED_MAGIC); they are unmapped after the purge delay or when the cache
// would exceed HAKMEM_HUGE_CACHE_MB.
typedef struct cached_s {
  void* block;
  uint64_t cached_at_ms;
} cached_t;
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static cached_t cache[CACHE_SLOTS];
static unsigned cache_count;
static size_t cache_bytes;

void hak_huge_fork_prepare(void) { pthread_mutex_lock(&cache_lock); }
void hak_huge_fork_parent(void) { pthread_mutex_unlock(&cache_lock); }
void hak_huge_fork_child(void) { pthread_mutex_unlock(&cache_lock); }

static void lock_cache(void) { pthread_mutex_lock(&cache_lock); }

static huge_header_t* header_of(const void* p) {
  return (huge_header_t*)((uintptr_t)p - HAK_PAGE_SIZE);
}

static size_t page_round(size_t n) { return (n + HAK_PAGE_SIZE - 1) & ~(HAK_PAGE_SIZE - 1); }

#define HUGE_PAGE_SIZE (2 * HAK_MiB)

// Usable bytes of a block of at least `usable` bytes (a page multiple) that starts `prefix` bytes
// into its mapping. From 2 MiB up, the mapping ends on a 2 MiB boundary: every 2 MiB of it can
// then be one transparent huge page, where a partial last one would fault in 512 small pages
// (page faults cost microseconds each on a VM; at most 2 MiB of address space is the price).
static size_t mapped_usable(size_t usable, size_t prefix) {
  if (usable < HUGE_PAGE_SIZE || usable > SIZE_MAX / 4) return usable;
  return hak_align_up(prefix + usable, HUGE_PAGE_SIZE) - prefix;
}

// A cached block up to this size serves a request of `usable` bytes without resizing.
static size_t reuse_limit(size_t usable) {
  return usable / 100 * (size_t)hak_config.huge_round_pct;
}

static void unmap_block(void* block) {
  huge_header_t* h = header_of(block);
  h->magic = 0;
  hak_map_set(block, 0);
  hak_os.unmap(h->map_base, h->map_size);
}

static void cache_remove_locked(unsigned i) {
  cache_bytes -= header_of(cache[i].block)->usable;
  cache[i] = cache[--cache_count];
}

// Takes the cached block that needs the fewest page faults to hold `usable` bytes: the smallest
// one that fits within the rounding limit, else the largest (to be resized). NULL if empty.
static void* cache_take(size_t usable) {
  size_t limit = reuse_limit(usable);
  lock_cache();
  int best = -1;
  for (unsigned i = 0; i < cache_count; i++) {
    size_t size = header_of(cache[i].block)->usable;
    if (best < 0) {
      best = (int)i;
      continue;
    }
    size_t best_size = header_of(cache[best].block)->usable;
    int fits = size >= usable && size <= limit;
    int best_fits = best_size >= usable && best_size <= limit;
    if (fits ? (!best_fits || size < best_size) : (!best_fits && size > best_size)) best = (int)i;
  }
  void* block = NULL;
  if (best >= 0) {
    block = cache[best].block;
    cache_remove_locked((unsigned)best);
  }
  pthread_mutex_unlock(&cache_lock);
  return block;
}

// Unmaps blocks cached longer than the purge delay (all with `force`), outside the lock; returns
// when the next of those kept is due (0: none).
static uint64_t cache_expire(uint64_t now_ms, int force) {
  void* expired[CACHE_SLOTS];
  unsigned n = 0;
  uint64_t delay = (uint64_t)hak_config.purge_delay_ms, next_due = 0;
  lock_cache();
  for (unsigned i = 0; i < cache_count;) {
    if (force || now_ms - cache[i].cached_at_ms >= delay) {
      expired[n++] = cache[i].block;
      cache_remove_locked(i);
    } else {
      next_due = hak_purge_earlier(next_due, cache[i].cached_at_ms + delay);
      i++;
    }
  }
  pthread_mutex_unlock(&cache_lock);
  for (unsigned i = 0; i < n; i++) unmap_block(expired[i]);
  return next_due;
}

// Keeps a freed block for reuse if the cache has room; returns 0 if the caller must unmap it.
static int cache_put(void* block, uint64_t now_ms) {
  size_t usable = header_of(block)->usable;
  size_t cap = (size_t)hak_config.huge_cache_mb << 20;
  lock_cache();
  int kept = cache_count < CACHE_SLOTS && cache_bytes + usable <= cap;
  if (kept) {
    header_of(block)->magic = CACHED_MAGIC ^ (uintptr_t)block;
    cache[cache_count++] = (cached_t){.block = block, .cached_at_ms = now_ms};
    cache_bytes += usable;
    hak_purge_note();
  }
  pthread_mutex_unlock(&cache_lock);
  return kept;
}

void hak_huge_trim(void) { cache_expire(0, 1); }

uint64_t hak_huge_purge_due(uint64_t now_ms) { return cache_expire(now_ms, 0); }

static void* huge_resize(void* p, size_t usable);

static void* alloc_from_cache(size_t usable, int zeroed) {
  cache_expire(hak_os_now_ms(), 0);
  void* block = cache_take(usable);
  if (block == NULL) return NULL;
  huge_header_t* h = header_of(block);
  size_t old_usable = h->usable;
  h->magic = HUGE_MAGIC ^ (uintptr_t)block;
  atomic_fetch_add_explicit(&live_blocks, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&live_bytes, old_usable, memory_order_relaxed);
  if (old_usable < usable || old_usable > reuse_limit(usable)) {
    void* resized = huge_resize(block, usable);
    if (resized == NULL) {
      hak_huge_free(block);
      return NULL;
    }
    block = resized;
  }
  // Pages added by growing are fresh zero pages; only the reused ones can hold old data.
  if (zeroed) memset(block, 0, old_usable < usable ? old_usable : usable);
  return block;
}

void* hak_huge_alloc(size_t size, size_t alignment, int zeroed) {
  hak_config_init_once();  // a program's first allocation may be a huge one
  if (alignment < HAK_PAGE_SIZE) alignment = HAK_PAGE_SIZE;
  size_t usable = page_round(size);
  if (alignment == HAK_PAGE_SIZE && usable >= size && usable <= SIZE_MAX / 2) {
    void* block = alloc_from_cache(usable, zeroed);
    if (block) return block;
  }
  // The block starts `alignment` (>= one page, for the header) into a region aligned to at least
  // a segment, so no other block's start shares its 4 MiB map entry.
  size_t region_alignment = alignment > HAK_SEGMENT_SIZE ? alignment : HAK_SEGMENT_SIZE;
  if (usable < size || usable > SIZE_MAX / 2 || alignment > SIZE_MAX / 4) goto out_of_memory;
  usable = mapped_usable(usable, alignment);
  uint8_t* base = hak_os_map_aligned_with_prefix(alignment, usable, region_alignment);
  if (base == NULL) goto out_of_memory;
  uint8_t* block = base + alignment;
  if (hak_map_commit(block) != 0) {
    hak_os.unmap(base, alignment + usable);
    goto out_of_memory;
  }
  huge_header_t* h = header_of(block);
  h->magic = HUGE_MAGIC ^ (uintptr_t)block;
  h->map_base = base;
  h->map_size = alignment + usable;
  h->usable = usable;
  // The hint covers the whole mapping: on part of it, it would split the VMA in two, and mremap
  // (realloc) refuses a range that spans two VMAs.
  if (usable >= HUGE_PAGE_SIZE) hak_os_hint_huge_pages(base, h->map_size);
  hak_map_set(block, HAK_OWNER_NONE | HAK_KIND_HUGE);
  atomic_fetch_add_explicit(&live_blocks, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&live_bytes, usable, memory_order_relaxed);
  return block;
out_of_memory:
  errno = ENOMEM;
  return NULL;
}

static huge_header_t* checked_header(const void* p) {
  if (((uintptr_t)p & (HAK_PAGE_SIZE - 1)) != 0) return NULL;
  huge_header_t* h = header_of(p);
  return h->magic == (HUGE_MAGIC ^ (uintptr_t)p) ? h : NULL;
}

void hak_huge_free(void* p) {
  huge_header_t* h = checked_header(p);
  if (h == NULL && ((uintptr_t)p & (HAK_PAGE_SIZE - 1)) == 0 &&
      header_of(p)->magic == (CACHED_MAGIC ^ (uintptr_t)p)) {
    hak_fatal("double free", p, "free() of a huge block that was freed already");
  }
  HAK_CHECK(h != NULL, "invalid pointer", p, "free() of an address that is no huge block's start");
  atomic_fetch_sub_explicit(&live_blocks, 1, memory_order_relaxed);
  atomic_fetch_sub_explicit(&live_bytes, h->usable, memory_order_relaxed);
  uint64_t now = hak_os_now_ms();
  int page_aligned_block = (uint8_t*)p - (uint8_t*)h->map_base == (ptrdiff_t)HAK_PAGE_SIZE;
  if (!page_aligned_block || !cache_put(p, now)) unmap_block(p);
  cache_expire(now, 0);
}

void* hak_huge_realloc(void* p, size_t size) {
  huge_header_t* h = checked_header(p);
  HAK_CHECK(h != NULL, "invalid pointer", p, "realloc() of an address that is no huge block's start");
  size_t usable = page_round(size);
  if (usable < size) {
    errno = ENOMEM;
    return NULL;
  }
  return huge_resize(p, usable);
}

// Resizes live block p to `usable` bytes (page multiple): in place, else moved without copying.
static void* huge_resize(void* p, size_t usable) {
  huge_header_t* h = header_of(p);
  size_t prefix = (size_t)((uint8_t*)p - (uint8_t*)h->map_base);
  usable = mapped_usable(usable, prefix);
  if (usable == h->usable) return p;
  size_t old_usable = h->usable;
  // In place first: shrinking always works, growing when the pages after are free.
  if (hak_os.remap(h->map_base, h->map_size, prefix + usable, 0, NULL) != NULL) {
    h->map_size = prefix + usable;
    h->usable = usable;
    atomic_fetch_add_explicit(&live_bytes, usable - old_usable, memory_order_relaxed);
    return p;
  }
  // Move the pages to a fresh aligned reservation: the block keeps a map entry of its own.
  size_t region_alignment = prefix > HAK_SEGMENT_SIZE ? prefix : HAK_SEGMENT_SIZE;
  uint8_t* target = hak_os_map_aligned_with_prefix(prefix, usable, region_alignment);
  if (target == NULL) goto out_of_memory;
  if (hak_map_commit(target + prefix) != 0) {
    hak_os.unmap(target, prefix + usable);
    goto out_of_memory;
  }
  void* old_base = h->map_base;
  size_t old_size = h->map_size;
  // p's map entry goes before its pages do: once they are gone another thread may map a block at
  // the same address and set the entry, which a later clear would wipe.
  hak_map_set(p, 0);
  if (hak_os.remap(old_base, old_size, prefix + usable, 1, target) == NULL) {
    hak_map_set(p, HAK_OWNER_NONE | HAK_KIND_HUGE);
    hak_os.unmap(target, prefix + usable);
    goto out_of_memory;
  }
  uint8_t* block = target + prefix;
  h = header_of(block);
  h->magic = HUGE_MAGIC ^ (uintptr_t)block;
  h->map_base = target;
  h->map_size = prefix + usable;
  h->usable = usable;
  hak_map_set(block, HAK_OWNER_NONE | HAK_KIND_HUGE);
  atomic_fetch_add_explicit(&live_bytes, usable - old_usable, memory_order_relaxed);
  return block;
out_of_memory:
  errno = ENOMEM;
  return NULL;
}

size_t hak_huge_usable_size(const void* p) {
  huge_header_t* h = checked_header(p);
  return h ? h->usable : 0;
}

void hak_huge_totals(hak_huge_totals_t* out) {
  out->blocks = atomic_load_explicit(&live_blocks, memory_order_relaxed);
  out->bytes = atomic_load_explicit(&live_bytes, memory_order_relaxed);
}
