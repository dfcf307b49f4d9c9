//! How tcluster's processes hold memory: no transparent huge pages in any of them, and the
//! launcher keeps memory it freed for a while before giving it back to the system.
//!
//! **No huge pages.** mimalloc asks the kernel for transparent huge pages on its arenas. A
//! page it gives back is then faulted in again as a fresh 2 MiB page, zeroed whole: under a
//! stream of lone jobs the coordinator faulted in 100–220 of them a second, 5–15% of its
//! samples spent zeroing (docs/performance/dispatch.md). Each process turns them off at start
//! (the kernel's per-process flag, which the processes it starts inherit — nodes, and the jobs
//! a worker runs); `MIMALLOC_ALLOW_THP` in the environment is the user's and is left as it is.
//!
//! **Freed pages kept in the launcher.** The launcher (the console's process, a headless run)
//! holds every reading of the cluster: jobs, their histories, the alarms' ids. At thousands of
//! jobs a second those maps take new entries at one end and let old ones go at the other, so
//! pages are freed and wanted again within seconds. mimalloc gives a freed page back to the
//! system after a second; a later allocation then faults a fresh, zeroed page in (about 2,800
//! faults a second at 10,000 jobs a second, docs/performance/console.md). Keeping freed pages
//! for ten seconds removes the faults for about 18 MiB more resident memory at that rate, which
//! still goes back once a burst is over.
//!
//! Nodes keep mimalloc's default delay: a node is small and its memory target is tight. A delay
//! given in the environment (`MIMALLOC_PURGE_DELAY`) is the user's and is left as it is.

/// Turns transparent huge pages off for this process and those it starts, unless
/// `MIMALLOC_ALLOW_THP` says otherwise.
pub fn no_huge_pages() {
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
        return;
    }
    #[cfg(target_os = "linux")]
    if let Err(e) = nix::sys::prctl::set_thp_disable(true) {
        tracing::debug!("transparent huge pages stay as they were: {e}");
    }
}

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
    /// The flag is the kernel's, read back as it answers (left alone if the environment
    /// chose).
    #[cfg(target_os = "linux")]
    #[test]
    fn huge_pages_are_turned_off() {
        super::no_huge_pages();
        if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
            assert_eq!(nix::sys::prctl::get_thp_disable(), Ok(true));
        }
    }

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
