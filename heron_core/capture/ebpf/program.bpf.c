// heron's TLS plaintext probes, compiled by bcc in the agent (agent.py; docs/ebpf.md).
//
// Entry probes on SSL_write / SSL_write_ex / SSL_read / SSL_read_ex stash (SSL*, buffer, size_t*) per
// thread; the shared return probe emits the bytes when the call succeeded: the length is the return
// value (plain forms) or *size_t (the _ex forms, which return 1). A call is copied in chunks of up to
// 32 KiB, at most 8 of them; the rest is not copied but the stream offset still advances, so the loss
// shows downstream as a gap of the right size. Offsets and a generation are kept per (pid, SSL*);
// a close (SSL_shutdown, SSL_free, SSL_read returning 0) reports the final offsets, resets them and
// bumps the generation, so a reused SSL* starts a new flow.
//
// Deliberately no kernel min()/max(): newer headers define them with __careful_cmp, which bcc cannot
// compile in BPF context (the stock sslsniff fails on this).

#include <uapi/linux/ptrace.h>

#define MAX_CHUNK 32768
#define MAX_CHUNKS 8
#define KIND_WRITE 1
#define KIND_READ 2
#define KIND_CLOSE 3
#define FLAG_TRUNCATED 1
#define FLAG_COPY_FAILED 2
#define CNT_LOST 0
#define CNT_CHUNKS_DROPPED 1

struct event_t {
    u8 kind;
    u8 flags;
    u16 chunk;
    u32 pid;
    u32 tid;
    u32 len;
    u64 conn;
    u64 ts_ns;
    u64 offset;  // data: stream position of data[0]; close: final write offset
    u64 aux;     // data: length of the whole call; close: final read offset
    u32 gen;
    u32 pad;
    char comm[16];
    u8 data[MAX_CHUNK];
};
#define HEADER_SIZE (sizeof(struct event_t) - MAX_CHUNK)

struct stash_t {
    u64 conn;
    u64 buf;
    u64 lenp;
    u32 kind;
    u32 is_ex;
};

struct conn_key_t {
    u64 conn;
    u32 pid;
    u32 pad;
};

struct conn_val_t {
    u64 off_write;
    u64 off_read;
    u32 gen;
    u32 active;
};

struct comm_key_t {
    char comm[16];
};

BPF_RINGBUF_OUTPUT(events, 4096);  // 4096 pages = 16 MiB
BPF_HASH(stash, u64, struct stash_t, 16384);
BPF_TABLE("lru_hash", struct conn_key_t, struct conn_val_t, conns, 65536);
// One event buffer per CPU. Not a per-CPU map: per-CPU values are limited to 32 KiB, and the event is
// 32 KiB of data plus its header. A program runs on one CPU at a time (migration disabled, and the
// kernel does not nest uprobe programs on a CPU), so indexing by the CPU id gives the same exclusivity.
BPF_ARRAY(scratch, struct event_t, HERON_NCPU);
BPF_PERCPU_ARRAY(counts, u64, 2);
BPF_HASH(filter_pids, u32, u8, 4096);
BPF_HASH(filter_comms, struct comm_key_t, u8, 256);

static __always_inline int heron_selected(u32 pid) {
#if HERON_FILTER
    if (filter_pids.lookup(&pid))
        return 1;
    struct comm_key_t k = {};
    bpf_get_current_comm(&k.comm, sizeof(k.comm));
    if (filter_comms.lookup(&k))
        return 1;
    return 0;
#else
    return 1;
#endif
}

static __always_inline void heron_count(u32 idx, u64 n) {
    u64 *c = counts.lookup(&idx);
    if (c)
        *c += n;
}

static __always_inline int heron_stash(struct pt_regs *ctx, u32 kind, u32 is_ex) {
    u64 id = bpf_get_current_pid_tgid();
    if (!heron_selected(id >> 32))
        return 0;
    struct stash_t s = {};
    s.conn = PT_REGS_PARM1(ctx);
    s.buf = PT_REGS_PARM2(ctx);
    s.lenp = is_ex ? PT_REGS_PARM4(ctx) : 0;
    s.kind = kind;
    s.is_ex = is_ex;
    stash.update(&id, &s);
    return 0;
}

int heron_write(struct pt_regs *ctx) { return heron_stash(ctx, KIND_WRITE, 0); }
int heron_write_ex(struct pt_regs *ctx) { return heron_stash(ctx, KIND_WRITE, 1); }
int heron_read(struct pt_regs *ctx) { return heron_stash(ctx, KIND_READ, 0); }
int heron_read_ex(struct pt_regs *ctx) { return heron_stash(ctx, KIND_READ, 1); }

static __always_inline void heron_emit_close(u64 id, u64 conn) {
    u32 pid = id >> 32;
    struct conn_key_t ck = {};
    ck.conn = conn;
    ck.pid = pid;
    struct conn_val_t *cv = conns.lookup(&ck);
    if (!cv || !cv->active)
        return;
    u32 cpu = bpf_get_smp_processor_id();
    struct event_t *ev = scratch.lookup(&cpu);
    if (!ev)
        return;
    ev->kind = KIND_CLOSE;
    ev->flags = 0;
    ev->chunk = 0;
    ev->pid = pid;
    ev->tid = (u32)id;
    ev->len = 0;
    ev->conn = conn;
    ev->ts_ns = bpf_ktime_get_ns();
    ev->offset = cv->off_write;
    ev->aux = cv->off_read;
    ev->gen = cv->gen;
    bpf_get_current_comm(&ev->comm, sizeof(ev->comm));
    cv->off_write = 0;
    cv->off_read = 0;
    cv->active = 0;
    cv->gen += 1;
    if (events.ringbuf_output(ev, HEADER_SIZE, 0) != 0)
        heron_count(CNT_LOST, 1);
}

int heron_close(struct pt_regs *ctx) {
    u64 id = bpf_get_current_pid_tgid();
    if (!heron_selected(id >> 32))
        return 0;
    heron_emit_close(id, PT_REGS_PARM1(ctx));
    return 0;
}

int heron_ret(struct pt_regs *ctx) {
    u64 id = bpf_get_current_pid_tgid();
    struct stash_t *sp = stash.lookup(&id);
    if (!sp)
        return 0;
    struct stash_t s = *sp;
    stash.delete(&id);
    long ret = PT_REGS_RC(ctx);
    u64 n = 0;
    if (s.is_ex) {
        if ((int)ret != 1)
            return 0;
        u64 got = 0;
        if (bpf_probe_read_user(&got, sizeof(got), (void *)s.lenp) != 0)
            return 0;
        n = got;
    } else {
        int r = (int)ret;
        if (r <= 0) {
            if (r == 0 && s.kind == KIND_READ)
                heron_emit_close(id, s.conn);  // orderly EOF from the peer
            return 0;
        }
        n = (u64)r;
    }
    if (n == 0)
        return 0;

    u32 pid = id >> 32;
    struct conn_key_t ck = {};
    ck.conn = s.conn;
    ck.pid = pid;
    struct conn_val_t init = {};
    struct conn_val_t *cv = conns.lookup_or_try_init(&ck, &init);
    if (!cv)
        return 0;
    u64 base;
    if (s.kind == KIND_WRITE) {
        base = cv->off_write;
        cv->off_write = base + n;
    } else {
        base = cv->off_read;
        cv->off_read = base + n;
    }
    cv->active = 1;
    u32 gen = cv->gen;

    u32 cpu = bpf_get_smp_processor_id();
    struct event_t *ev = scratch.lookup(&cpu);
    if (!ev)
        return 0;
    ev->kind = s.kind;
    ev->pid = pid;
    ev->tid = (u32)id;
    ev->conn = s.conn;
    ev->gen = gen;
    ev->aux = n;
    ev->ts_ns = bpf_ktime_get_ns();
    bpf_get_current_comm(&ev->comm, sizeof(ev->comm));

#pragma unroll
    for (int i = 0; i < MAX_CHUNKS; i++) {
        u64 done = (u64)i * MAX_CHUNK;
        if (done >= n)
            break;
        u64 left = n - done;
        u32 len = MAX_CHUNK;
        if (left < MAX_CHUNK)
            len = (u32)left;
        ev->chunk = i;
        ev->offset = base + done;
        ev->flags = 0;
        if (i == MAX_CHUNKS - 1 && left > MAX_CHUNK) {
            ev->flags = FLAG_TRUNCATED;
            heron_count(CNT_CHUNKS_DROPPED, (left - 1) / MAX_CHUNK);
        }
        // Make the bound visible to the verifier whatever the compiler did with the comparison above.
        len &= (MAX_CHUNK * 2 - 1);
        if (len > MAX_CHUNK)
            len = MAX_CHUNK;
        if (bpf_probe_read_user(ev->data, len, (void *)(s.buf + done)) != 0) {
            ev->flags |= FLAG_COPY_FAILED;
            heron_count(CNT_CHUNKS_DROPPED, 1);
            len = 0;
        }
        ev->len = len;
        if (events.ringbuf_output(ev, HEADER_SIZE + len, 0) != 0)
            heron_count(CNT_LOST, 1);
    }
    return 0;
}
