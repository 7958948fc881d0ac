// wrap: sends the size ranges whose HAKMEM_WRAP_* variable is 0 to the next allocator in the
// link order (glibc's malloc, found with dlsym(RTLD_NEXT, ...)), and takes that allocator's
// blocks back on free, realloc and malloc_usable_size. A tool for bisecting a problem to one box:
//   HAKMEM_WRAP_TINY   blocks up to 1 KiB          (tiny/)
//   HAKMEM_WRAP_MID    above 1 KiB up to 64 KiB    (pool/mid)
//   HAKMEM_WRAP_LARGE  above 64 KiB up to HAKMEM_LARGE_MAX_KB (pool/large)
//   HAKMEM_WRAP_HUGE   above that                  (huge)
//
// Owns: the next allocator's entry points. May use: base, config. Costs nothing on the fast
// paths: a routed range never gets a current slab or cached block, so its requests reach the
// slow paths, which ask hak_wrap_routes. While any range is routed, a pointer outside hakmem's
// memory is taken to be the next allocator's (hakmem can no longer call it foreign).
#ifndef HAKMEM_WRAP_H
#define HAKMEM_WRAP_H

#include <stddef.h>

#include "hakmem/base.h"

HAK_EXTERN_C_BEGIN

// Nonzero if a request of n bytes goes to the next allocator. Never during the lookup of the
// next allocator's functions (dlsym may allocate: hakmem serves that).
int hak_wrap_routes(size_t n);
// Nonzero if some range is routed (pointers outside hakmem's memory are the next allocator's).
int hak_wrap_active(void);

void* hak_wrap_malloc(size_t n);
void* hak_wrap_calloc(size_t count, size_t size);
void* hak_wrap_memalign(size_t alignment, size_t n);
void* hak_wrap_realloc(void* p, size_t n);
void hak_wrap_free(void* p);
size_t hak_wrap_usable_size(void* p);

HAK_EXTERN_C_END

#endif  // HAKMEM_WRAP_H
