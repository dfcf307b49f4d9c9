//! A whole coordinator fed arbitrary lines from a few connections, with ticks between them.
//! After every step the state's invariants hold (`ClusterState::check_invariants`: a job waits
//! only while queued, no worker holds more jobs than its slots or a job not assigned to it), the
//! term never goes down, and nothing panics. Compaction runs every 100 events, keeping 2
//! finished jobs.
//!
//!     cargo fuzz run coordinator

#![no_main]

use libfuzzer_sys::fuzz_target;
use tcluster::protocol::{Dialect, decode};
use tcluster::role::coordinator::{Coordinator, CoordinatorConfig, Input};

fuzz_target!(|data: &[u8]| {
    let mut config = CoordinatorConfig::for_tests("coordinator");
    // Compaction as often as it may run, so the fuzzer reaches it.
    config.retention = tcluster::topology::Retention {
        keep_done: 2,
        compact_every: 100,
    };
    let mut c = Coordinator::new(config);
    let mut now = 0;
    let mut term = c.term();
    for conn in 1..=4 {
        c.step(now, Input::Connected(conn));
    }
    for line in data.split(|b| *b == b'\n') {
        let (head, rest) = line.split_first().unwrap_or((&0, &[]));
        let conn = u64::from(head % 5);
        let input = match head % 16 {
            15 => {
                now += u64::from(*head);
                Input::Tick
            }
            14 => Input::Disconnected(conn),
            13 => Input::Connected(conn),
            _ => {
                let Ok(text) = std::str::from_utf8(rest) else { continue };
                let dialect = if head % 2 == 0 { Dialect::Native } else { Dialect::Classic };
                match decode(dialect, text, "") {
                    Ok(envelope) => Input::Received(conn, dialect, envelope),
                    Err(_) => continue,
                }
            }
        };
        c.step(now, input);
        assert!(c.term() >= term, "the term went down");
        term = c.term();
        if let Err(broken) = c.state().check_invariants() {
            panic!("{broken}");
        }
    }
});
