/* heapkit: a layered memory-management library.
 *
 * This is the one public header. It pulls in one header per client:
 *   heapkit/common.h  error codes, options, statistics shared by every client
 *   heapkit/malloc.h  the general allocator (hk_malloc ... ) and first-class heaps
 *   heapkit/arena.h   arenas, regions, scratch arenas
 *   heapkit/pool.h    fixed-size pools
 *   heapkit/gc.h      the garbage collector for language runtimes
 *   heapkit/plan.h    the static memory planner
 */
#ifndef HEAPKIT_H
#define HEAPKIT_H

#include "heapkit/common.h"
#include "heapkit/malloc.h"
#include "heapkit/arena.h"
#include "heapkit/pool.h"
#include "heapkit/gc.h"
#include "heapkit/plan.h"

#endif
