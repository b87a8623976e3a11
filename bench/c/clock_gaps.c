/* How often, and for how long, a thread that spins on the clock loses its CPU with nothing
 * else running: the gaps a waiter's spin sees (on a virtual machine, mostly the hypervisor
 * pausing the vCPU). bench/README.md ("Round trips") quotes it.
 *
 *   cc -O2 -o /tmp/clock_gaps bench/c/clock_gaps.c && /tmp/clock_gaps [seconds]
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

int main(int argc, char **argv) {
    double secs = argc > 1 ? atof(argv[1]) : 3.0;
    double start = now_us(), last = start, max = 0;
    long over5 = 0, over10 = 0, over25 = 0;
    for (;;) {
        double n = now_us(), d = n - last;
        if (d > 5) over5++;
        if (d > 10) over10++;
        if (d > 25) over25++;
        if (d > max) max = d;
        last = n;
        if (n - start > secs * 1e6) break;
    }
    printf("%.1f s spinning: gaps > 5 us %ld, > 10 us %ld, > 25 us %ld; longest %.1f us\n", secs,
           over5, over10, over25, max);
    return 0;
}
