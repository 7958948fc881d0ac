#include "hakmem/slab.h"

#include <stdio.h>
#include <string.h>

#include "hakmem/os/os.h"
#include "hakmem/size_class.h"

size_t hak_medium_slab_capacity(size_t block_size) {
  return hak_segment_slab_usable(HAK_MEDIUM_SLAB_SHIFT, 1) / block_size;
}

int hak_slab_header_valid(const hak_segment_t* segment, const hak_slab_t* slab, unsigned index) {
  unsigned cls = slab->class_idx;
  return cls < HAK_CLASS_COUNT && (cls < HAK_TINY_CLASSES) == (segment->kind == HAK_KIND_SMALL) &&
         slab->block_size == hak_class_size(cls) && slab->index == index &&
         slab->slab_shift == segment->slab_shift &&
         slab->capacity == hak_segment_slab_usable(segment->slab_shift, index) / slab->block_size &&
         slab->carved <= slab->capacity && slab->block_magic == hak_block_magic(slab->block_size) &&
         slab->block_magic_shared == slab->block_magic &&
         slab->carved_limit == hak_block_limit(slab->block_size, slab->carved);
}

hak_slab_t* hak_slab_init(hak_segment_t* segment, unsigned index, unsigned cls, size_t block_size) {
  hak_slab_t* slab = hak_slab_at(segment, index);
  memset(slab, 0, sizeof *slab);
  slab->block_size = (uint32_t)block_size;
  slab->block_magic = hak_block_magic(block_size);
  slab->block_magic_shared = slab->block_magic;
  slab->capacity = (uint16_t)(hak_segment_slab_usable(segment->slab_shift, index) / block_size);
  slab->class_idx = (uint8_t)cls;
  slab->index = (uint8_t)index;
  slab->slab_shift = segment->slab_shift;
  if (slab->slab_shift == HAK_MEDIUM_SLAB_SHIFT) hak_medium_class_set(hak_slab_start(slab), cls);
  HAK_POISON(hak_slab_start(slab), hak_segment_slab_usable(segment->slab_shift, index));
  return slab;
}

// Blocks are linked in address order, but in secure builds in a random order within each chunk
// of SHUFFLE_CHUNK, so that which block the next malloc returns cannot be predicted.
#define SHUFFLE_CHUNK 64

#if HAKMEM_SECURE
uintptr_t hak_block_keys[2];
static HAK_TLS uint64_t shuffle_state;

static uint64_t next_random(void) {
  uint64_t x = shuffle_state ? shuffle_state : hak_block_keys[1] ^ (uint64_t)hak_thread_id();
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return shuffle_state = x;
}

// A random permutation of 0 .. count - 1 (Fisher-Yates).
static void shuffled(uint16_t* order, unsigned count) {
  for (unsigned i = 0; i < count; i++) order[i] = (uint16_t)i;
  for (unsigned i = count; i > 1; i--) {
    unsigned j = (unsigned)(next_random() % i);
    uint16_t t = order[i - 1];
    order[i - 1] = order[j];
    order[j] = t;
  }
}
#endif

void hak_block_corrupted(const hak_block_t* b) {
  hak_fatal("corrupted free list", b, "a freed block was written to (use after free?)");
}

unsigned hak_slab_carve(hak_slab_t* slab, unsigned max_blocks) {
  HAK_ASSERT(slab->free == NULL);
  unsigned n = slab->capacity - slab->carved;
  if (n > max_blocks) n = max_blocks;
  if (n == 0) return 0;
  uint8_t* start = hak_slab_start(slab) + (size_t)slab->carved * slab->block_size;
  size_t size = slab->block_size;
#if HAKMEM_SECURE
  uint16_t order[SHUFFLE_CHUNK];
#endif
  hak_block_t* first = NULL;
  hak_block_t* last = NULL;
  for (unsigned chunk = 0; chunk < n; chunk += SHUFFLE_CHUNK) {
    unsigned count = n - chunk < SHUFFLE_CHUNK ? n - chunk : SHUFFLE_CHUNK;
#if HAKMEM_SECURE
    shuffled(order, count);
#endif
    for (unsigned i = 0; i < count; i++) {
#if HAKMEM_SECURE
      unsigned k = order[i];
#else
      unsigned k = i;
#endif
      hak_block_t* b = (hak_block_t*)(start + (size_t)(chunk + k) * size);
      HAK_UNPOISON(b, sizeof(hak_block_t));  // a free block's link and mark stay addressable
      hak_block_mark_free(b, slab->slab_shift);
      if (last) hak_block_set_next(last, b);
      else first = b;
      last = b;
    }
  }
  hak_block_set_next(last, NULL);
  // Read by other threads validating a remote free (hak_slab_is_block): store atomically. In
  // this order, a fork that stops this thread half-way leaves blocks carved but on no list (lost
  // to the child), never blocks on a list that validation says were not carved.
  __atomic_store_n(&slab->carved, (uint16_t)(slab->carved + n), __ATOMIC_RELAXED);
  slab->carved_limit = hak_block_limit(size, slab->carved);
  slab->used += n;
  __atomic_store_n(&slab->free, first, __ATOMIC_RELEASE);
  return n;
}

// The list moves between the two heads in an order that a fork stopping this thread half-way
// (fork child, heap.c) sees as blocks on neither list, lost to the child, never on both: the
// release stores keep the compiler and the CPU from reordering the steps.
int hak_slab_take_local(hak_slab_t* slab) {
  HAK_ASSERT(slab->free == NULL);
  hak_block_t* list = slab->local_free;
  if (list == NULL) return 0;
  __atomic_store_n(&slab->local_free, NULL, __ATOMIC_RELEASE);
  __atomic_store_n(&slab->free, list, __ATOMIC_RELEASE);
  slab->used = slab->carved;
  return 1;
}

// The last block of `list`, a remote list of n blocks of slab (secure builds check every link).
static hak_block_t* list_tail(const hak_slab_t* slab, hak_block_t* list, unsigned n) {
  hak_block_t* tail = list;
  for (unsigned seen = 1;; seen++) {
    hak_block_t* next = hak_block_next(tail);
    if (next == NULL) {
      HAK_CHECK(seen == n, "corrupted remote free list", tail, "fewer blocks than were pushed");
      return tail;
    }
    if (HAKMEM_SECURE && !hak_block_link_ok(tail, next, slab->slab_shift)) hak_block_corrupted(tail);
    HAK_CHECK(seen < n, "double free or corrupted free list", next, "more blocks than it holds");
    tail = next;
  }
}

unsigned hak_slab_collect_remote(hak_slab_t* slab) {
  if (__atomic_load_n(&slab->remote, __ATOMIC_RELAXED) == 0) return 0;
  uintptr_t word = __atomic_exchange_n(&slab->remote, 0, __ATOMIC_ACQUIRE);
  hak_block_t* list = hak_slab_remote_head(word);
  unsigned n = hak_slab_remote_count(word);
  if (list == NULL) return 0;
  HAK_CHECK(n <= slab->used, "double free or corrupted remote free list", list,
            "more blocks freed than allocated");
  // Onto an empty local_free the list goes as it is; in front of a non-empty one it is walked
  // for its tail. (Put behind local_free, after walking whichever list was shorter, it made
  // larson at 8 and 16 threads 10% slower.)
  if (slab->local_free != NULL || HAKMEM_SECURE) {
    hak_block_set_next(list_tail(slab, list, n), slab->local_free);
  }
  slab->local_free = list;
  slab->used -= n;
  return n;
}

void hak_slab_unload_free(hak_slab_t* slab) {
  hak_block_t* list = slab->free;
  if (list == NULL) return;
  unsigned n = 1;
  hak_block_t* tail = list;
  hak_block_t* next;
  while ((next = hak_block_next(tail)) != NULL) {
    if (HAKMEM_SECURE && !hak_block_link_ok(tail, next, slab->slab_shift)) hak_block_corrupted(tail);
    tail = next;
    HAK_CHECK(++n <= slab->capacity, "corrupted free list", tail, "list longer than its slab");
  }
  __atomic_store_n(&slab->free, NULL, __ATOMIC_RELEASE);  // first: see hak_slab_take_local
  hak_block_set_next(tail, slab->local_free);
  __atomic_store_n(&slab->local_free, list, __ATOMIC_RELEASE);
  slab->used -= n;
}

void hak_slab_free_remote_list(hak_slab_t* slab, hak_block_t* head, hak_block_t* tail,
                               unsigned count) {
  uintptr_t old = __atomic_load_n(&slab->remote, __ATOMIC_RELAXED);
  uintptr_t word;
  do {
    hak_block_set_next(tail, hak_slab_remote_head(old));
    uintptr_t total = (uintptr_t)(hak_slab_remote_count(old) + count);
    word = (uintptr_t)head | total << HAK_REMOTE_COUNT_SHIFT;
  } while (!__atomic_compare_exchange_n(&slab->remote, &old, word, 1, __ATOMIC_RELEASE,
                                        __ATOMIC_RELAXED));
}

void hak_slab_free_remote(hak_slab_t* slab, void* p) {
  hak_block_t* block = (hak_block_t*)p;
  hak_block_mark_free(block, slab->slab_shift);
  hak_slab_free_remote_list(slab, block, block, 1);
}

void hak_slab_check_empty(const hak_slab_t* slab) {
  unsigned n = 0;
  for (const hak_block_t* b = slab->local_free; b != NULL; b = hak_block_next(b)) {
    HAK_CHECK(++n <= slab->carved, "double free detected", b, "a block was freed twice");
    HAK_ASSERT_EXPENSIVE(hak_slab_is_block(slab, b));
  }
  HAK_CHECK(n == slab->carved, "double free detected", slab->local_free,
            "a block was freed twice");
}

void hak_slab_mark_unused(hak_slab_t* slab) {
  slab->class_idx = HAK_SLAB_UNUSED_CLASS;
  slab->carved_limit = 0;
  if (slab->slab_shift == HAK_MEDIUM_SLAB_SHIFT) hak_medium_class_set(hak_slab_start(slab), 0);
}

void hak_slab_reject_free(const void* p, unsigned slab_shift) {
  hak_slab_invalid_block(hak_slab_of_shift(p, slab_shift), p, "free");
}

void hak_slab_invalid_block(const hak_slab_t* slab, const void* p, const char* op) {
  char detail[192];
  const char* what = "invalid pointer";
  uintptr_t offset = (uintptr_t)p - (uintptr_t)hak_slab_start(slab);
  unsigned size = slab->block_size;
  if (slab->class_idx == HAK_SLAB_UNUSED_CLASS || size == 0) {
    snprintf(detail, sizeof detail, "%s() of an address in a slab that holds no blocks (freed "
             "with its slab already?)", op);
  } else if (offset / size >= slab->capacity) {
    snprintf(detail, sizeof detail, "%s() of an address past the last %u-byte block of its slab",
             op, size);
  } else if (offset % size != 0) {
    what = "interior pointer";
    size_t into = offset % size;
    snprintf(detail, sizeof detail, "%s() of an address %zu byte%s into the %u-byte block at %p",
             op, into, into == 1 ? "" : "s", size, (const void*)((uintptr_t)p - into));
  } else if (offset / size >= __atomic_load_n(&slab->carved, __ATOMIC_RELAXED)) {
    what = "block never allocated";
    snprintf(detail, sizeof detail, "%s() of a %u-byte block that was never handed out", op, size);
  } else {
    what = strcmp(op, "free") == 0 ? "double free" : "freed block";
    snprintf(detail, sizeof detail, "%s() of a %u-byte block that is free already (freed before, "
             "or carved and never handed out)", op, size);
  }
  hak_fatal(what, p, detail);
}
