/* heapkit/gc.h: filled in by its own issue; kept so heapkit.h always compiles. */
#ifndef HEAPKIT_GC_H
#define HEAPKIT_GC_H
#include "common.h"
#endif
