#include "pivot_status.h"

const char *pivot_status_string(int status) {
    switch (status) {
    case PIVOT_OK: return "ok";
    case PIVOT_ERR_NOMEM: return "out of memory";
    case PIVOT_ERR_VALUE: return "invalid argument value";
    case PIVOT_ERR_SHAPE: return "sizes do not agree";
    case PIVOT_ERR_OVERFLOW: return "size product overflows";
    case PIVOT_ERR_INTERNAL: return "internal error";
    default: return "unknown status";
    }
}
