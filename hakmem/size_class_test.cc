#include "hakmem/size_class.h"

#include <gtest/gtest.h>

TEST(SizeClass, TableIsSortedAndAligned) {
  for (unsigned c = 1; c < HAK_CLASS_COUNT; c++) {
    EXPECT_LT(hak_class_size(c - 1), hak_class_size(c)) << c;
    EXPECT_EQ(hak_class_size(c) % 16, 0u) << c;
  }
  EXPECT_EQ(hak_class_size(HAK_TINY_CLASSES - 1), HAK_TINY_MAX);
  EXPECT_EQ(hak_class_size(HAK_CLASS_COUNT - 1), HAK_MID_MAX);
}

TEST(SizeClass, EverySizeGetsTheSmallestFittingClassWithBoundedWaste) {
  for (size_t n = 0; n <= HAK_MID_MAX; n++) {
    unsigned c = hak_size_class(n);
    ASSERT_LT(c, (unsigned)HAK_CLASS_COUNT) << n;
    ASSERT_GE(hak_class_size(c), n) << n;
    if (c > 0) {
      ASSERT_LT(hak_class_size(c - 1), n) << "not the smallest class for " << n;
    }
    size_t waste = hak_class_size(c) - n;
    size_t bound = n / 8 > 15 ? n / 8 : 15;
    if (n > 0) {
      ASSERT_LE(waste, bound) << n;
    }
    ASSERT_EQ(c < (unsigned)HAK_TINY_CLASSES, n <= HAK_TINY_MAX) << n;
  }
}
