//! The heap measurement counts its own threads only: other tests allocating in
//! parallel cannot disturb it, and a thread that joins it is counted.

use std::sync::mpsc;
use std::time::Duration;

use crate::helpers::alloc::HeapWindow;

const MIB: usize = 1024 * 1024;

/// Fills `n` bytes so that the allocation is real, not optimised away.
fn block(n: usize) -> Vec<u8> {
    std::hint::black_box(vec![1u8; n])
}

#[test]
fn another_thread_allocating_during_a_measurement_is_not_counted() {
    let (allocated, wait_allocated) = mpsc::channel();
    let (release, wait_release) = mpsc::channel::<()>();
    let window = HeapWindow::open();
    let mine = block(2 * MIB);
    // Another test, as far as the window can tell: 64 MiB held while we measure.
    let other = std::thread::spawn(move || {
        let big = block(64 * MIB);
        allocated.send(()).unwrap();
        wait_release.recv().unwrap();
        drop(big);
    });
    wait_allocated
        .recv_timeout(Duration::from_secs(30))
        .expect("the other thread allocated");
    let growth = window.peak_growth();
    release.send(()).unwrap();
    other.join().unwrap();
    assert!(growth >= 2 * MIB, "our own 2 MiB are counted: {growth}");
    assert!(
        growth < 8 * MIB,
        "another thread's 64 MiB leaked into the measurement: {growth}"
    );
    drop(mine);
}

#[test]
fn a_thread_that_joins_the_window_is_counted() {
    let window = HeapWindow::open();
    let participant = window.participant();
    std::thread::scope(|s| {
        s.spawn(move || {
            let _joined = participant.join();
            drop(block(16 * MIB));
        });
    });
    let growth = window.peak_growth();
    assert!(growth >= 16 * MIB, "the joined thread's 16 MiB: {growth}");
    assert!(growth < 24 * MIB, "{growth}");
}

#[test]
fn memory_freed_elsewhere_is_credited_to_the_window_that_allocated_it() {
    let before = block(8 * MIB); // allocated before the window: never counted in it
    let window = HeapWindow::open();
    drop(before);
    let handed_off = block(4 * MIB);
    assert!(window.live() >= 4 * MIB, "{}", window.live());
    // Freed on another thread, as a blocking-pool thread or a hyper task would.
    std::thread::spawn(move || drop(handed_off)).join().unwrap();
    assert!(
        window.live() < MIB,
        "the 4 MiB freed on another thread still count as live: {}",
        window.live()
    );
    assert!(window.peak_growth() >= 4 * MIB);
}

#[tokio::test]
async fn tasks_of_a_current_thread_runtime_are_counted() {
    let window = HeapWindow::open();
    let held = tokio::spawn(async { block(8 * MIB) }).await.unwrap();
    assert!(window.peak_growth() >= 8 * MIB, "{}", window.peak_growth());
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[should_panic(expected = "measure on a current-thread runtime")]
async fn a_window_on_a_multi_threaded_runtime_is_refused() {
    let _window = HeapWindow::open();
}
