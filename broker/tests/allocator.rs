//! The broker binary's allocator gives freed memory back by itself (issue 15, decision 44).
//!
//! Its own process, so that jemalloc is the allocator here as it is in `clusterlab-broker`, with
//! the same build-time settings, and no other test's allocations move the counters.

use std::time::{Duration, Instant};

use broker::telemetry::memory::heap;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const MIB: u64 = 1 << 20;

#[test]
fn freed_small_blocks_go_back_to_the_system_without_being_asked() {
    assert_eq!(tikv_jemalloc_ctl::background_thread::read(), Ok(true), "decay runs on a background thread");
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
    // jemalloc's dirty pages decay over 10 s by default; nothing here asks for them back.
    let started = Instant::now();
    let limit = Duration::from_secs(30);
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
