/* heapkit/plan.h: filled in by its own issue; kept so heapkit.h always compiles. */
#ifndef HEAPKIT_PLAN_H
#define HEAPKIT_PLAN_H
#include "common.h"
#endif
