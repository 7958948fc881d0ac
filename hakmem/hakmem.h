/* HAKMEM: a general-purpose memory allocator.
 *
 * Use it as a drop-in malloc (LD_PRELOAD=libhakmem.so) or call these functions directly after
 * linking the static library //hakmem:hakmem. Every function behaves like its C / POSIX / glibc
 * namesake: 16-byte alignment for sizes >= 16, NULL with errno = ENOMEM on exhaustion or size
 * overflow. Freeing a pointer hakmem did not return aborts with a one-line message where hakmem
 * can tell (always for pointers outside its memory).
 */
#ifndef HAKMEM_HAKMEM_H
#define HAKMEM_HAKMEM_H

#include <stddef.h>

#include "hakmem/class_counters.h"

#ifdef __cplusplus
extern "C" {
#endif

void* hak_malloc(size_t size);
void hak_free(void* ptr);
void* hak_calloc(size_t count, size_t size);
void* hak_realloc(void* ptr, size_t size);
void* hak_reallocarray(void* ptr, size_t count, size_t size);
void* hak_aligned_alloc(size_t alignment, size_t size);
int hak_posix_memalign(void** out, size_t alignment, size_t size);
void* hak_memalign(size_t alignment, size_t size);
void* hak_valloc(size_t size);
void* hak_pvalloc(size_t size);
size_t hak_usable_size(const void* ptr);
/* Returns free memory of the calling thread and the shared caches to the OS now. */
void hak_trim(void);

typedef struct hak_stats_s {
  size_t segments_mapped;     /* 4 MiB segments currently mapped (in use, cached or abandoned) */
  size_t segments_cached;     /* empty segments kept for reuse */
  size_t segments_abandoned;  /* segments of exited threads waiting for adoption */
  size_t slabs_in_use;        /* slabs holding blocks, over all live thread heaps */
  size_t slab_bytes_in_use;   /* bytes of those slabs */
  size_t dirty_free_slabs;    /* free slabs whose pages are not yet returned to the OS */
  size_t huge_blocks;         /* live blocks above HAKMEM_LARGE_MAX_KB (one mapping each) */
  size_t huge_bytes;          /* their usable bytes */
  size_t purged_bytes;        /* bytes returned to the OS with madvise since start */
  size_t thread_heaps;        /* thread heaps in use */
  unsigned long long remote_takeovers; /* times the purger handed over the cross-thread frees a
                                          stopped thread held in batches (docs/DESIGN.md) */
  size_t rss_bytes;           /* resident set size of the process (from /proc) */
  size_t large_blocks;        /* live blocks of 64 KiB to HAKMEM_LARGE_MAX_KB (arena spans) */
  size_t large_bytes;         /* their usable bytes */
  size_t large_arenas;        /* 32 MiB arenas mapped for them */
  size_t peak_rss_bytes;      /* peak resident set size of the process (from /proc) */
  int ace_running;            /* the adaptive cache engine's thread runs (docs/ACE.md) */
  unsigned long long ace_windows;    /* observation windows it has run */
  unsigned long long ace_decisions;  /* decisions it made in them (HAKMEM_ACE_LOG=1 prints them) */
  size_t ace_extra_class_size;       /* the size the engine gave the extra class; 0: none */
} hak_stats_t;

/* Fills *out with current totals (a consistent-enough snapshot while other threads run). */
void hak_stats(hak_stats_t* out);

/* Counters of one size class (blocks up to 64 KiB), over every thread that ever allocated.
 * Release builds count only on slow paths, where counting is free; allocs, frees and live need
 * a count on every call and are -1 unless the library was built with the debug config. */
#define HAK_CLASS_STATS_FIELD(name, column, meaning) unsigned long long name;
typedef struct hak_class_stats_s {
  size_t block_size;
  size_t slabs;                      /* slabs serving the class now */
  HAK_CLASS_COUNTERS(HAK_CLASS_STATS_FIELD) /* class_counters.h */
  long long allocs;                  /* debug builds: blocks handed out (else -1) */
  long long frees;                   /* debug builds: blocks taken back (else -1) */
  long long live;                    /* debug builds: allocs - frees (else -1) */
} hak_class_stats_t;

/* Fills out[0 .. max) with the counters of classes 0, 1, ...; returns the number of classes. */
size_t hak_class_stats(hak_class_stats_t* out, size_t max);

/* Writes the report HAKMEM_STATS=1 prints at exit to file descriptor `fd`. Does not allocate. */
void hak_stats_print(int fd);

#ifdef __cplusplus
}
#endif

#endif /* HAKMEM_HAKMEM_H */
