// The rest of glibc's malloc API through the preloaded libhakmem.so: mallinfo2 counts every pool
// (100 MiB of live 1 MiB blocks live in the large pool), malloc_info writes glibc's XML shape,
// malloc_stats writes hakmem's report to stderr, mallopt changes nothing and says so, and the
// C23 sized frees free. Exits non-zero on the first failure. With `oversized` as its argument it
// calls free_sized with a size larger than the block instead (a checked build aborts).
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// Looked up at run time: glibc before 2.39 has neither, so only the preloaded library does.
static void (*free_sized)(void* ptr, size_t size);
static void (*free_aligned_sized)(void* ptr, size_t alignment, size_t size);

static int failures;

static void check(int ok, const char* what) {
  printf("%s %s\n", ok ? "ok" : "FAILED", what);
  failures += !ok;
}

int main(int argc, char** argv) {
  free_sized = (void (*)(void*, size_t))dlsym(RTLD_DEFAULT, "free_sized");
  free_aligned_sized = (void (*)(void*, size_t, size_t))dlsym(RTLD_DEFAULT, "free_aligned_sized");
  if (free_sized == NULL || free_aligned_sized == NULL) {
    printf("FAILED free_sized and free_aligned_sized are not exported\n");
    return 1;
  }
  if (argc > 1 && strcmp(argv[1], "oversized") == 0) {
    free_sized(malloc(100), 4096);
    return 0;
  }
  enum { kBlocks = 100 };
  void* blocks[kBlocks];
  struct mallinfo2 before = mallinfo2();
  for (int i = 0; i < kBlocks; i++) memset(blocks[i] = malloc(1 << 20), 1, 1 << 20);
  struct mallinfo2 held = mallinfo2();
  check(held.uordblks - before.uordblks >= (size_t)kBlocks << 20, "mallinfo2 counts large blocks");
  check(held.arena >= held.uordblks - held.hblkhd, "mallinfo2 arena holds them");
  for (int i = 0; i < kBlocks; i++) free(blocks[i]);
  check(mallinfo2().uordblks < held.uordblks - ((size_t)kBlocks << 19), "mallinfo2 sees frees");

  char* xml = NULL;
  size_t len = 0;
  FILE* out = open_memstream(&xml, &len);
  check(malloc_info(0, out) == 0, "malloc_info returns 0");
  fclose(out);
  check(strncmp(xml, "<malloc version=\"1\">\n<heap nr=\"0\">", 34) == 0, "malloc_info opens");
  check(strstr(xml, "<total type=\"mmap\"") != NULL && strstr(xml, "<system type=\"current\""),
        "malloc_info totals");
  check(len > 10 && strcmp(xml + len - 10, "</malloc>\n") == 0, "malloc_info closes");
  free(xml);
  FILE* sink = fopen("/dev/null", "w");
  check(malloc_info(1, sink) == -1, "malloc_info refuses options");
  fclose(sink);

  check(mallopt(M_MMAP_THRESHOLD, 1 << 20) == 0, "mallopt says it changed nothing");

  int pipe_fds[2];
  check(pipe(pipe_fds) == 0, "pipe");
  int saved = dup(2);
  dup2(pipe_fds[1], 2);
  malloc_stats();
  dup2(saved, 2);
  close(pipe_fds[1]);
  char report[256] = {0};
  check(read(pipe_fds[0], report, sizeof report - 1) > 0 && strncmp(report, "hakmem: stats", 13) == 0,
        "malloc_stats writes hakmem's report");
  close(pipe_fds[0]);

  void* p = malloc(100);
  free_sized(p, 100);
  void* a = aligned_alloc(256, 1000);
  free_aligned_sized(a, 256, 1000);
  char* r = malloc(300);
  r = realloc(r, 200);  // kept in place: the block stays larger than 200
  free_sized(r, 200);
  free_sized(NULL, 10);
  check(1, "sized frees");
  return failures != 0;
}
