/* A ramc_model over a CLIP and an adapter that someone else owns: the
 * trainer evaluates its live and EMA adapters through the public prediction
 * path without building the API's objects by hand (api.h stays private to
 * api/). */
#ifndef RAMC_API_MODEL_VIEW_H
#define RAMC_API_MODEL_VIEW_H

#include "model/clip.h"
#include "ram/ram.h"

/* clip (and adapter, may be NULL) must outlive the view; their weights may
 * change between calls (label sets encoded before a change keep the old
 * features). ramc_model_free frees the view only. threads as
 * ramc_clip_params.threads. */
ramc_status api_model_view(ramc_clip *clip, ram_adapter *adapter, int threads, ramc_model **out);

#endif
