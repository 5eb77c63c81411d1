// Hand-written reference for examples/drop-syn.tlisp: same behaviour
// (Ethernet, up to two VLAN tags, IPv4 with IHL >= 5 and first fragment
// only, or IPv6; TCP SYN without ACK is dropped and counted per CPU), written
// the way a libbpf user would. bench/bench_backends.py compares the verifier's
// instruction count of this object with the generated one.
#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} syn_drops SEC(".maps");

SEC("xdp")
int drop_syn(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    void *p = data + 14;
    __u8 *tcp, proto;
    __u16 type;

    if (p > data_end)
        return XDP_PASS;
    type = *(__u16 *)(data + 12);
    for (int i = 0; i < 2; i++) {
        if (type != bpf_htons(ETH_P_8021Q) && type != bpf_htons(ETH_P_8021AD))
            break;
        if (p + 4 > data_end)
            return XDP_PASS;
        type = *(__u16 *)(p + 2);
        p += 4;
    }
    if (type == bpf_htons(ETH_P_IP)) {
        __u8 *ip = p;
        if (p + 20 > data_end || (ip[0] & 0xf) < 5)
            return XDP_PASS;
        if (*(__u16 *)(ip + 6) & bpf_htons(0x1fff))
            return XDP_PASS;
        proto = ip[9];
        tcp = p + (ip[0] & 0xf) * 4;
    } else if (type == bpf_htons(ETH_P_IPV6)) {
        if (p + 40 > data_end)
            return XDP_PASS;
        proto = ((__u8 *)p)[6];
        tcp = p + 40;
    } else {
        return XDP_PASS;
    }
    if (proto != IPPROTO_TCP || (void *)(tcp + 20) > data_end)
        return XDP_PASS;
    /* flags byte: SYN is 0x02, ACK 0x10 */
    if ((tcp[13] & 0x12) != 0x02)
        return XDP_PASS;

    __u32 key = 0;
    __u64 *count = bpf_map_lookup_elem(&syn_drops, &key);
    if (count)
        __sync_fetch_and_add(count, 1);
    return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
