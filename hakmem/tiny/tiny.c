#include "hakmem/heap.h"
#include "hakmem/init.h"
#include "hakmem/tiny/tiny.h"
#include "hakmem/wrap.h"

void* hak_tiny_alloc_slow(size_t n) {
  uint32_t calls;
  hak_heap_t* heap = hak_slow_path_heap(&calls);
  if (heap == NULL) return NULL;
  // A routed range never gets a current slab: all its requests come here.
  if (HAK_UNLIKELY(hak_wrap_routes(n))) return hak_wrap_malloc(n);
  return hak_heap_alloc_from_slabs(heap, hak_tiny_class_of_index[hak_tiny_index(n)], calls);
}
