// A getenv that counts its calls, for release_hygiene_test: preloaded after libhakmem.so, it is
// the definition hakmem's own getenv calls bind to.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <stddef.h>

static unsigned long calls;

__attribute__((visibility("default"))) unsigned long getenv_counter_calls(void) {
  return __atomic_load_n(&calls, __ATOMIC_RELAXED);
}

__attribute__((visibility("default"))) char* getenv(const char* name) {
  __atomic_fetch_add(&calls, 1, __ATOMIC_RELAXED);
  static char* (*real)(const char*);
  if (real == NULL) real = (char* (*)(const char*))dlsym(RTLD_NEXT, "getenv");
  return real ? real(name) : NULL;
}
