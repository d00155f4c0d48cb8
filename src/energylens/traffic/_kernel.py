"""The serving simulation's event loop, written once: numba compiles this function (`fast` extra) and,
without numba, the same function runs as Python on NumPy arrays (identical results, much slower).

It is one function on purpose: numba compiles it as it stands, and there is no second copy to drift.
Keep to what numba's nopython mode accepts (NumPy arrays, scalars, loops; no objects, no closures).

Per request, vLLM's V1 accounting: `num_tokens` = prompt + generated, `computed` = tokens whose KV is
in the cache. A step schedules `num_tokens - computed` tokens (capped by the token budget left); when
`computed` reaches `num_tokens` the step samples a token (the first one ends the prefill). A preempted
request loses its cache (computed = 0) and recomputes prompt + generated tokens when readmitted.
"""
from __future__ import annotations

import numpy as np

ROUND_ROBIN = 0
LEAST_LOADED = 1


def run(arrival_in, prompt, output, replicas, router, concurrency, max_seqs, budget, kv_blocks, block_size,
        fixed, memory, compute, by_tokens, record, window_end):
    """Simulate; see simulate.simulate for the meaning. `kv_blocks` < 0: no KV-cache limit; `concurrency`
    <= 0: open loop (every request at its arrival time), else closed loop (the first `concurrency` at
    theirs, each later one when a request finishes; the caller gives the first ones time 0). `window_end`:
    busy time before it is also counted apart (the traffic window, without the drain after it)."""
    n = arrival_in.shape[0]
    inf = np.inf
    arrival = arrival_in.copy()
    kv_limited = kv_blocks >= 0
    has_table = by_tokens.shape[1] > 0

    num_tokens = prompt.copy()
    computed = np.zeros(n, np.int64)
    generated = np.zeros(n, np.int64)
    blocks = np.zeros(n, np.int64)
    sched = np.zeros(n, np.int64)
    nxt = np.full(n, -1, np.int64)  # waiting queues as linked lists (preempted requests go to the front)
    replica_of = np.full(n, -1, np.int64)
    first_sched = np.full(n, np.nan)
    first_token = np.full(n, np.nan)
    finish = np.full(n, np.nan)
    preemptions = np.zeros(n, np.int64)

    # Running requests in admission order. A replica never holds more than (n - 1) // replicas + 1 requests at once:
    # round robin assigns it no more, and least loaded gives it its k-th only when every replica holds k - 1.
    run_list = np.empty((replicas, min(max_seqs, (n - 1) // replicas + 1)), np.int64)
    nrun = np.zeros(replicas, np.int64)
    qhead = np.full(replicas, -1, np.int64)
    qtail = np.full(replicas, -1, np.int64)
    outstanding = np.zeros(replicas, np.int64)
    free = np.full(replicas, kv_blocks, np.int64)
    stepping = np.zeros(replicas, np.bool_)
    busy = np.zeros(replicas)
    busy_window = np.zeros(replicas)
    batch_time = np.zeros(replicas)  # sum over steps of (requests in the step) x (step time)
    steps = np.zeros(replicas, np.int64)
    prefill_tok = np.zeros(replicas, np.int64)
    decode_tok = np.zeros(replicas, np.int64)

    cap = 1024 if record else 0
    log_f = np.empty((cap, 2))  # start, duration
    log_i = np.empty((cap, 6), np.int64)  # replica, decoding, context tokens, prefill tokens, prefill pairs, requests
    n_log = 0

    # Step ends in a binary min-heap ordered by (time, replica); replicas that may start a step at `now`.
    heap_t = np.empty(replicas)
    heap_r = np.empty(replicas, np.int64)
    heap_n = 0
    pending = np.empty(replicas, np.int64)
    is_pending = np.zeros(replicas, np.bool_)
    n_pending = 0

    done = 0
    next_arr = 0
    issued = n if concurrency <= 0 else min(concurrency, n)
    rr = 0
    now = 0.0
    while done < n:
        t_arr = arrival[next_arr] if next_arr < issued else inf
        if heap_n > 0 and heap_t[0] <= t_arr:
            # ---- a step ends: its tokens are computed, sampled tokens counted, finished requests leave
            now = heap_t[0]
            r = heap_r[0]
            heap_n -= 1
            if heap_n > 0:  # the last entry sifts down from the root
                t_move = heap_t[heap_n]
                r_move = heap_r[heap_n]
                j = 0
                while True:
                    c = 2 * j + 1
                    if c >= heap_n:
                        break
                    if c + 1 < heap_n and (heap_t[c + 1] < heap_t[c] or (heap_t[c + 1] == heap_t[c]
                                                                          and heap_r[c + 1] < heap_r[c])):
                        c += 1
                    if heap_t[c] < t_move or (heap_t[c] == t_move and heap_r[c] < r_move):
                        heap_t[j] = heap_t[c]
                        heap_r[j] = heap_r[c]
                        j = c
                    else:
                        break
                heap_t[j] = t_move
                heap_r[j] = r_move
            stepping[r] = False
            if not is_pending[r]:
                is_pending[r] = True
                pending[n_pending] = r
                n_pending += 1
            keep = 0
            for k in range(nrun[r]):
                i = run_list[r, k]
                new = sched[i]
                sched[i] = 0
                finished = False
                if new > 0:
                    computed[i] += new
                    if computed[i] == num_tokens[i]:
                        generated[i] += 1
                        num_tokens[i] += 1
                        if generated[i] == 1:
                            first_token[i] = now
                        if generated[i] == output[i]:
                            finished = True
                if finished:
                    finish[i] = now
                    if kv_limited:
                        free[r] += blocks[i]
                    blocks[i] = 0
                    outstanding[r] -= 1
                    done += 1
                    if concurrency > 0 and issued < n:
                        arrival[issued] = now
                        issued += 1
                else:
                    run_list[r, keep] = i
                    keep += 1
            nrun[r] = keep
        elif next_arr < issued:
            # ---- a request arrives: the router picks its replica, it joins that replica's queue
            now = t_arr
            i = next_arr
            next_arr += 1
            if router == ROUND_ROBIN:
                r = rr
                rr = (rr + 1) % replicas
            else:
                r = 0
                for q in range(1, replicas):
                    if outstanding[q] < outstanding[r]:
                        r = q
            replica_of[i] = r
            outstanding[r] += 1
            nxt[i] = -1
            if qtail[r] < 0:
                qhead[r] = i
            else:
                nxt[qtail[r]] = i
            qtail[r] = i
            if not stepping[r] and not is_pending[r]:
                is_pending[r] = True
                pending[n_pending] = r
                n_pending += 1
        else:
            break  # unreachable: requests left but nothing to do

        # ---- once every event at `now` is handled, idle replicas with work start a step (in replica order)
        t_next = heap_t[0] if heap_n > 0 else inf
        if next_arr < issued and arrival[next_arr] < t_next:
            t_next = arrival[next_arr]
        if t_next <= now:
            continue
        for a in range(1, n_pending):  # insertion sort: the list is short
            v = pending[a]
            b = a - 1
            while b >= 0 and pending[b] > v:
                pending[b + 1] = pending[b]
                b -= 1
            pending[b + 1] = v
        count = n_pending
        n_pending = 0
        for a in range(count):
            r = pending[a]
            is_pending[r] = False
            if stepping[r] or (nrun[r] == 0 and qhead[r] < 0):
                continue
            left = budget
            while True:
                left = budget
                preempted = False
                # running requests first, in admission order (decodes take 1 token, partial prefills the rest)
                k = 0
                while k < nrun[r] and left > 0:
                    i = run_list[r, k]
                    new = min(num_tokens[i] - computed[i], left)
                    need = 0
                    if kv_limited:
                        need = (computed[i] + new + block_size - 1) // block_size - blocks[i]
                    lost_self = False
                    while kv_limited and need > free[r]:
                        # out of KV blocks: preempt the last admitted request (recompute later)
                        v = run_list[r, nrun[r] - 1]
                        nrun[r] -= 1
                        free[r] += blocks[v]
                        blocks[v] = 0
                        computed[v] = 0
                        preemptions[v] += 1
                        nxt[v] = qhead[r]
                        qhead[r] = v
                        if qtail[r] < 0:
                            qtail[r] = v
                        preempted = True
                        if v == i:
                            lost_self = True
                            break
                    if lost_self:
                        break
                    if kv_limited:
                        blocks[i] += need
                        free[r] -= need
                    sched[i] = new
                    left -= new
                    k += 1
                # then waiting requests, first come first served, while budget, seats and KV blocks last
                if not preempted:
                    while qhead[r] >= 0 and left > 0 and nrun[r] < max_seqs:
                        i = qhead[r]
                        new = min(num_tokens[i] - computed[i], left)
                        if kv_limited:
                            need = (new + block_size - 1) // block_size
                            if need > free[r]:
                                break
                            blocks[i] = need
                            free[r] -= need
                        qhead[r] = nxt[i]
                        if qhead[r] < 0:
                            qtail[r] = -1
                        run_list[r, nrun[r]] = i
                        nrun[r] += 1
                        sched[i] = new
                        left -= new
                        if first_sched[i] != first_sched[i]:  # NaN: first admission
                            first_sched[i] = now
                # every running request preempted and none admitted in the same pass: schedule again
                if left < budget or (nrun[r] == 0 and qhead[r] < 0):
                    break
            if left == budget:
                continue
            dec = 0
            ctx = 0
            pf = 0
            pairs = 0
            in_step = 0
            for k in range(nrun[r]):
                i = run_list[r, k]
                new = sched[i]
                if new == 0:
                    continue
                in_step += 1
                if new == 1 and generated[i] > 0 and computed[i] + 1 == num_tokens[i]:
                    dec += 1
                    ctx += num_tokens[i]
                else:
                    pf += new
                    pairs += new * computed[i] + new * (new + 1) // 2
            x1 = float(dec)
            x2 = float(ctx)
            x3 = float(pf)
            x4 = float(pairs)
            t_fixed = fixed[r, 0] + fixed[r, 1] * x1 + fixed[r, 2] * x2 + fixed[r, 3] * x3 + fixed[r, 4] * x4
            t_mem = memory[r, 0] + memory[r, 1] * x1 + memory[r, 2] * x2 + memory[r, 3] * x3 + memory[r, 4] * x4
            t_cmp = compute[r, 0] + compute[r, 1] * x1 + compute[r, 2] * x2 + compute[r, 3] * x3 + compute[r, 4] * x4
            dt = t_fixed + max(t_mem, t_cmp)
            if has_table:
                dt += by_tokens[r, dec + pf]
            stepping[r] = True
            end = now + dt
            j = heap_n  # push (end, r): sift up
            heap_n += 1
            while j > 0:
                parent = (j - 1) // 2
                if end < heap_t[parent] or (end == heap_t[parent] and r < heap_r[parent]):
                    heap_t[j] = heap_t[parent]
                    heap_r[j] = heap_r[parent]
                    j = parent
                else:
                    break
            heap_t[j] = end
            heap_r[j] = r
            busy[r] += dt
            if now < window_end:
                busy_window[r] += min(dt, window_end - now)
            batch_time[r] += in_step * dt
            steps[r] += 1
            prefill_tok[r] += pf
            decode_tok[r] += dec
            if record:
                if n_log == cap:
                    cap *= 2
                    grown_f = np.empty((cap, 2))
                    grown_i = np.empty((cap, 6), np.int64)
                    grown_f[:n_log] = log_f[:n_log]
                    grown_i[:n_log] = log_i[:n_log]
                    log_f = grown_f
                    log_i = grown_i
                log_f[n_log, 0] = now
                log_f[n_log, 1] = dt
                log_i[n_log, 0] = r
                log_i[n_log, 1] = dec
                log_i[n_log, 2] = ctx
                log_i[n_log, 3] = pf
                log_i[n_log, 4] = pairs
                log_i[n_log, 5] = in_step
                n_log += 1

    return (arrival, replica_of, first_sched, first_token, finish, preemptions, busy, busy_window, batch_time, steps,
            prefill_tok, decode_tok, now, done, log_f[:n_log], log_i[:n_log])
