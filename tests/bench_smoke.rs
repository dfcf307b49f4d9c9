//! The benchmarks still run: `tcluster bench all` with tiny numbers, and its JSON has every
//! report. No timing is checked here (benchmarks are not tests; docs/PERFORMANCE.md has the
//! figures and how they were measured).

mod common;

use common::*;

#[test]
fn every_benchmark_runs_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let startup = topology(dir.path(), &demo_on_free_ports());
    let report = bench_json(&[
        "all",
        "--runs",
        "1",
        "--jobs",
        "200",
        "--round-trips",
        "20",
        "--posts",
        "200",
        "--subscribers",
        "3",
        "--paced",
        "2000",
        "--lines",
        "2000",
        "--no-journal",
        "--topology",
        startup.to_str().expect("a UTF-8 path"),
    ]);
    assert_eq!(report["dispatch"]["jobs"], 200, "{report}");
    assert!(report["dispatch"]["jobs_per_second"].as_f64().unwrap() > 0.0);
    assert_eq!(report["dispatch"]["round_trip"]["n"], 20, "{report}");
    assert_eq!(report["detect"]["kill_detected"]["n"], 1, "{report}");
    assert_eq!(report["detect"]["stop_detected"]["n"], 1, "{report}");
    assert_eq!(report["failover"]["serving"]["n"], 1, "{report}");
    assert_eq!(report["chat"]["posts"], 200, "{report}");
    assert_eq!(report["chat"]["lost"], 0, "{report}");
    // Its latency run at the rate asked for, not half its throughput.
    assert_eq!(report["chat"]["paced_posts_per_second"], 2000.0, "{report}");
    assert_eq!(report["chat"]["paced_as_given"], true, "{report}");
    // Its subscribers asked for MessagePack frames (the default) and read them whole.
    assert_eq!(report["chat"]["encoding"], "msgpack", "{report}");
    // The chat server and the clients run here: their CPU per delivery is read from /proc.
    for key in ["server_cpu_per_delivery_us", "client_cpu_per_delivery_us"] {
        let cpu = report["chat"][key].as_f64();
        assert!(cpu.is_some_and(|us| us >= 0.0), "{key}: {report}");
    }
    // And over the throughput run alone: per delivery and as a share of a core.
    for key in ["throughput_server_cpu", "throughput_client_cpu"] {
        let cpu = &report["chat"][key];
        assert!(
            cpu["per_delivery_us"].as_f64().is_some_and(|us| us >= 0.0),
            "{key}: {report}"
        );
        assert!(
            cpu["of_a_core"].as_f64().is_some_and(|s| s >= 0.0),
            "{key}: {report}"
        );
    }
    // And how long the server's loop and the clients' thread waited for a core in the latency
    // run (Linux's schedstat of each process's main thread).
    for key in ["server_ms", "clients_ms"] {
        let waited = report["chat"]["latency_waited_for_a_core"][key].as_f64();
        assert!(waited.is_some_and(|ms| ms >= 0.0), "{key}: {report}");
    }
    assert_eq!(report["startup"]["nodes"], 8, "{report}");
    // topologies/lending.top's rush, with lending and without.
    assert_eq!(report["lending"]["with_lending"]["n"], 1, "{report}");
    assert_eq!(report["lending"]["without_lending"]["n"], 1, "{report}");
    assert_eq!(report["lending"]["first_borrowed_job"]["n"], 1, "{report}");
    // The console's own work, without nodes: log lines read and kept, and frames drawn.
    assert_eq!(report["ingest"]["lines"], 2000, "{report}");
    assert!(report["ingest"]["lines_per_second"].as_f64().unwrap() > 0.0);
    assert_eq!(report["draw"]["jobs"], 200, "{report}");
    let cases = report["draw"]["cases"].as_array().expect("draw cases");
    let views: Vec<&str> = cases.iter().filter_map(|c| c["view"].as_str()).collect();
    assert_eq!(
        views,
        ["overview", "overview", "timeline", "map"],
        "{report}"
    );
    assert_eq!(cases[0]["log_lines"], 2000, "{report}");
    assert_eq!(cases[1]["log_lines"], 1000, "{report}");
    assert!(cases.iter().all(|c| c["frame"]["n"] == 300), "{report}");
}

/// `tcluster bench WHAT … --json`, run from the project's directory: its one JSON object.
fn bench_json(args: &[&str]) -> serde_json::Value {
    let out = tcluster()
        .arg("bench")
        .args(args)
        .arg("--json")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).expect("one JSON object")
}

/// With the journal: each durability mode is taken, and the disk's own floor is measured
/// beside the round trip.
#[test]
fn dispatch_with_the_journal_measures_the_disk_beside_it() {
    let report = bench_json(&[
        "dispatch",
        "--jobs",
        "100",
        "--round-trips",
        "20",
        "--durability",
        "group 1ms",
    ]);
    let dispatch = &report["dispatch"];
    assert_eq!(dispatch["durability"], "group 1ms", "{report}");
    assert_eq!(dispatch["round_trip"]["n"], 20, "{report}");
    assert_eq!(dispatch["disk"]["fsync"]["n"], 20, "{report}");
    assert_eq!(dispatch["disk"]["commit"]["n"], 20, "{report}");
    assert!(
        dispatch["ping_beside_jobs"]["n"].as_u64().unwrap() > 0,
        "{report}"
    );
}

/// The console under load: the real console in a terminal, its own frame times read back.
#[test]
fn the_console_under_load_reports_its_frames() {
    let report = bench_json(&["console", "--rate", "200"]);
    let console = &report["console"];
    assert_eq!(console["size"], "200×60", "{report}");
    assert!(console["frame"]["n"].as_u64().unwrap() > 0, "{report}");
    assert!(
        console["jobs_per_second"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    assert!(console["cpu_percent"].as_f64().is_some(), "{report}");
    // The nodes it launched worked too (a coordinator and four workers, 200 jobs a second).
    assert!(
        console["nodes_cpu_percent"].as_f64().unwrap() > 0.0,
        "{report}"
    );
}

/// Runs `tcluster ARGS`, which must be refused as a usage error (exit code 2); returns what it
/// printed and what it said on stderr.
fn refused(args: &[&str]) -> (std::process::Output, String) {
    let out = tcluster().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    (out, stderr)
}

/// A count that is not one is refused before anything runs, naming the flag.
#[test]
fn a_bad_count_is_a_usage_error_that_names_its_flag() {
    for (what, flag, bad) in [
        ("ingest", "--lines", "many"),
        ("draw", "--lines", "1.5"),
        ("draw", "--jobs", "1e5"),
    ] {
        let (out, stderr) = refused(&["bench", what, flag, bad]);
        assert!(stderr.contains(flag), "{what} {flag} {bad}: {stderr}");
        assert!(
            out.stdout.is_empty(),
            "{what} {flag} {bad}: nothing measured"
        );
    }
}

/// `--durability` is read as the topology's `policy journal` (dispatch) or `policy chat` (chat)
/// reads it; anything either refuses is a usage error that says why, before anything starts.
/// The chat history offers `sync` and `periodic` only.
#[test]
fn a_bad_durability_is_a_usage_error_that_says_what_is_allowed() {
    for (what, bad, says) in [
        ("dispatch", "sometimes", "sync | group"),
        ("dispatch", "group 1s", "--durability"),
        ("dispatch", "periodic", "--durability"),
        ("chat", "group 1ms", "already commits once per batch"),
        ("chat", "none", "would grow until the server stops"),
        ("chat", "sometimes", "unknown durability"),
    ] {
        let (out, stderr) = refused(&["bench", what, "--durability", bad]);
        assert!(
            stderr.contains("--durability") && stderr.contains(says),
            "{what} {bad}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{what} {bad}: nothing measured");
    }
}

/// `bench chat --durability periodic …` keeps the history on disk with that durability, and
/// says so.
#[test]
fn a_chat_run_with_periodic_durability_says_which_it_measured() {
    let report = bench_json(&[
        "chat",
        "--posts",
        "200",
        "--subscribers",
        "3",
        "--paced",
        "2000",
        "--durability",
        "periodic 10ms",
    ]);
    assert_eq!(report["chat"]["history_on_disk"], true, "{report}");
    assert_eq!(report["chat"]["durability"], "periodic 10ms", "{report}");
    assert_eq!(report["chat"]["lost"], 0, "{report}");
}

#[test]
fn a_bad_benchmark_name_is_a_usage_error() {
    let (_, stderr) = refused(&["bench", "dispach"]);
    assert!(stderr.contains("dispatch"), "{stderr}");
}

/// `bench chat --paced` with a rate that is not one is a usage error that names the value,
/// before anything is started.
#[test]
fn a_bad_paced_rate_is_a_usage_error_naming_it() {
    for (bad, says) in [
        ("0", "is not a rate: posts a second, above zero"),
        ("fast", "expected a rate such as"),
        ("5/fortnight", "expected a rate such as"),
    ] {
        let (_, err) = refused(&["bench", "chat", "--paced", bad]);
        assert!(
            err.contains(&format!("`{bad}`")) && err.contains(says),
            "{bad}: {err}"
        );
    }
}

/// `bench chat --encoding` names one of the two encodings; anything else is a usage error that
/// says which there are.
#[test]
fn a_bad_chat_encoding_is_a_usage_error_naming_both() {
    let (_, err) = refused(&["bench", "chat", "--encoding", "cbor"]);
    assert!(
        err.contains("`cbor`") && err.contains("json and msgpack"),
        "{err}"
    );
}

/// `bench chat --posts` and `--subscribers` take one or more: zero, or not a number, is a usage
/// error naming the value, before anything is started.
#[test]
fn a_chat_count_of_zero_or_garbage_is_a_usage_error_naming_it() {
    for flag in ["--posts", "--subscribers"] {
        for (bad, says) in [
            ("0", "is not a count: one or more"),
            ("many", "is not a count"),
        ] {
            let (_, err) = refused(&["bench", "chat", flag, bad]);
            assert!(
                err.contains(flag) && err.contains(&format!("`{bad}`")) && err.contains(says),
                "{flag} {bad}: {err}"
            );
        }
    }
}

/// The scripts that run a peer beside tcluster refuse a count that is not one (rounds, posts,
/// jobs) with a usage error naming it, before they install or start anything.
#[test]
fn the_peer_scripts_refuse_a_bad_count_before_anything_starts() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for (script, args, named) in [
        ("bench/redis/run.sh", &["50", "20000", "x"][..], "ROUNDS"),
        ("bench/redis/run.sh", &["50", "0"][..], "POSTS"),
        ("bench/celery/run.sh", &["5000", "-3"][..], "ROUND_TRIPS"),
        (
            "bench/celery/run.sh",
            &["5000", "300", "50000", "1.5"][..],
            "ROUNDS",
        ),
    ] {
        let out = std::process::Command::new("bash")
            .arg(root.join(script))
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{script} {args:?}: {stderr}");
        assert!(
            stderr.contains(named) && stderr.contains(args[args.len() - 1]),
            "{script} {args:?}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{script} {args:?}: nothing ran");
    }
}
