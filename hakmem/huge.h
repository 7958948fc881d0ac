// huge: blocks above HAK_MID_MAX, each its own mapping, unmapped on free, mremap'ed on realloc.
//
// Owns: huge block headers. May use: base, os, segment (map). Each block's first byte sits in a
// 4 MiB region of its own (the map word says HAK_KIND_HUGE); its header is the page before it.
#ifndef HAKMEM_HUGE_H
#define HAKMEM_HUGE_H

#include <stddef.h>
#include <stdint.h>

#include "hakmem/base.h"

HAK_EXTERN_C_BEGIN

// alignment: a power of two; page alignment or more is free. Sets errno on failure.
void* hak_huge_alloc(size_t size, size_t alignment);
void hak_huge_free(void* p);
// Grows or shrinks in place where the kernel can, else moves the pages (no copy). NULL on failure
// (p stays valid).
void* hak_huge_realloc(void* p, size_t size);
// Usable bytes of p, or 0 if p is not the start of a live huge block.
size_t hak_huge_usable_size(const void* p);

typedef struct hak_huge_totals_s {
  size_t blocks;
  size_t bytes;
} hak_huge_totals_t;
void hak_huge_totals(hak_huge_totals_t* out);

HAK_EXTERN_C_END

#endif  // HAKMEM_HUGE_H
