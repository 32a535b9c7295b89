/* Messages that never allocate: the allocator reports errors from inside malloc, where stdio could
 * re-enter it or deadlock, so formatting is done here into a stack buffer and written with write(2). */
#include "common/internal.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *put_str(char *o, char *end, const char *s) {
  if (!s) s = "(null)";
  while (*s && o < end) *o++ = *s++;
  return o;
}

static char *put_uint(char *o, char *end, unsigned long long v, unsigned base, int min_digits) {
  char tmp[32];
  int n = 0;
  do {
    tmp[n++] = "0123456789abcdef"[v % base];
    v /= base;
  } while (v);
  while (n < min_digits && n < (int)sizeof tmp) tmp[n++] = '0';
  while (n > 0 && o < end) *o++ = tmp[--n];
  return o;
}

static int vformat(char *buf, size_t size, const char *fmt, va_list ap) {
  if (size == 0) return 0;
  char *o = buf, *end = buf + size - 1;
  for (const char *f = fmt; *f && o < end; f++) {
    if (*f != '%') { *o++ = *f; continue; }
    f++;
    int lng = 0;
    while (*f == 'l' || *f == 'z') { lng = 1; f++; }
    switch (*f) {
    case 's': o = put_str(o, end, va_arg(ap, const char *)); break;
    case 'd': {
      long long v = lng ? va_arg(ap, long) : va_arg(ap, int);
      if (v < 0) { if (o < end) *o++ = '-'; v = -v; }
      o = put_uint(o, end, (unsigned long long)v, 10, 1);
      break;
    }
    case 'u': o = put_uint(o, end, lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned), 10, 1); break;
    case 'x': o = put_uint(o, end, lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned), 16, 1); break;
    case 'p': o = put_str(o, end, "0x"); o = put_uint(o, end, (uintptr_t)va_arg(ap, void *), 16, 1); break;
    case '%': *o++ = '%'; break;
    default: if (o < end) *o++ = '?'; break;
    }
  }
  *o = 0;
  return (int)(o - buf);
}

int hk__snprintf(char *buf, size_t size, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vformat(buf, size, fmt, ap);
  va_end(ap);
  return n;
}

/* write(2) is a cancellation point, and messages are written with locks held (the collector's
 * heap lock: a thread cancelled in a warning there unwound with it, and every thread, its own exit
 * included, then waited for it for ever): the cancellation waits for the caller's next one. */
void hk__write_fd(int fd, const char *s) {
  size_t len = strlen(s);
  int cancel;
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel);
  while (len > 0) {
    ssize_t w = write(fd, s, len);
    if (w <= 0) break;
    s += w;
    len -= (size_t)w;
  }
  pthread_setcancelstate(cancel, NULL);
}

static void vmessage(const char *fmt, va_list ap) {
  char buf[512];
  memcpy(buf, "heapkit: ", 9);
  int n = vformat(buf + 9, sizeof buf - 10, fmt, ap);
  buf[9 + n] = '\n';
  buf[10 + n] = 0;
  hk__write_fd(2, buf);
}

void hk__fatal(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vmessage(fmt, ap);
  va_end(ap);
  abort();
}

void hk__warning(const char *fmt, ...) {
  if (hk__options[HK_OPT_VERBOSE] < 1) return;
  va_list ap;
  va_start(ap, fmt);
  vmessage(fmt, ap);
  va_end(ap);
}

void hk__message(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vmessage(fmt, ap);
  va_end(ap);
}

void hk__trace(const char *fmt, ...) {
  if (hk__options[HK_OPT_VERBOSE] < 2) return;
  va_list ap;
  va_start(ap, fmt);
  vmessage(fmt, ap);
  va_end(ap);
}

void hk__assert_fail(const char *expr, const char *file, int line) {
  hk__fatal("assertion failed: %s (%s:%d)", expr, file, line);
}

const char *hk_strerror(int code) {
  switch (code) {
  case HK_OK: return "success";
  case HK_ENOMEM: return "out of memory (the OS refused, or a budget or heap limit was reached)";
  case HK_EINVAL: return "invalid argument";
  case HK_EOVERFLOW: return "size overflow";
  case HK_EPERM: return "protection change refused";
  case HK_EBUSY: return "object busy";
  default: return "unknown heapkit error";
  }
}
