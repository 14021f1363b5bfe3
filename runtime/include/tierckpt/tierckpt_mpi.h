/* tierckpt: the parts of the C API that take MPI types. */
#ifndef TIERCKPT_TIERCKPT_MPI_H
#define TIERCKPT_TIERCKPT_MPI_H

#include <mpi.h>

#include "tierckpt/tierckpt.h"

#ifdef __cplusplus
extern "C" {
#endif

/* tierckpt_open on a communicator of the application's (duplicated
 * inside). */
tierckpt_status_t tierckpt_open_comm(MPI_Comm comm, const tierckpt_options_t *opts, tierckpt_t **ckpt);

#ifdef __cplusplus
}
#endif

#endif /* TIERCKPT_TIERCKPT_MPI_H */
