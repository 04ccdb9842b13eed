// Probe kernels for coexec's synchronisation: the tests, bench_sync and the demo use them to
// measure dispatch, completion and flag round trips. Built after kernels/sync.cl.

// Writes `value` to out[i]; signals completion through the sync block.
__kernel void coexec_probe_fill(__global uint* out, uint value, __global uint* sync, uint epoch) {
  out[get_global_id(0)] = value;
  coexec_signal_done(sync, epoch);
}

// Waits until the host raises `flag` to `expected`, then writes `value`; an aborted wait
// writes nothing and signals nothing. (No early return: barriers must stay in uniform code.)
__kernel void coexec_probe_wait_fill(__global uint* flag, uint expected, __global uint* out, uint value,
                                     __global uint* sync, uint epoch) {
  __local int outcome;
  const bool go = coexec_wait_host(flag, expected, &outcome);
  if (go) out[get_global_id(0)] = value;
  coexec_signal_done(go ? sync : 0, epoch);
}

// One work-item answering the host `rounds` times: waits for ping == r, then sets pong = r.
// An abort on ping ends it early.
__kernel void coexec_probe_pingpong(__global uint* ping, __global uint* pong, uint rounds) {
  __local int outcome;
  bool alive = true;
  for (uint r = 1; r <= rounds && alive; ++r) {
    alive = coexec_wait_host(ping, r, &outcome);
#if COEXEC_SVM_FLAGS
    if (alive) atomic_store_explicit(COEXEC_ATOMIC(pong), r, memory_order_release, COEXEC_ATOMIC_SCOPE);
#endif
  }
}
