/* heapkit/arena.h: filled in by its own issue; kept so heapkit.h always compiles. */
#ifndef HEAPKIT_ARENA_H
#define HEAPKIT_ARENA_H
#include "common.h"
#endif
