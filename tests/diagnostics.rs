//! Golden tests of the topology diagnostics: every file in `tests/bad/` is checked and its
//! rendered diagnostics compared with the snapshot in `tests/snapshots/`. A file there shows one
//! kind of mistake a student makes; the snapshot is what they will read.
//!
//! To review a changed message: `INSTA_UPDATE=always cargo test --test diagnostics`, then read
//! the diff of `tests/snapshots/` before committing it.

use tcluster::topology::check_bytes;

#[test]
fn bad_topologies_give_clear_diagnostics() {
    insta::glob!("bad/*.top", |path| {
        let bytes = std::fs::read(path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy();
        let (topology, report) = check_bytes(&name, &bytes);
        let valid = if topology.is_some() {
            "valid"
        } else {
            "invalid"
        };
        insta::assert_snapshot!(format!("{valid}\n{}", report.render()));
    });
}
