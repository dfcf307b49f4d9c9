//! No input makes the topology checker panic: arbitrary bytes, and random soups of the
//! language's own tokens (which reach far deeper into the parser and validator than random
//! bytes do).

use proptest::prelude::*;
use tcluster::topology::check_bytes;

/// Words, punctuation and values the language uses, good and bad, so that random sequences
/// form commands that are almost right.
const VOCABULARY: &[&str] = &[
    "set",
    "node",
    "connection",
    "policy",
    "user",
    "scenario",
    "type",
    "master",
    "worker",
    "chat",
    "bot",
    "client",
    "role",
    "primary",
    "backup",
    "port",
    "9000",
    "0",
    "70000",
    "-1",
    "count",
    "3",
    "100000",
    "address",
    "\"127.0.0.1\"",
    "resources",
    "cpu",
    "memory",
    "4GB",
    "services",
    "command",
    "\"python3 w.py\"",
    "launch",
    "inproc",
    "->",
    "<->",
    "<-",
    "{",
    "}",
    ";",
    "\n",
    "#",
    "\"",
    "\"unterminated",
    "\\",
    "\\\n",
    "at",
    "2s",
    "200ms",
    "1m30s",
    "kill",
    "pause",
    "submit",
    "partition",
    "heal",
    "latency",
    "loss",
    "5%",
    "skew",
    "-2s",
    "say",
    "a",
    "b",
    "w",
    "w-1",
    "w-2",
    "c",
    "heartbeat",
    "interval",
    "timeout",
    "misses",
    "load_balancing",
    "algorithm",
    "round_robin",
    "retry",
    "max_attempts",
    "replication",
    "mode",
    "sync",
    "election",
    "bully",
    "bandwidth",
    "1Gbps",
    "jitter",
    "encrypted",
    "true",
    "password",
    "\"pw\"",
    "ç",
    "\u{feff}",
    "\u{1b}",
    "",
    "   ",
    "\t",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let (topology, report) = check_bytes("fuzz.top", &bytes);
        // Whatever happened, an invalid result says why.
        prop_assert!(topology.is_some() || report.errors() > 0);
        let _ = report.render();
    }

    #[test]
    fn token_soups_never_panic(
        words in proptest::collection::vec(proptest::sample::select(VOCABULARY), 0..80),
        separators in proptest::collection::vec(proptest::sample::select(&[" ", " ", "\n", ";", ""][..]), 80),
    ) {
        let mut text = String::new();
        for (word, sep) in words.iter().zip(separators.iter()) {
            text.push_str(word);
            text.push_str(sep);
        }
        let (topology, report) = check_bytes("soup.top", text.as_bytes());
        prop_assert!(topology.is_some() || report.errors() > 0);
        let rendered = report.render();
        // Every error names the file, a line and a column.
        for _ in 0..report.errors() {
            prop_assert!(rendered.contains("soup.top:"));
        }
    }
}
