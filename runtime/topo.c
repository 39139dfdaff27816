/*
 * topo.c: hwloc-backed topology (see topo.h). Loaded once (pthread_once), read-only
 * afterwards, so every thread may query it without locks.
 */
#define _GNU_SOURCE
#include "topo.h"

#include <hwloc.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include "alloc.h"

static pthread_once_t topo_once = PTHREAD_ONCE_INIT;
static hwloc_topology_t topology;
static unsigned npus = 1;
static hwloc_obj_t *pus;   /* allowed PUs in logical order; NULL in the fallback */
static int max_depth;

static void topo_load(void)
{
    if (hwloc_topology_init(&topology) == 0 && hwloc_topology_load(topology) == 0) {
        hwloc_const_cpuset_t allowed = hwloc_topology_get_allowed_cpuset(topology);
        int total = hwloc_get_nbobjs_by_type(topology, HWLOC_OBJ_PU);
        if (total > 0 && (pus = mem_alloc(sizeof(hwloc_obj_t) * (size_t)total))) {
            unsigned n = 0;
            for (int i = 0; i < total; i++) {
                hwloc_obj_t pu = hwloc_get_obj_by_type(topology, HWLOC_OBJ_PU, (unsigned)i);
                if (pu && hwloc_bitmap_isset(allowed, pu->os_index)) pus[n++] = pu;
            }
            if (n) {
                npus = n;
                max_depth = hwloc_topology_get_depth(topology);
                return;
            }
            mem_free(pus, sizeof(hwloc_obj_t) * (size_t)total);
            pus = NULL;
        }
        hwloc_topology_destroy(topology);
    }
    topology = NULL;
    cpu_set_t set;
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        npus = (unsigned)CPU_COUNT(&set);
    else if (online > 0)
        npus = (unsigned)online;
}

unsigned topo_pus(void)
{
    pthread_once(&topo_once, topo_load);
    return npus;
}

int topo_can_pin(void)
{
    pthread_once(&topo_once, topo_load);
    return pus != NULL;
}

unsigned topo_distance(unsigned a, unsigned b)
{
    pthread_once(&topo_once, topo_load);
    if (!pus) return a == b ? 0 : 1;
    a %= npus;
    b %= npus;
    if (a == b) return 0;
    hwloc_obj_t common = hwloc_get_common_ancestor_obj(topology, pus[a], pus[b]);
    return (unsigned)(max_depth - (common ? common->depth : 0));
}

int topo_pin_self(unsigned pu)
{
    pthread_once(&topo_once, topo_load);
    if (!pus) return -1;
    return hwloc_set_cpubind(topology, pus[pu % npus]->cpuset, HWLOC_CPUBIND_THREAD);
}
