// huge: blocks above HAK_MID_MAX, each its own mapping, mremap'ed on realloc. Freed blocks are
// cached (up to HAKMEM_HUGE_CACHE_MB, for the purge delay) and reused by best fit, resized with
// mremap, so a program cycling through big buffers does not fault in every page every time.
//
// Owns: huge block headers and the cache of freed blocks. May use: base, config, os, segment
// (map). Each block's first byte sits in a 4 MiB region of its own (the map word says
// HAK_KIND_HUGE); its header is the page before it.
#ifndef HAKMEM_HUGE_H
#define HAKMEM_HUGE_H

#include <stddef.h>
#include <stdint.h>

#include "hakmem/base.h"

HAK_EXTERN_C_BEGIN

// alignment: a power of two; page alignment or more is free. With `zeroed`, the block reads as
// zero (fresh pages already do; a block reused from the cache is cleared). Sets errno on failure.
void* hak_huge_alloc(size_t size, size_t alignment, int zeroed);
void hak_huge_free(void* p);
// Grows or shrinks in place where the kernel can, else moves the pages (no copy). NULL on failure
// (p stays valid).
void* hak_huge_realloc(void* p, size_t size);
// Unmaps every cached free block now.
void hak_huge_trim(void);

// For the purger's thread: unmaps the cached blocks idle past the purge delay; returns when the
// next is due (0: none waits).
uint64_t hak_huge_purge_due(uint64_t now_ms);
// Usable bytes of p, or 0 if p is not the start of a live huge block.
size_t hak_huge_usable_size(const void* p);

typedef struct hak_huge_totals_s {
  size_t blocks;
  size_t bytes;
} hak_huge_totals_t;
void hak_huge_totals(hak_huge_totals_t* out);

// Fork: prepare takes the cache lock, the child makes it anew (process init orders the locks).
void hak_huge_fork_prepare(void);
void hak_huge_fork_parent(void);
void hak_huge_fork_child(void);

HAK_EXTERN_C_END

#endif  // HAKMEM_HUGE_H
