// Exercises the places where a preloaded malloc is called before, around and inside libc:
// a constructor before main, dlsym, dlopen of a library that allocates in its own constructor,
// thread creation, and glibc functions that allocate internally (strdup, getline,
// open_memstream, asprintf, fopen buffers). Every block is freed by the program: hakmem aborts
// on a pointer it did not allocate, so any allocation that bypassed the shim fails this run.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char* before_main;

__attribute__((constructor)) static void allocate_before_main(void) {
  before_main = malloc(100);
  strcpy(before_main, "constructor");
}

static void* thread_body(void* arg) {
  char* s = strdup((const char*)arg);
  void* big = calloc(1, 300000);
  free(big);
  return s;
}

static int check(int ok, const char* what) {
  printf("%s %s\n", ok ? "ok" : "FAILED", what);
  return ok ? 0 : 1;
}

int main(int argc, char** argv) {
  int failures = 0;
  failures += check(before_main && strcmp(before_main, "constructor") == 0, "malloc before main");
  free(before_main);

  void* (*next_malloc)(size_t) = (void* (*)(size_t))dlsym(RTLD_NEXT, "malloc");
  failures += check(next_malloc != NULL, "dlsym(RTLD_NEXT, malloc)");
  void* (*default_malloc)(size_t) = (void* (*)(size_t))dlsym(RTLD_DEFAULT, "malloc");
  void* via_dlsym = default_malloc(40);
  failures += check(via_dlsym != NULL && malloc_usable_size(via_dlsym) >= 40, "dlsym'd malloc");
  free(via_dlsym);

  if (argc > 1) {
    void* plugin = dlopen(argv[1], RTLD_NOW);
    failures += check(plugin != NULL, "dlopen of an allocating library");
    if (plugin) {
      char* (*greet)(void) = (char* (*)(void))dlsym(plugin, "plugin_greeting");
      char* text = greet ? greet() : NULL;
      failures += check(text && strcmp(text, "hello from the plugin") == 0, "plugin's malloc");
      free(text);
      dlclose(plugin);
    }
  }

  pthread_t threads[8];
  for (int i = 0; i < 8; i++) pthread_create(&threads[i], NULL, thread_body, "thread");
  int thread_ok = 1;
  for (int i = 0; i < 8; i++) {
    void* s;
    pthread_join(threads[i], &s);
    thread_ok &= s != NULL && strcmp(s, "thread") == 0;
    free(s);
  }
  failures += check(thread_ok, "pthread_create and frees of other threads' blocks");

  char text[] = "first line\nsecond line that is quite a bit longer than the first\n";
  FILE* in = fmemopen(text, strlen(text), "r");
  char* line = NULL;
  size_t capacity = 0;
  int lines = 0;
  while (getline(&line, &capacity, in) > 0) lines++;
  free(line);
  fclose(in);
  failures += check(lines == 2, "getline");

  char* stream_buffer = NULL;
  size_t stream_size = 0;
  FILE* out = open_memstream(&stream_buffer, &stream_size);
  for (int i = 0; i < 1000; i++) fprintf(out, "%d,", i);
  fclose(out);
  failures += check(stream_size > 3000 && strncmp(stream_buffer, "0,1,2,", 6) == 0,
                    "open_memstream");
  free(stream_buffer);

  char* formatted = NULL;
  failures += check(asprintf(&formatted, "%s-%d", "asprintf", 42) > 0 &&
                        strcmp(formatted, "asprintf-42") == 0,
                    "asprintf");
  free(formatted);

  FILE* self = fopen("/proc/self/maps", "r");
  int has_hakmem = 0;
  char buffer[512];
  while (self && fgets(buffer, sizeof buffer, self)) has_hakmem |= strstr(buffer, "libhakmem") != NULL;
  if (self) fclose(self);
  failures += check(has_hakmem, "libhakmem.so is loaded");
  return failures ? 1 : 0;
}
