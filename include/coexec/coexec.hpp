#pragma once
// Umbrella header: includes every public coexec header, and documents coexec's namespaces for
// Doxygen in one place. Each header stays standalone; include only what you use to keep builds
// fast. The generated model headers (predict/models/pocl_*.hpp, nvidia.hpp) come in through
// predict/models/shipped.hpp.
#include "coexec/activation.hpp"
#include "coexec/config.hpp"
#include "coexec/error.hpp"

#include "coexec/runtime/binary_cache.hpp"
#include "coexec/runtime/capabilities.hpp"
#include "coexec/runtime/context.hpp"
#include "coexec/runtime/device.hpp"
#include "coexec/runtime/platform.hpp"

#include "coexec/memory/io_buffer.hpp"
#include "coexec/memory/map_guard.hpp"
#include "coexec/memory/panels.hpp"
#include "coexec/memory/svm_allocator.hpp"
#include "coexec/memory/svm_vector.hpp"

#include "coexec/sync/atomic_word.hpp"
#include "coexec/sync/completion.hpp"
#include "coexec/sync/probe.hpp"
#include "coexec/sync/spin_flag.hpp"
#include "coexec/sync/spin_wait.hpp"

// cpu/cblas_gemm.hpp is left out: it needs <cblas.h>; include it where you link a CBLAS.
#include "coexec/cpu/attention.hpp"
#include "coexec/cpu/conv.hpp"
#include "coexec/cpu/gemm.hpp"
#include "coexec/cpu/thread_pool.hpp"

#include "coexec/gpu/attention.hpp"
#include "coexec/gpu/conv.hpp"
#include "coexec/gpu/gemm.hpp"
#include "coexec/gpu/tuning.hpp"

#include "coexec/predict/features.hpp"
#include "coexec/predict/model_file.hpp"
#include "coexec/predict/models/shipped.hpp"
#include "coexec/predict/tree_ensemble.hpp"

#include "coexec/plan/grid_search.hpp"
#include "coexec/plan/online.hpp"
#include "coexec/plan/predicted.hpp"
#include "coexec/plan/split.hpp"
#include "coexec/plan/split_plan.hpp"

#include "coexec/ops/attention.hpp"
#include "coexec/ops/co_execute.hpp"
#include "coexec/ops/conv2d.hpp"
#include "coexec/ops/linear.hpp"
#include "coexec/ops/split_weights.hpp"

#include "coexec/pipe/cpu_steps.hpp"
#include "coexec/pipe/layers.hpp"
#include "coexec/pipe/networks.hpp"
#include "coexec/pipe/pipeline.hpp"
#include "coexec/pipe/step.hpp"

/// @file
/// Umbrella header: every public coexec header in one include.

/// @namespace coexec
/// CPU-GPU co-execution of DNN layers over OpenCL: one layer's output channels are split
/// between a CPU thread pool and an OpenCL device that write into the same shared memory.

/// @namespace coexec::runtime
/// OpenCL set-up: platform and device selection, device capabilities, the context with its
/// queue and kernel cache, and the on-disk program binary cache.

/// @namespace coexec::memory
/// Shared virtual memory (SVM) allocation, host mapping of coarse-grained SVM, and the
/// panel-packed weight layout both sides read.

/// @namespace coexec::sync
/// Host-device synchronisation without clFinish: atomic flags in fine-grained SVM, event
/// polling as the fallback, and probes that measure their costs.

/// @namespace coexec::cpu
/// The CPU side: a thread pool and the gemm, convolution and attention kernels it runs on its
/// share of the output.

/// @namespace coexec::gpu
/// The OpenCL device side: gemm, convolution and attention kernel launchers and their tuning.

/// @namespace coexec::ops
/// Co-executed layers that split their output between CPU and device: linear and conv2d along
/// output channels (conv2d also along rows), attention along heads.

/// @namespace coexec::pipe
/// Layer pipelines: networks of co-executed layers and CPU steps over tensors allocated once,
/// run per layer or streamed (the next layer's device part enqueued early behind a gate).

/// @namespace coexec::pipe::steps
/// Ready-made CPU steps: residual add, pooling, softmax, layer norm, attention.

/// @namespace coexec::plan
/// Choosing the split point: grid search, predicted (model-based) planning, and online
/// correction of predictions from measured runs.

/// @namespace coexec::predict
/// Execution-time prediction: per-side features and tree-ensemble models, loaded from files or
/// compiled in.

/// @namespace coexec::predict::models
/// Models compiled into coexec: generated headers per calibrated platform, and shipped()
/// to pick the one that fits a device.
