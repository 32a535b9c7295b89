/* The thread that holds the allocator's locks across a fork (internal.h, hk__fork_holder). */
#include "common/internal.h"

_Atomic uintptr_t hk__fork_holder;
