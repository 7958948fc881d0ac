#include "hakmem/pool/mid_cache.h"

#include "hakmem/config.h"

void hak_mid_cache_setup(hak_mid_cache_t* cache, size_t block_size) {
  *cache = (hak_mid_cache_t){0};
  if (block_size == 0) return;
  cache->limit = (uint32_t)((size_t)hak_config.mid_cache_kb * 1024 / block_size);
  cache->block_size = (uint32_t)block_size;
  cache->block_magic = hak_block_magic(block_size);
  cache->capacity_limit = hak_block_limit(block_size, (unsigned)hak_medium_slab_capacity(block_size));
}

hak_block_t* hak_mid_cache_cut(hak_mid_cache_t* cache, unsigned cls, uint32_t keep) {
  if (cache->count <= keep) return NULL;
  hak_block_t* rest = cache->head;
  if (keep == 0) {
    cache->head = NULL;
  } else {
    hak_block_t* last_kept = cache->head;
    for (uint32_t i = 1; i < keep; i++) last_kept = hak_mid_cache_link(last_kept, cls);
    rest = hak_mid_cache_link(last_kept, cls);
    hak_block_set_next(last_kept, NULL);
  }
  cache->count = keep;
  return rest;
}
