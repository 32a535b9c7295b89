/* OS layer selector: the one place that picks the platform implementation of os.h. */
#include "os/os.h"

#if defined(__linux__)
#include "os/os_linux.inc"
#else
#error "heapkit: no OS layer for this platform yet (a Windows VirtualAlloc backend is planned)"
#endif
