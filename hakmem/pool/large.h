// pool/large: blocks above HAK_MID_MAX up to HAKMEM_LARGE_MAX_KB (default 4 MiB), as page-granular
// spans of 32 MiB arenas. Freed spans coalesce with free neighbours and are reused by the next
// request that fits, pages still committed: a program cycling through blocks of a few hundred KiB
// touches the same pages again instead of faulting in fresh ones. Free spans are purged
// (MADV_DONTNEED) once they have stayed free HAKMEM_PURGE_DELAY_MS; an arena left wholly free
// that long is unmapped, but for one kept for reuse.
//
// Owns: the arenas, their page tables and free-span bins. May use: base, config, os, segment
// (map words: every 4 MiB entry of an arena reads HAK_OWNER_NONE | HAK_KIND_LARGE), ace/policy
// (rounding limit, taken up under the lock when the engine publishes a new policy).
//
// Threading: one lock over the whole pool. Large requests cost a few hundred nanoseconds of work
// anyway; the lock is held across fork.
#ifndef HAKMEM_POOL_LARGE_H
#define HAKMEM_POOL_LARGE_H

#include <stddef.h>

#include "hakmem/base.h"

HAK_EXTERN_C_BEGIN

#define HAK_LARGE_ARENA_SHIFT 25  // 32 MiB
#define HAK_LARGE_ARENA_SIZE ((size_t)1 << HAK_LARGE_ARENA_SHIFT)

// Largest request the pool serves (from HAKMEM_LARGE_MAX_KB); larger ones are huge blocks.
size_t hak_large_max(void);

// A page-aligned block of at least `size` bytes (HAK_MID_MAX < size <= hak_large_max()). With
// `zeroed` it reads as zero. NULL with errno = ENOMEM when the OS refuses memory.
void* hak_large_alloc(size_t size, int zeroed);

// Aborts with a clear message if p is not the start of a live large block (double free too).
void hak_large_free(void* p);

// Grows or shrinks p in place to hold `size` bytes if its neighbouring pages allow; returns p, or
// NULL when it cannot (p unchanged). It does not grow into clean pages while a dirty free span
// could hold the whole block (moving it costs a copy, not resident memory). size <= hak_large_max().
void* hak_large_resize_in_place(void* p, size_t size);

// Usable bytes of p, or 0 if p is not the start of a live large block.
size_t hak_large_usable_size(const void* p);

// For the purger's thread: purges the free spans idle past the purge delay and unmaps the arenas
// wholly free that long (but one); returns when the next of what still waits is due (0: none).
uint64_t hak_large_purge_due(uint64_t now_ms);

// Purges every free span and unmaps every wholly free arena now.
void hak_large_trim(void);

typedef struct hak_large_totals_s {
  size_t blocks;        // live large blocks
  size_t bytes;         // their usable bytes
  size_t arenas;        // arenas mapped
  size_t dirty_bytes;   // free bytes whose pages are still committed
  // Since start: pages handed out, pages their requests asked for (rounding hands out whole spans
  // a little larger), and pages handed out that had never been committed or were purged.
  uint64_t pages_handed;
  uint64_t pages_requested;
  uint64_t clean_pages_handed;
} hak_large_totals_t;
void hak_large_totals(hak_large_totals_t* out);

// Fork: prepare takes the pool lock, the child makes it anew (process init orders the locks).
void hak_large_fork_prepare(void);
void hak_large_fork_parent(void);
void hak_large_fork_child(void);

HAK_EXTERN_C_END

#endif  // HAKMEM_POOL_LARGE_H
