#include "hakmem/huge.h"

#include <errno.h>
#include <stdatomic.h>

#include "hakmem/base.h"
#include "hakmem/os/os.h"
#include "hakmem/segment.h"

#define HUGE_MAGIC ((uint64_t)0x68616b6875676521ull)

typedef struct huge_header_s {
  uint64_t magic;      // HUGE_MAGIC ^ address of the block
  void* map_base;      // start of the whole mapping
  size_t map_size;     // bytes mapped from map_base
  size_t usable;       // bytes from the block to the end of the mapping
} huge_header_t;

static _Atomic size_t live_blocks;
static _Atomic size_t live_bytes;

static huge_header_t* header_of(const void* p) {
  return (huge_header_t*)((uintptr_t)p - HAK_PAGE_SIZE);
}

static size_t page_round(size_t n) { return (n + HAK_PAGE_SIZE - 1) & ~(HAK_PAGE_SIZE - 1); }

void* hak_huge_alloc(size_t size, size_t alignment) {
  if (alignment < HAK_PAGE_SIZE) alignment = HAK_PAGE_SIZE;
  size_t usable = page_round(size);
  // The block starts `alignment` (>= one page, for the header) into a region aligned to at least
  // a segment, so no other block's start shares its 4 MiB map entry.
  size_t region_alignment = alignment > HAK_SEGMENT_SIZE ? alignment : HAK_SEGMENT_SIZE;
  if (usable < size || usable > SIZE_MAX / 2 || alignment > SIZE_MAX / 4) goto out_of_memory;
  uint8_t* base = hak_os_map_aligned_with_prefix(alignment, usable, region_alignment);
  if (base == NULL) goto out_of_memory;
  uint8_t* block = base + alignment;
  huge_header_t* h = header_of(block);
  h->magic = HUGE_MAGIC ^ (uintptr_t)block;
  h->map_base = base;
  h->map_size = alignment + usable;
  h->usable = usable;
  if (usable >= 2 * HAK_MiB) hak_os_hint_huge_pages(block, usable);
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
  HAK_CHECK(h != NULL, "free of an invalid pointer", p, "not the start of a huge block");
  h->magic = 0;
  atomic_fetch_sub_explicit(&live_blocks, 1, memory_order_relaxed);
  atomic_fetch_sub_explicit(&live_bytes, h->usable, memory_order_relaxed);
  hak_map_set(p, 0);
  hak_os.unmap(h->map_base, h->map_size);
}

void* hak_huge_realloc(void* p, size_t size) {
  huge_header_t* h = checked_header(p);
  HAK_CHECK(h != NULL, "realloc of an invalid pointer", p, "not the start of a huge block");
  size_t usable = page_round(size);
  if (usable < size) goto out_of_memory;
  if (usable == h->usable) return p;
  size_t prefix = (size_t)((uint8_t*)p - (uint8_t*)h->map_base);
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
  void* old_base = h->map_base;
  size_t old_size = h->map_size;
  if (hak_os.remap(old_base, old_size, prefix + usable, 1, target) == NULL) {
    hak_os.unmap(target, prefix + usable);
    goto out_of_memory;
  }
  uint8_t* block = target + prefix;
  h = header_of(block);
  h->magic = HUGE_MAGIC ^ (uintptr_t)block;
  h->map_base = target;
  h->map_size = prefix + usable;
  h->usable = usable;
  hak_map_set(p, 0);
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
