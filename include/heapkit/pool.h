/* heapkit/pool.h: filled in by its own issue; kept so heapkit.h always compiles. */
#ifndef HEAPKIT_POOL_H
#define HEAPKIT_POOL_H
#include "common.h"
#endif
