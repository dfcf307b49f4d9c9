//! How long the launcher keeps memory it freed before giving it back to the system.
//!
//! The launcher (the console's process, a headless run) holds every reading of the cluster:
//! jobs, their histories, the alarms' ids. At thousands of jobs a second those maps take new
//! entries at one end and let old ones go at the other, so pages are freed and wanted again
//! within seconds. mimalloc gives a freed page back to the system after a second; a later
//! allocation then faults a fresh, zeroed page in (about 2,800 faults a second at 10,000
//! jobs a second, docs/performance/console.md). Keeping freed pages for ten seconds removes
//! the faults for about 18 MiB more resident memory at that rate, which still goes back once a
//! burst is over.
//!
//! Nodes keep mimalloc's default: a node is small and its memory target is tight. A delay given
//! in the environment (`MIMALLOC_PURGE_DELAY`) is the user's and is left as it is.

/// mimalloc's `mi_option_purge_delay`: its place in `mi_option_e` (mimalloc v3's
/// `include/mimalloc.h`; the sys crate names only the options both versions share).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Milliseconds mimalloc keeps a freed page before it goes back to the system, by default.
const DEFAULT_MS: i64 = 1_000;
/// The same, in the launcher.
const KEEP_MS: i64 = 10_000;

/// Makes this process keep freed memory for [`KEEP_MS`] before giving it back.
pub fn keep_freed_pages() {
    // Set only over the default: a value set in the environment is the user's, and any other
    // value means the number above names another option (a mimalloc with a different list),
    // which is left alone rather than set to the wrong thing.
    if ![DEFAULT_MS, KEEP_MS].contains(&purge_delay()) {
        tracing::debug!("mimalloc's purge delay is not at its default: left alone");
        return;
    }
    // SAFETY: `mi_option_set` stores one word into mimalloc's table of options, checking the
    // index against the table's length, and takes no pointer; mimalloc reads the purge delay
    // afresh at each purge and documents its options as settable while the program runs.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set(PURGE_DELAY, KEEP_MS as std::ffi::c_long);
    }
}

/// mimalloc's purge delay now, in milliseconds.
fn purge_delay() -> i64 {
    // SAFETY: a read of one word of mimalloc's table of options; `mi_option_get` checks the
    // index against the table's length (0 past it) and takes no pointer.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_get(PURGE_DELAY) as i64
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_purge_delay_is_the_option_it_is_taken_for() {
        // Tests run on the system's allocator, but mimalloc is linked and its options answer:
        // the option at that place is the purge delay (1,000 ms by default; set already if a
        // launch in this test binary came first).
        assert!([super::DEFAULT_MS, super::KEEP_MS].contains(&super::purge_delay()));
        super::keep_freed_pages();
        assert_eq!(super::purge_delay(), super::KEEP_MS);
    }
}
