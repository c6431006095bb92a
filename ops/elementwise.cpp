// Elementwise ops: shape checks, device dispatch and backward nodes. Kernels: ops/cpu/elementwise.h.
#include "ops/elementwise.h"
