// Device side of coexec's spin-flag synchronisation, prepended to every coexec program.
//
// A sync block is two uints in fine-grained SVM: [0] counts work-groups that have arrived,
// [1] holds the epoch of the last completed launch. The host waits for [1] == epoch, so the
// block is reused launch after launch without being reset. Host flags are single uints the
// host raises (gates hold launches back on one); COEXEC_ABORT tells waiting kernels to give up.
//
// Host-chosen defines (runtime::capabilities::build_options):
//   COEXEC_SVM_FLAGS      1 when the device has fine-grained SVM with atomics, else 0 (the
//                         host polls events instead and these functions do nothing)
//   COEXEC_ATOMIC_SCOPE   memory_scope_all_svm_devices, or memory_scope_device where the
//                         compiler lacks it (PoCL 3.1)

#define COEXEC_ABORT 0xFFFFFFFFu

#if COEXEC_SVM_FLAGS

#define COEXEC_ATOMIC(p) ((volatile __global atomic_uint*)(p))

// True when a waiter for `expected` may go on: `seen` reached it (wrap-safe) or is COEXEC_ABORT.
inline bool coexec_released(uint seen, uint expected) { return seen == COEXEC_ABORT || (int)(seen - expected) >= 0; }

inline uint coexec_load_flag(__global uint* flag) {
  return atomic_load_explicit(COEXEC_ATOMIC(flag), memory_order_acquire, COEXEC_ATOMIC_SCOPE);
}

// True once `flag` reached `expected` (wrap-safe), false when the host raised COEXEC_ABORT.
// Work-item 0 spins; the rest of the work-group learns the outcome through local memory.
inline bool coexec_wait_host(__global uint* flag, uint expected, __local int* outcome) {
  if (get_local_id(0) == 0 && get_local_id(1) == 0 && get_local_id(2) == 0) {
    uint seen;
    do {
      seen = coexec_load_flag(flag);
    } while (!coexec_released(seen, expected));
    *outcome = seen != COEXEC_ABORT;
  }
  barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE);
  return *outcome != 0;
}

// The first statement of every operator kernel: a launch enqueued before its input is ready
// waits here until the host raises `gate` to `value`, so it starts the moment the input is
// ready instead of after a dispatch (pipelines). Each work-item spins on its own rather than
// work-item 0 behind a barrier, which would split barrier-free kernels in two on CPU devices;
// once the flag is up, the check is one load. A NULL gate is open; COEXEC_ABORT opens it too
// (the kernel then runs through and the host discards its output).
inline void coexec_pass_gate(__global uint* gate, uint value) {
  if (gate)
    while (!coexec_released(coexec_load_flag(gate), value)) {
    }
}

// Called by every work-item after its last store: the last work-group to arrive publishes
// `epoch`. The release fence by every work-item makes its stores visible before the count.
// A NULL `sync` (the host polls events) signals nothing; every work-item still reaches the
// barrier: barriers must stay in code every work-item of the group reaches (PoCL crashes on a
// barrier behind an early return it cannot prove uniform).
inline void coexec_signal_done(__global uint* sync, uint epoch) {
  atomic_work_item_fence(CLK_GLOBAL_MEM_FENCE, memory_order_release, COEXEC_ATOMIC_SCOPE);
  barrier(CLK_GLOBAL_MEM_FENCE);
  if (sync && get_local_id(0) == 0 && get_local_id(1) == 0 && get_local_id(2) == 0) {
    const uint groups = get_num_groups(0) * get_num_groups(1) * get_num_groups(2);
    const uint arrived = atomic_fetch_add_explicit(COEXEC_ATOMIC(sync), 1u, memory_order_acq_rel,
                                                   COEXEC_ATOMIC_SCOPE) + 1u;
    if (arrived == groups) {
      atomic_store_explicit(COEXEC_ATOMIC(sync), 0u, memory_order_relaxed, COEXEC_ATOMIC_SCOPE);
      atomic_store_explicit(COEXEC_ATOMIC(sync + 1), epoch, memory_order_release, COEXEC_ATOMIC_SCOPE);
    }
  }
}

#else

inline bool coexec_wait_host(__global uint* flag, uint expected, __local int* outcome) { return true; }
inline void coexec_pass_gate(__global uint* gate, uint value) {}
inline void coexec_signal_done(__global uint* sync, uint epoch) {}

#endif
