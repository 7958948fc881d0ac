#include "hakmem/size_class.h"

#define STEP16(a) (a), (a) + 16, (a) + 32, (a) + 48, (a) + 64, (a) + 80, (a) + 96, (a) + 112
#define DOUBLING(base) \
  (base) + (base) / 8, (base) + 2 * (base) / 8, (base) + 3 * (base) / 8, (base) + 4 * (base) / 8, \
  (base) + 5 * (base) / 8, (base) + 6 * (base) / 8, (base) + 7 * (base) / 8, 2 * (base)

uint32_t hak_class_block_size[HAK_CLASS_COUNT] = {
    STEP16(16), STEP16(144),  // 16..256
    DOUBLING(256), DOUBLING(512),  // tiny ends at 1024
    DOUBLING(1024), DOUBLING(2048), DOUBLING(4096), DOUBLING(8192), DOUBLING(16384),
    DOUBLING(32768),
    0,  // HAK_EXTRA_CLASS, until placed
};

// class_of_index[i] = smallest class whose block holds 16 * i bytes.
const uint8_t hak_tiny_class_of_index[HAK_TINY_INDEXES] = {
    0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,  // bytes 0..240
    15, 16, 16, 17, 17, 18, 18, 19, 19, 20, 20, 21, 21, 22, 22, 23,  // bytes 256..496
    23, 24, 24, 24, 24, 25, 25, 25, 25, 26, 26, 26, 26, 27, 27, 27,  // bytes 512..752
    27, 28, 28, 28, 28, 29, 29, 29, 29, 30, 30, 30, 30, 31, 31, 31,  // bytes 768..1008
    31,  // bytes 1024..1024
};

// mid_class_of_index[i] = class of the sizes 128 * i + 1 .. 128 * (i + 1) (all class boundaries
// above 1 KiB are multiples of 128); entries below 8 are tiny sizes and unused.
uint8_t hak_mid_class_of_index[HAK_MID_INDEXES] = {
    0, 0, 0, 0, 0, 0, 0, 0, 32, 33, 34, 35, 36, 37, 38, 39, 40, 40, 41, 41, 42, 42, 43, 43,
    44, 44, 45, 45, 46, 46, 47, 47, 48, 48, 48, 48, 49, 49, 49, 49, 50, 50, 50, 50, 51, 51, 51, 51,
    52, 52, 52, 52, 53, 53, 53, 53, 54, 54, 54, 54, 55, 55, 55, 55, 56, 56, 56, 56, 56, 56, 56, 56,
    57, 57, 57, 57, 57, 57, 57, 57, 58, 58, 58, 58, 58, 58, 58, 58, 59, 59, 59, 59, 59, 59, 59, 59,
    60, 60, 60, 60, 60, 60, 60, 60, 61, 61, 61, 61, 61, 61, 61, 61, 62, 62, 62, 62, 62, 62, 62, 62,
    63, 63, 63, 63, 63, 63, 63, 63, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 65, 66, 66, 66, 66, 66, 66, 66, 66,
    66, 66, 66, 66, 66, 66, 66, 66, 67, 67, 67, 67, 67, 67, 67, 67, 67, 67, 67, 67, 67, 67, 67, 67,
    68, 68, 68, 68, 68, 68, 68, 68, 68, 68, 68, 68, 68, 68, 68, 68, 69, 69, 69, 69, 69, 69, 69, 69,
    69, 69, 69, 69, 69, 69, 69, 69, 70, 70, 70, 70, 70, 70, 70, 70, 70, 70, 70, 70, 70, 70, 70, 70,
    71, 71, 71, 71, 71, 71, 71, 71, 71, 71, 71, 71, 71, 71, 71, 71, 72, 72, 72, 72, 72, 72, 72, 72,
    72, 72, 72, 72, 72, 72, 72, 72, 72, 72, 72, 72, 72, 72, 72, 72, 72, 72, 72, 72, 72, 72, 72, 72,
    73, 73, 73, 73, 73, 73, 73, 73, 73, 73, 73, 73, 73, 73, 73, 73, 73, 73, 73, 73, 73, 73, 73, 73,
    73, 73, 73, 73, 73, 73, 73, 73, 74, 74, 74, 74, 74, 74, 74, 74, 74, 74, 74, 74, 74, 74, 74, 74,
    74, 74, 74, 74, 74, 74, 74, 74, 74, 74, 74, 74, 74, 74, 74, 74, 75, 75, 75, 75, 75, 75, 75, 75,
    75, 75, 75, 75, 75, 75, 75, 75, 75, 75, 75, 75, 75, 75, 75, 75, 75, 75, 75, 75, 75, 75, 75, 75,
    76, 76, 76, 76, 76, 76, 76, 76, 76, 76, 76, 76, 76, 76, 76, 76, 76, 76, 76, 76, 76, 76, 76, 76,
    76, 76, 76, 76, 76, 76, 76, 76, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77,
    77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 78, 78, 78, 78, 78, 78, 78, 78,
    78, 78, 78, 78, 78, 78, 78, 78, 78, 78, 78, 78, 78, 78, 78, 78, 78, 78, 78, 78, 78, 78, 78, 78,
    79, 79, 79, 79, 79, 79, 79, 79, 79, 79, 79, 79, 79, 79, 79, 79, 79, 79, 79, 79, 79, 79, 79, 79,
    79, 79, 79, 79, 79, 79, 79, 79,
};

int hak_size_class_extra_fits(size_t block_size) {
  if (block_size <= HAK_TINY_MAX || block_size > HAK_MID_MAX) return 0;
  if (block_size % ((size_t)1 << HAK_MID_INDEX_SHIFT) != 0) return 0;
  for (unsigned c = HAK_TINY_CLASSES; c < HAK_REGULAR_CLASSES; c++) {
    if (hak_class_block_size[c] == block_size) return 0;
  }
  return 1;
}

int hak_size_class_place_extra(size_t block_size) {
  static int placed;
  if (!hak_size_class_extra_fits(block_size)) return 0;
  if (__atomic_exchange_n(&placed, 1, __ATOMIC_ACQ_REL)) return 0;
  __atomic_store_n(&hak_class_block_size[HAK_EXTRA_CLASS], (uint32_t)block_size, __ATOMIC_RELEASE);
  // Index i holds the sizes 128 i + 1 .. 128 (i + 1): those the extra block holds, and whose
  // regular class is larger, go to the extra class.
  for (size_t i = HAK_TINY_MAX >> HAK_MID_INDEX_SHIFT; i < HAK_MID_INDEXES; i++) {
    size_t largest = (i + 1) << HAK_MID_INDEX_SHIFT;
    if (largest > block_size) break;
    if (hak_class_block_size[hak_mid_class_of_index[i]] > block_size) {
      __atomic_store_n(&hak_mid_class_of_index[i], (uint8_t)HAK_EXTRA_CLASS, __ATOMIC_RELEASE);
    }
  }
  return 1;
}
