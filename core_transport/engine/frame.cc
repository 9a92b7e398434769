// The frame helpers are header-only (they sit on the per-frame hot path);
// this file keeps one translation unit per wire message in the build.
#include "core_transport/engine/frame.h"
