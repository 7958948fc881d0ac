#include <errno.h>

#include "hakmem/heap.h"
#include "hakmem/init.h"
#include "hakmem/tiny/tiny.h"
#include "hakmem/wrap.h"

void* hak_tiny_alloc_slow(size_t n) {
  hak_heap_t* heap = hak_thread_heap();
  if (heap == NULL) goto out_of_memory;
  uint32_t calls = hak_heap_slow_path_enter(heap);
  // A routed range never gets a current slab: all its requests come here.
  if (HAK_UNLIKELY(hak_wrap_routes(n))) return hak_wrap_malloc(n);
  unsigned cls = hak_tiny_class_of_index[hak_tiny_index(n)];
  hak_slab_t* s = heap->current[cls];
  if (s->free == NULL) {
    s = hak_heap_refill(heap, cls, calls);
    if (s == NULL) goto out_of_memory;
  }
  return hak_heap_pop(s);
out_of_memory:
  errno = ENOMEM;
  return NULL;
}
