/*
 * topo: the machine as hwloc sees it, loaded once per process: the processing units
 * this process may run on, and how far apart two of them are (0: same PU; larger: the
 * smallest shared cache or node is further up). Without a usable topology (hwloc fails,
 * a VM that reports nothing) it falls back to the online CPUs, all equally far.
 */
#ifndef WEFT_TOPO_H
#define WEFT_TOPO_H

unsigned topo_pus(void);                  /* >= 1 */
unsigned topo_distance(unsigned a, unsigned b);
int topo_pin_self(unsigned pu);           /* bind the calling thread to PU index pu */
int topo_can_pin(void);

#endif
