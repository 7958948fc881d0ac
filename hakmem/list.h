// list: the allocator's one intrusive doubly linked list, for any struct with `next` and `prev`
// pointers to its own type (a heap's slabs, a heap's segments and the global segment lists, the
// heap registry).
//
// Owns: nothing but these macros. May use: nothing. A head is written with a relaxed atomic
// store (the same single mov as a plain one) because some heads are peeked at without their
// lock (hak_segment_adopt).
#ifndef HAKMEM_LIST_H
#define HAKMEM_LIST_H

// Puts `item` first in the list whose first element is *head, linked through its fields `next`
// and `prev` (a struct on two lists has a pair for each).
#define HAK_LIST_PUSH_LINKED(head, item, next, prev)            \
  do {                                                          \
    __typeof__(item) list_item_ = (item);                       \
    list_item_->prev = NULL;                                    \
    list_item_->next = *(head);                                 \
    if (list_item_->next) list_item_->next->prev = list_item_;  \
    __atomic_store_n((head), list_item_, __ATOMIC_RELAXED);     \
  } while (0)

// Takes `item` out of the list whose first element is *head, linked through `next` and `prev`.
#define HAK_LIST_REMOVE_LINKED(head, item, next, prev)                   \
  do {                                                                   \
    __typeof__(item) list_item_ = (item);                                \
    if (list_item_->prev) list_item_->prev->next = list_item_->next;     \
    else __atomic_store_n((head), list_item_->next, __ATOMIC_RELAXED);   \
    if (list_item_->next) list_item_->next->prev = list_item_->prev;     \
    list_item_->next = list_item_->prev = NULL;                          \
  } while (0)

#define HAK_LIST_PUSH(head, item) HAK_LIST_PUSH_LINKED(head, item, next, prev)
#define HAK_LIST_REMOVE(head, item) HAK_LIST_REMOVE_LINKED(head, item, next, prev)

#endif  // HAKMEM_LIST_H
