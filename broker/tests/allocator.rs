//! The broker binary's allocator gives freed memory back by itself (issue 15, decision 44).
//!
//! Its own process, so that jemalloc is the allocator here as it is in `clusterlab-broker`, with
//! the same build-time settings, and no other test's allocations move the counters.

use std::time::{Duration, Instant};

use broker::telemetry::memory::heap;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

// As in `clusterlab-broker`'s main.rs.
#[export_name = "_rjem_malloc_conf"]
static ALLOCATOR_CONF: Option<&'static std::ffi::c_char> =
    // SAFETY: a pointer to the first byte of a 'static, NUL-terminated string.
    Some(unsafe { &*broker::telemetry::memory::ALLOCATOR_CONF.as_ptr() });

const MIB: u64 = 1 << 20;

#[test]
fn freed_small_blocks_go_back_to_the_system_without_being_asked() {
    assert_eq!(tikv_jemalloc_ctl::background_thread::read(), Ok(true), "decay runs on a background thread");
    // SAFETY: both options are ssize_t in jemalloc.
    let decay = |name: &[u8]| unsafe { tikv_jemalloc_ctl::raw::read::<isize>(name) };
    assert_eq!(decay(b"opt.dirty_decay_ms\0"), Ok(1000), "the broker's allocator settings");
    assert_eq!(decay(b"opt.muzzy_decay_ms\0"), Ok(0), "decayed pages are returned, not kept lazily");
    let before = heap().expect("jemalloc accounting");
    // 64 MiB in 2 KiB blocks, every 64th kept: the freed ones sit among live ones, as a broker's
    // request buffers do after a burst.
    let mut blocks: Vec<Box<[u8; 2048]>> = (0..32_768).map(|i| Box::new([i as u8; 2048])).collect();
    let during = heap().unwrap();
    assert!(during.in_use >= before.in_use + 64 * MIB, "{before:?} -> {during:?}");
    let pinned: Vec<_> = blocks.drain(..).enumerate().filter(|(i, _)| i % 64 == 0).map(|(_, b)| b).collect();
    drop(blocks);
    let freed = heap().unwrap();
    assert!(freed.in_use + 60 * MIB < during.in_use, "{during:?} -> {freed:?}");
    // Nothing here asks for the pages back: the decay returns them from a background thread.
    let started = Instant::now();
    let limit = Duration::from_secs(20);
    loop {
        let now = heap().unwrap();
        if now.resident + 48 * MIB < during.resident {
            eprintln!(
                "resident {} -> {} MiB in {:?}",
                during.resident / MIB,
                now.resident / MIB,
                started.elapsed()
            );
            break;
        }
        assert!(
            started.elapsed() < limit,
            "freed memory still resident after {limit:?}: {during:?} -> {now:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(std::hint::black_box(pinned));
}
