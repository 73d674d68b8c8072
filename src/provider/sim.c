/* Simulated phase durations (see sim.h). */
#include "provider/sim.h"

static const int64_t ranges_ms[FO_PHASE_COUNT][2] = {
    [FO_PHASE_DETECTION] = {200, 950},      [FO_PHASE_STANDBY_ACTIVATION] = {500, 2000},
    [FO_PHASE_GPU_SEARCH] = {2000, 5000},   [FO_PHASE_PROVISIONING] = {30000, 60000},
    [FO_PHASE_SSH_READY] = {30000, 120000}, [FO_PHASE_RESTORE] = {10000, 30000},
    [FO_PHASE_INFERENCE] = {5000, 15000},
};

void sim_rng_seed(sim_rng *rng, uint64_t seed)
{
    /* splitmix64 of the seed, so that 0 and small seeds give a good state */
    uint64_t z = seed + 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    rng->state = z ? z : 1;
}

uint64_t sim_rng_next(sim_rng *rng)
{
    uint64_t x = rng->state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng->state = x;
    return x * 0x2545f4914f6cdd1dULL;
}

void sim_phase_range_ms(fo_phase p, int64_t *ret_lo, int64_t *ret_hi)
{
    if ((unsigned)p >= FO_PHASE_COUNT) {
        *ret_lo = *ret_hi = 0;
        return;
    }
    *ret_lo = ranges_ms[p][0];
    *ret_hi = ranges_ms[p][1];
}

int64_t sim_phase_duration_ms(sim_rng *rng, fo_phase p)
{
    int64_t lo, hi;
    sim_phase_range_ms(p, &lo, &hi);
    uint64_t span = (uint64_t)(hi - lo) + 1;
    return lo + (int64_t)(sim_rng_next(rng) % span);
}
