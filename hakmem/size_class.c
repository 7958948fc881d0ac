#include "hakmem/size_class.h"

#define STEP16(a) (a), (a) + 16, (a) + 32, (a) + 48, (a) + 64, (a) + 80, (a) + 96, (a) + 112
#define DOUBLING(base) \
  (base) + (base) / 8, (base) + 2 * (base) / 8, (base) + 3 * (base) / 8, (base) + 4 * (base) / 8, \
  (base) + 5 * (base) / 8, (base) + 6 * (base) / 8, (base) + 7 * (base) / 8, 2 * (base)

const uint32_t hak_class_block_size[HAK_CLASS_COUNT] = {
    8,
    STEP16(16), STEP16(144),  // 16..256
    DOUBLING(256), DOUBLING(512),  // tiny ends at 1024
    DOUBLING(1024), DOUBLING(2048), DOUBLING(4096), DOUBLING(8192), DOUBLING(16384),
    DOUBLING(32768),
};

// class_of_index[i] = smallest class whose block holds 8 * i bytes.
const uint8_t hak_tiny_class_of_index[HAK_TINY_INDEXES] = {
    0, 0, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8,  // bytes 0..120
    8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15, 16,  // bytes 128..248
    16, 17, 17, 17, 17, 18, 18, 18, 18, 19, 19, 19, 19, 20, 20, 20,  // bytes 256..376
    20, 21, 21, 21, 21, 22, 22, 22, 22, 23, 23, 23, 23, 24, 24, 24,  // bytes 384..504
    24, 25, 25, 25, 25, 25, 25, 25, 25, 26, 26, 26, 26, 26, 26, 26,  // bytes 512..632
    26, 27, 27, 27, 27, 27, 27, 27, 27, 28, 28, 28, 28, 28, 28, 28,  // bytes 640..760
    28, 29, 29, 29, 29, 29, 29, 29, 29, 30, 30, 30, 30, 30, 30, 30,  // bytes 768..888
    30, 31, 31, 31, 31, 31, 31, 31, 31, 32, 32, 32, 32, 32, 32, 32,  // bytes 896..1016
    32,  // bytes 1024..1024
};
