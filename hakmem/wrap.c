#include "hakmem/wrap.h"

#include <dlfcn.h>
#include <pthread.h>

#include "hakmem/config.h"
#include "hakmem/size_class.h"

typedef struct next_allocator_s {
  void* (*malloc)(size_t);
  void* (*calloc)(size_t, size_t);
  void* (*memalign)(size_t, size_t);
  void* (*realloc)(void*, size_t);
  void (*free)(void*);
  size_t (*usable_size)(void*);
} next_allocator_t;

static next_allocator_t next;
// pthread_once: glibc restarts it in the child of a fork that caught another thread resolving.
static pthread_once_t resolve_once = PTHREAD_ONCE_INIT;
static HAK_TLS int resolving_here;    // this thread is inside dlsym

static void resolve_next(void) {
  resolving_here = 1;
  next_allocator_t found;
  found.malloc = (void* (*)(size_t))dlsym(RTLD_NEXT, "malloc");
  found.calloc = (void* (*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
  found.memalign = (void* (*)(size_t, size_t))dlsym(RTLD_NEXT, "memalign");
  found.realloc = (void* (*)(void*, size_t))dlsym(RTLD_NEXT, "realloc");
  found.free = (void (*)(void*))dlsym(RTLD_NEXT, "free");
  found.usable_size = (size_t(*)(void*))dlsym(RTLD_NEXT, "malloc_usable_size");
  resolving_here = 0;
  if (!found.malloc || !found.calloc || !found.memalign || !found.realloc || !found.free ||
      !found.usable_size) {
    hak_fatal("HAKMEM_WRAP_* needs the next allocator", NULL, "dlsym(RTLD_NEXT) found no malloc");
  }
  next = found;
}

static void resolve(void) { pthread_once(&resolve_once, resolve_next); }

int hak_wrap_active(void) {
  return !hak_config.wrap_tiny || !hak_config.wrap_mid || !hak_config.wrap_large ||
         !hak_config.wrap_huge;
}

int hak_wrap_routes(size_t n) {
  int routed = n <= HAK_TINY_MAX                                  ? !hak_config.wrap_tiny
               : n <= HAK_MID_MAX                                 ? !hak_config.wrap_mid
               : n <= (size_t)hak_config.large_max_kb * HAK_KiB ? !hak_config.wrap_large
                                                                  : !hak_config.wrap_huge;
  return routed && !resolving_here;
}

void* hak_wrap_malloc(size_t n) {
  resolve();
  return next.malloc(n);
}

void* hak_wrap_calloc(size_t count, size_t size) {
  resolve();
  return next.calloc(count, size);
}

void* hak_wrap_memalign(size_t alignment, size_t n) {
  resolve();
  return next.memalign(alignment, n);
}

void* hak_wrap_realloc(void* p, size_t n) {
  resolve();
  return next.realloc(p, n);
}

void hak_wrap_free(void* p) {
  resolve();
  next.free(p);
}

size_t hak_wrap_usable_size(void* p) {
  resolve();
  return next.usable_size(p);
}
