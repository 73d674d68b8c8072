/* The `sim` provider: creates no resources. Each failover phase's duration is
 * drawn from the seed's typical times and played back faster than real time.
 *
 *   detection 0.2-0.95 s   standby_activation 0.5-2 s   gpu_search 2-5 s
 *   provisioning 30-60 s   ssh_ready 30-120 s           restore 10-30 s
 *   inference 5-15 s
 *
 * S1: draws are uniform in [lo, hi] and reproducible for a given seed
 *     (xorshift64*, no global state): a seed names a whole failover. */
#ifndef DUMONT_PROVIDER_SIM_H
#define DUMONT_PROVIDER_SIM_H

#include "core/failover.h"

#include <stdint.h>

typedef struct {
    uint64_t state;
} sim_rng;

void sim_rng_seed(sim_rng *rng, uint64_t seed);
uint64_t sim_rng_next(sim_rng *rng);
/* The typical range of a phase, in milliseconds. */
void sim_phase_range_ms(fo_phase p, int64_t *ret_lo, int64_t *ret_hi);
/* A duration for phase p, uniform in its range (S1). */
int64_t sim_phase_duration_ms(sim_rng *rng, fo_phase p);

#endif
