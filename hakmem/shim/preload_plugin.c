// A library loaded with dlopen by preload_client: it allocates in its constructor and hands a
// block to its caller, who frees it.
#include <stdlib.h>
#include <string.h>

static char* kept;

__attribute__((constructor)) static void plugin_init(void) { kept = strdup("plugin state"); }

__attribute__((destructor)) static void plugin_fini(void) { free(kept); }

__attribute__((visibility("default"))) char* plugin_greeting(void) {
  return strdup("hello from the plugin");
}
