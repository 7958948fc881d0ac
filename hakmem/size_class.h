// size_class: maps a request size to a block size class by table lookup (no division).
//
// Owns: the class tables. May use: base. Safe from any thread at any time: the tables change only
// when the extra class is placed, once, a byte at a time (a reader sees the old class or the new
// one, both of which hold its request).
//
// Regular classes: 16-byte steps from 16 to 256, then 8 classes per doubling up to 64 KiB. Every
// block size is a multiple of 16 (alignment; and a free block has room for its link and the
// free mark, slab.h), and the waste is bounded:
//   block_size(class_of(n)) - n  <=  max(15, n / 8)        for 1 <= n <= HAK_MID_MAX
// Classes [0, HAK_TINY_CLASSES) live in small (64 KiB) slabs, the rest in medium (1 MiB) slabs.
// One more mid class, HAK_EXTRA_CLASS, has no size until the adaptive cache engine places it
// (hak_size_class_place_extra) where one request size dominates: requests between the regular
// class below and the extra size then get blocks of exactly that size.
#ifndef HAKMEM_SIZE_CLASS_H
#define HAKMEM_SIZE_CLASS_H

#include <stddef.h>
#include <stdint.h>

#include "hakmem/base.h"

HAK_EXTERN_C_BEGIN

#define HAK_TINY_MAX ((size_t)1024)
#define HAK_MID_MAX ((size_t)64 * 1024)
#define HAK_TINY_CLASSES 32
#define HAK_REGULAR_CLASSES 80
#define HAK_EXTRA_CLASS HAK_REGULAR_CLASSES
#define HAK_CLASS_COUNT (HAK_REGULAR_CLASSES + 1)
// Requests up to HAK_TINY_MAX are looked up by (n + 15) / 16.
#define HAK_TINY_INDEXES (HAK_TINY_MAX / 16 + 1)

// Requests above HAK_TINY_MAX are looked up by (n - 1) >> HAK_MID_INDEX_SHIFT.
#define HAK_MID_INDEX_SHIFT 7
#define HAK_MID_INDEXES (HAK_MID_MAX >> HAK_MID_INDEX_SHIFT)

extern uint32_t hak_class_block_size[HAK_CLASS_COUNT];  // the extra class: 0 until placed
extern const uint8_t hak_tiny_class_of_index[HAK_TINY_INDEXES];
extern uint8_t hak_mid_class_of_index[HAK_MID_INDEXES];

HAK_INLINE size_t hak_tiny_index(size_t n) { return (n + 15) >> 4; }

// REQUIRES: HAK_TINY_MAX < n <= HAK_MID_MAX. A table lookup: three instructions where the
// arithmetic on the leading-zero count took nine.
HAK_INLINE unsigned hak_mid_class(size_t n) {
  return __atomic_load_n(&hak_mid_class_of_index[(n - 1) >> HAK_MID_INDEX_SHIFT], __ATOMIC_RELAXED);
}

// REQUIRES: n <= HAK_MID_MAX.
HAK_INLINE unsigned hak_size_class(size_t n) {
  if (n <= HAK_TINY_MAX) return hak_tiny_class_of_index[hak_tiny_index(n)];
  return hak_mid_class(n);
}

HAK_INLINE size_t hak_class_size(unsigned cls) {
  return __atomic_load_n(&hak_class_block_size[cls], __ATOMIC_RELAXED);
}

// Whether hak_size_class_place_extra would accept `block_size`: a multiple of 128 (the mid lookup's
// step) above HAK_TINY_MAX, up to HAK_MID_MAX, that no regular class has.
int hak_size_class_extra_fits(size_t block_size);

// Gives the extra class `block_size` and sends the requests it fits better than their regular
// class to it. Once per process; returns 0 (and changes nothing) if it was placed already or
// the size does not fit. The caller publishes whatever depends on the size first (heap does).
int hak_size_class_place_extra(size_t block_size);

HAK_EXTERN_C_END

#endif  // HAKMEM_SIZE_CLASS_H
