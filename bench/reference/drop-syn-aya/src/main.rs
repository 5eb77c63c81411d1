//! Hand-written reference for examples/drop-syn.tlisp in aya-ebpf: same
//! behaviour (Ethernet, up to two VLAN tags, IPv4 with IHL >= 5 and first
//! fragment only, or IPv6; a TCP SYN without ACK is dropped and counted per
//! CPU), written the way an aya user would. bench/bench_backends.py compares
//! the verifier's instruction count of this object with the generated one.
#![no_std]
#![no_main]
#![feature(core_intrinsics)]
#![allow(internal_features)]

use aya_ebpf::{
    bindings::xdp_action::{XDP_DROP, XDP_PASS},
    btf_maps::PerCpuArray,
    macros::{btf_map, xdp},
    programs::XdpContext,
};

#[btf_map(name = "syn_drops")]
static SYN_DROPS: PerCpuArray<u64, 1> = PerCpuArray::new();

/// A `T` read at `offset`, when the packet is long enough.
#[inline(always)]
fn read<T: Copy>(ctx: &XdpContext, offset: usize) -> Option<T> {
    if ctx.data() + offset + size_of::<T>() > ctx.data_end() {
        return None;
    }
    Some(unsafe { *((ctx.data() + offset) as *const T) })
}

#[inline(always)]
fn tcp_flags(ctx: &XdpContext) -> Option<u8> {
    let mut offset = 14;
    let mut ethertype = u16::from_be(read(ctx, 12)?);
    for _ in 0..2 {
        if ethertype != 0x8100 && ethertype != 0x88a8 {
            break;
        }
        ethertype = u16::from_be(read(ctx, offset + 2)?);
        offset += 4;
    }
    let protocol: u8;
    match ethertype {
        0x0800 => {
            let ihl = (read::<u8>(ctx, offset)? & 0xf) as usize;
            let fragment = u16::from_be(read(ctx, offset + 6)?) & 0x1fff;
            protocol = read(ctx, offset + 9)?;
            if ihl < 5 || fragment != 0 {
                return None;
            }
            offset += ihl * 4;
        }
        0x86dd => {
            protocol = read(ctx, offset + 6)?;
            read::<[u8; 40]>(ctx, offset)?;
            offset += 40;
        }
        _ => return None,
    }
    if protocol != 6 {
        return None;
    }
    read::<[u8; 20]>(ctx, offset)?;
    read(ctx, offset + 13)
}

#[xdp]
pub fn drop_syn(ctx: XdpContext) -> u32 {
    match tcp_flags(&ctx) {
        // SYN is 0x02, ACK 0x10
        Some(flags) if flags & 0x12 == 0x02 => {
            if let Some(count) = SYN_DROPS.get_ptr_mut(0) {
                unsafe {
                    core::intrinsics::atomic_xadd::<
                        u64,
                        u64,
                        { core::intrinsics::AtomicOrdering::Relaxed },
                    >(count, 1)
                };
            }
            XDP_DROP
        }
        _ => XDP_PASS,
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
