//! A global allocator that attributes live heap bytes to the measurement that allocated them.
//!
//! A [`HeapWindow`] counts only what the threads taking part in it allocate: the
//! thread that opened it, and any thread that joins it. Other tests running in
//! parallel on their own threads do not move its numbers. Each allocation carries a
//! small header naming the window it was made under, so that a buffer freed on
//! another thread (a blocking-pool thread, a hyper task elsewhere) still lowers the
//! right window's count, and allocations made before the window opened never do.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Live and peak bytes of one window. Leaked on purpose: allocations tagged with it
/// may outlive the window, and their frees must still find it.
struct Counters {
    live: AtomicUsize,
    peak: AtomicUsize,
}

thread_local! {
    /// The window this thread's allocations are counted in (null: none).
    /// A const-initialised `Cell` with no destructor, so using it never allocates.
    static CURRENT: Cell<*const Counters> = const { Cell::new(std::ptr::null()) };
}

fn current() -> *const Counters {
    CURRENT.try_with(Cell::get).unwrap_or(std::ptr::null())
}

/// Room in front of each block for the tag, keeping the block's alignment.
fn header(layout: &Layout) -> usize {
    layout.align().max(size_of::<usize>() * 2)
}

fn outer(layout: &Layout) -> Option<Layout> {
    let size = layout.size().checked_add(header(layout))?;
    Layout::from_size_align(size, header(layout)).ok()
}

/// The tag sits in the word just before the block handed out.
unsafe fn tag_of(ptr: *mut u8) -> *mut *const Counters {
    unsafe { ptr.sub(size_of::<usize>()).cast() }
}

fn grow(counters: *const Counters, by: usize) {
    if let Some(c) = unsafe { counters.as_ref() } {
        let live = c.live.fetch_add(by, Ordering::Relaxed) + by;
        c.peak.fetch_max(live, Ordering::Relaxed);
    }
}

fn shrink(counters: *const Counters, by: usize) {
    if let Some(c) = unsafe { counters.as_ref() } {
        // Saturating: a block grown by realloc under no window and freed under one
        // cannot happen (the tag travels with the block), but never wrap regardless.
        let _ = c
            .live
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |l| {
                Some(l.saturating_sub(by))
            });
    }
}

pub struct CountingAllocator;

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(outer) = outer(&layout) else {
            return std::ptr::null_mut();
        };
        let base = unsafe { System.alloc(outer) };
        if base.is_null() {
            return base;
        }
        let ptr = unsafe { base.add(header(&layout)) };
        let counters = current();
        unsafe { tag_of(ptr).write(counters) };
        grow(counters, layout.size());
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let counters = unsafe { tag_of(ptr).read() };
        shrink(counters, layout.size());
        let outer = outer(&layout).expect("the layout was valid when allocated");
        unsafe { System.dealloc(ptr.sub(header(&layout)), outer) };
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        let Some(new_outer) = outer(&new_layout) else {
            return std::ptr::null_mut();
        };
        let counters = unsafe { tag_of(ptr).read() };
        let old_outer = outer(&layout).expect("the layout was valid when allocated");
        let base = unsafe { System.realloc(ptr.sub(header(&layout)), old_outer, new_outer.size()) };
        if base.is_null() {
            return base;
        }
        // The header (and so the tag) moved with the block; the block stays in its window.
        if new_size >= layout.size() {
            grow(counters, new_size - layout.size());
        } else {
            shrink(counters, layout.size() - new_size);
        }
        unsafe { base.add(header(&layout)) }
    }
}

/// Measures how far the heap allocated by its participants rose while it was open.
///
/// Opened on a thread, it counts that thread (on a current-thread runtime, every
/// task of the test) and the threads that join it ([`HeapWindow::participant`]); nothing
/// else. A multi-threaded runtime would spread the work over threads it cannot see,
/// so opening one there is refused.
pub struct HeapWindow {
    counters: &'static Counters,
    previous: *const Counters,
}

impl HeapWindow {
    pub fn open() -> HeapWindow {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            assert_eq!(
                runtime.runtime_flavor(),
                tokio::runtime::RuntimeFlavor::CurrentThread,
                "a HeapWindow sees only the threads taking part in it: measure on a current-thread runtime"
            );
        }
        let counters: &'static Counters = Box::leak(Box::new(Counters {
            live: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }));
        let previous = CURRENT.with(|c| c.replace(counters));
        HeapWindow { counters, previous }
    }

    /// A handle another thread can use to take part in this window.
    pub fn participant(&self) -> Participant {
        Participant(self.counters)
    }

    /// Bytes still live that were allocated in the window.
    pub fn live(&self) -> usize {
        self.counters.live.load(Ordering::Relaxed)
    }

    /// The highest the window's live bytes reached.
    pub fn peak_growth(&self) -> usize {
        self.counters.peak.load(Ordering::Relaxed)
    }
}

impl Drop for HeapWindow {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.previous));
    }
}

/// Lets another thread take part in a [`HeapWindow`]; see [`HeapWindow::participant`].
#[derive(Clone, Copy)]
pub struct Participant(&'static Counters);

impl Participant {
    /// Counts the calling thread's allocations in the window until the guard drops.
    pub fn join(self) -> Joined {
        let counters: *const Counters = self.0;
        Joined {
            previous: CURRENT.with(|c| c.replace(counters)),
        }
    }
}

/// A thread's membership in a [`HeapWindow`], ended on drop (on that thread).
pub struct Joined {
    previous: *const Counters,
}

impl Drop for Joined {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.previous));
    }
}

/// Serialises the heaviest tests (100 MiB transfers) so that they do not all hold
/// their buffers at once on a small machine. Accuracy does not depend on it: a
/// window counts only its own threads.
pub static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
