/* The planner keeps no global state: concurrent calls on different problems (and on the same
 * input array) give the same answers as sequential ones. Run under TSan too. */
#include <heapkit.h>
#include <pthread.h>
#include <stdlib.h>

#include "check.h"
#include "gen.h"

#define NT 4
#define NB 300

static hk_plan_buffer shared_in[NB];

typedef struct job { uint64_t seed; uint64_t peak; uint64_t off[NB]; int rc, valid; } job;

static void *work(void *arg) {
  job *j = arg;
  hk_plan_buffer own[NB];
  hkgen_perfect(own, NULL, 60, 240, 60000, 1, j->seed);
  hk_plan_options o;
  hk_plan_options_init(&o);
  o.time_limit = 5;
  hk_plan_result r;
  j->rc = hk_plan(own, 60, &o, j->off, &r);
  j->valid = hk_plan_validate(own, 60, j->off, 0, 0, NULL, 0) == HK_OK && r.peak == r.lower_bound;
  /* everyone also plans the same shared (read-only) input with the heuristics */
  o.method = HK_PLAN_HEURISTICS;
  j->rc |= hk_plan(shared_in, NB, &o, j->off, &r);
  j->valid &= hk_plan_validate(shared_in, NB, j->off, 0, 0, NULL, 0) == HK_OK;
  j->peak = r.peak;
  return NULL;
}

int main(void) {
  hkgen_model(shared_in, NB, 3);
  static job jobs[NT];
  pthread_t th[NT];
  for (int i = 0; i < NT; i++) {
    jobs[i].seed = (uint64_t)i + 1;
    CHECK(pthread_create(&th[i], NULL, work, &jobs[i]) == 0);
  }
  for (int i = 0; i < NT; i++) pthread_join(th[i], NULL);
  for (int i = 0; i < NT; i++) {
    CHECK(jobs[i].rc == HK_OK && jobs[i].valid);
    CHECK(jobs[i].peak == jobs[0].peak); /* the heuristics are deterministic */
  }
  TEST_DONE("test_plan_threads");
}
