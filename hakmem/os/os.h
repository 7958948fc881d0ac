// os: every system call the allocator makes for memory (mmap, munmap, madvise, mremap,
// membarrier) and time.
//
// Owns: nothing but the table of primitives. May use: base. No other box calls the kernel for
// memory. Tests replace the table (hak_os_set_ops) to inject failures.
//
// Contract of every primitive: sizes and addresses are page-aligned; failure returns NULL / -1
// and never aborts (callers turn it into ENOMEM).
#ifndef HAKMEM_OS_OS_H
#define HAKMEM_OS_OS_H

#include <stddef.h>
#include <stdint.h>

#include "hakmem/base.h"

HAK_EXTERN_C_BEGIN

// The page size hakmem's layout is built for (slab headers, guard pages, purge ranges). Process
// init compares it with the kernel's (hak_os.page_size) and serves nothing on a kernel whose
// pages differ (16 or 64 KiB on some aarch64 systems): see init.c.
#define HAK_PAGE_SIZE ((size_t)4096)

typedef struct hak_os_ops_s {
  void* (*map)(void* hint, size_t size);                    // read/write, anonymous, private
  int (*unmap)(void* addr, size_t size);
  int (*purge)(void* addr, size_t size);                    // drop contents, keep the mapping
  void* (*remap)(void* addr, size_t old_size, size_t new_size, int may_move, void* fixed_to);
  size_t (*page_size)(void);                                // the kernel's
  // Makes a range inaccessible (guard) or readable and writable again. 0 on success.
  int (*protect)(void* addr, size_t size, int accessible);
} hak_os_ops_t;

// The active primitives; defaults to Linux system calls.
extern hak_os_ops_t hak_os;
void hak_os_set_ops(const hak_os_ops_t* ops);
void hak_os_reset_ops(void);

// Maps `size` bytes whose start is a multiple of `alignment` (a power of two >= page size).
// Trims the excess so only [result, result + size) stays mapped.
void* hak_os_map_aligned(size_t size, size_t alignment);

// Like hak_os_map_aligned but the start is at `offset` past an aligned boundary and the
// reservation before it stays mapped: returns the aligned base; [base, base+offset+size) mapped.
void* hak_os_map_aligned_with_prefix(size_t prefix, size_t size, size_t alignment);

// Hints that a range may use transparent huge pages (ignored where unsupported).
void hak_os_hint_huge_pages(void* addr, size_t size);

// Monotonic milliseconds, cheap (vDSO), for purge delays.
uint64_t hak_os_now_ms(void);

// Resident set size of this process in bytes, or 0 if unknown (reads /proc; slow).
size_t hak_os_rss_bytes(void);
// Peak resident set size of the process (VmHWM), or 0 if unknown. Does not allocate.
size_t hak_os_peak_rss_bytes(void);
// Replaces the pages of a page-aligned range of the process's own memory with zero pages that may
// only be read: the range is charged to no commit limit (strict overcommit) until parts of it are
// made writable again with hak_os.protect. 0 on success.
int hak_os_zero_read_only(void* addr, size_t size);
// Makes every running thread of this process execute a full memory barrier (membarrier, private
// expedited), so that a thread may read another's plain stores in order without that thread
// fencing. 0 on success; -1 where the kernel (or an emulator) has no such call, every time.
int hak_os_barrier_all_threads(void);
// A random word from the kernel (getrandom), or one derived from the clock and addresses if the
// kernel has none to give yet. Never zero.
uint64_t hak_os_random(void);

HAK_EXTERN_C_END

#endif  // HAKMEM_OS_OS_H
