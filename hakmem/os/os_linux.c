#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "hakmem/os/os.h"

#ifdef SYS_membarrier
#include <linux/membarrier.h>
#endif

static void* linux_map(void* hint, size_t size) {
  void* p = mmap(hint, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

static int linux_unmap(void* addr, size_t size) { return munmap(addr, size); }

static int linux_purge(void* addr, size_t size) {
  // MADV_DONTNEED, not MADV_FREE: RSS must drop now, not under memory pressure.
  return madvise(addr, size, MADV_DONTNEED);
}

static void* linux_remap(void* addr, size_t old_size, size_t new_size, int may_move,
                         void* fixed_to) {
  int flags = may_move ? MREMAP_MAYMOVE : 0;
  void* p = fixed_to ? mremap(addr, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, fixed_to)
                     : mremap(addr, old_size, new_size, flags);
  return p == MAP_FAILED ? NULL : p;
}

static size_t linux_page_size(void) { return (size_t)sysconf(_SC_PAGESIZE); }

static int linux_protect(void* addr, size_t size, int accessible) {
  return mprotect(addr, size, accessible ? PROT_READ | PROT_WRITE : PROT_NONE);
}

static const hak_os_ops_t linux_ops = {linux_map, linux_unmap, linux_purge, linux_remap,
                                       linux_page_size, linux_protect};

hak_os_ops_t hak_os = {linux_map, linux_unmap, linux_purge, linux_remap, linux_page_size,
                       linux_protect};

void hak_os_set_ops(const hak_os_ops_t* ops) { hak_os = *ops; }
void hak_os_reset_ops(void) { hak_os = linux_ops; }

void* hak_os_map_aligned_with_prefix(size_t prefix, size_t size, size_t alignment) {
  HAK_ASSERT(hak_is_power_of_two(alignment) && alignment >= HAK_PAGE_SIZE);
  size_t total = prefix + size;
  if (total < size || total + alignment < total) return NULL;
  // Over-reserve by one alignment, then trim both ends.
  uint8_t* raw = hak_os.map(NULL, total + alignment);
  if (raw == NULL) return NULL;
  uint8_t* base = (uint8_t*)hak_align_up((uintptr_t)raw, alignment);
  size_t head = (size_t)(base - raw);
  size_t tail = alignment - head;
  if (head > 0) hak_os.unmap(raw, head);
  if (tail > 0) hak_os.unmap(base + total, tail);
  return base;
}

void* hak_os_map_aligned(size_t size, size_t alignment) {
  return hak_os_map_aligned_with_prefix(0, size, alignment);
}

void hak_os_hint_huge_pages(void* addr, size_t size) {
#ifdef MADV_HUGEPAGE
  (void)madvise(addr, size, MADV_HUGEPAGE);
#else
  (void)addr;
  (void)size;
#endif
}

uint64_t hak_os_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

// Reads a small /proc file into buf (NUL-terminated); its length, or 0. No stdio, no malloc.
static size_t read_proc(const char* path, char* buf, size_t size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, size - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  return (size_t)n;
}

// The decimal number at s after any blanks (no sscanf: no locale, no malloc).
static size_t parse_decimal(const char* s) {
  while (*s == ' ' || *s == '\t') s++;
  size_t value = 0;
  while (*s >= '0' && *s <= '9') value = value * 10 + (size_t)(*s++ - '0');
  return value;
}

size_t hak_os_rss_bytes(void) {
  char buf[128];
  if (read_proc("/proc/self/statm", buf, sizeof buf) == 0) return 0;
  // statm: size resident shared ...: the second field.
  const char* s = buf;
  while (*s && *s != ' ') s++;
  return parse_decimal(s) * (size_t)sysconf(_SC_PAGESIZE);
}

size_t hak_os_peak_rss_bytes(void) {
  char buf[4096];
  if (read_proc("/proc/self/status", buf, sizeof buf) == 0) return 0;
  const char* s = strstr(buf, "VmHWM:");
  return s == NULL ? 0 : parse_decimal(s + 6) * 1024;
}

int hak_os_zero_read_only(void* addr, size_t size) {
  int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE;
  void* p = mmap(addr, size, PROT_READ, flags, -1, 0);
  return p == addr ? 0 : -1;
}

uint64_t hak_os_random(void) {
  uint64_t value = 0;
  if (getrandom(&value, sizeof value, GRND_NONBLOCK) != (ssize_t)sizeof value) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    value = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull ^ (uint64_t)(uintptr_t)&value ^
            ((uint64_t)ts.tv_sec << 32);
  }
  return value ? value : 0x9E3779B97F4A7C15ull;
}

int hak_os_barrier_all_threads(void) {
#ifdef SYS_membarrier
  // 1: registered, -1: refused (the process must register once before the expedited command).
  static int state;  // __atomic
  int known = __atomic_load_n(&state, __ATOMIC_ACQUIRE);
  if (known == 0) {
    known = syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0 ? 1 : -1;
    __atomic_store_n(&state, known, __ATOMIC_RELEASE);
  }
  if (known < 0) return -1;
  return syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0 ? 0 : -1;
#else
  return -1;
#endif
}
