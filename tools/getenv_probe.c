// Runs every allocation path many times and exits non-zero if hakmem called getenv during them
// (counted by getenv_counter.so, preloaded after libhakmem.so). Also fails if the counter saw no
// call at all: hakmem reads its configuration once, so a counter that missed it proves nothing.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
  free(malloc(16));  // hakmem has read its configuration by now
  unsigned long (*calls)(void) = (unsigned long (*)(void))dlsym(RTLD_DEFAULT, "getenv_counter_calls");
  if (calls == NULL) {
    fprintf(stderr, "getenv_probe: getenv_counter.so is not preloaded\n");
    return 2;
  }
  unsigned long before = calls();
  static const size_t sizes[] = {1, 24, 200, 1024, 1500, 9000, 60000, 100000, 1 << 20, 6 << 20};
  for (int round = 0; round < 2000; round++) {
    void* blocks[sizeof sizes / sizeof sizes[0]];
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
      size_t n = sizes[i] + (size_t)round % 64;
      blocks[i] = round % 3 == 0 ? calloc(1, n) : malloc(n);
      if (blocks[i] == NULL) return 3;
      memset(blocks[i], 1, n < 4096 ? n : 4096);
      blocks[i] = realloc(blocks[i], n + n / 2);
      if (malloc_usable_size(blocks[i]) < n) return 3;
    }
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) free(blocks[i]);
    void* aligned = aligned_alloc(4096, 8192);
    free(aligned);
  }
  malloc_trim(0);
  unsigned long after = calls();
  printf("getenv calls: %lu during init, %lu during 20000 allocation round trips\n", before,
         after - before);
  if (before == 0) {
    fprintf(stderr, "getenv_probe: no getenv call seen at init: the counter is not in effect\n");
    return 1;
  }
  return after == before ? 0 : 1;
}
