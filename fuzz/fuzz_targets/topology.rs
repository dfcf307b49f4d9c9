//! Feeds arbitrary bytes to the topology checker and renders whatever it reports. Any panic,
//! stack overflow or runaway allocation is a bug.
//!
//!     cargo fuzz run topology            (from the repository root; see fuzz/README.md)

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (topology, report) = tcluster::topology::check_bytes("fuzz.top", data);
    assert!(topology.is_some() || report.errors() > 0);
    let _ = report.render();
});
