//! Classic lab peers, driven over raw TCP with exactly the lines the SPEC writes: workers
//! register, heartbeat and complete jobs; clients submit, are told when jobs are done, and ask
//! for status. A classic worker whose socket closes is dead at once; one that only stops
//! heartbeating is dead after the timeout; either way its job goes to another worker.

mod common;

use common::*;

const TOPOLOGY: &str = "
node coordinator { type master }
policy heartbeat { interval 100ms; suspect_after 300ms; timeout 600ms }
# Classic workers are held to the longer of the timeout and health_check_interval.
policy load_balancing { health_check_interval 2s }
";

fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A classic worker: registers and sends one heartbeat.
fn classic_worker(addr: &str, id: &str) -> Line {
    let mut w = Line::connect(addr);
    w.send(&format!(
        r#"REGISTER:{{"id":"{id}","type":"data_processor"}}"#
    ));
    w.send(&format!("HEARTBEAT:{}", unix_seconds()));
    w
}

/// Waits until the coordinator reports `n` healthy workers.
fn wait_healthy(addr: &str, n: u64) {
    let mut status = Line::connect(addr);
    wait_until(&format!("{n} workers are healthy"), || {
        status.send("STATUS");
        let line = status.recv_starting("STATUS:");
        let report: serde_json::Value = serde_json::from_str(&line["STATUS:".len()..]).unwrap();
        (report["workers"]["healthy"] == n).then_some(())
    });
}

#[test]
fn the_classic_lab_protocol_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(dir.path(), TOPOLOGY);
    let (_coordinator, addr) = coordinator(dir.path(), &topology, &[]);

    let mut worker1 = classic_worker(&addr, "worker1");
    wait_healthy(&addr, 1);

    // A client submits; the worker gets PROCESS_JOB and answers; the client hears JOB_DONE.
    let mut client = Line::connect(&addr);
    client.send("SUBMIT_JOB:relatorio");
    assert_eq!(client.recv().unwrap(), "JOB_ACCEPTED:JOB-1");
    assert_eq!(
        worker1.recv_starting("PROCESS_JOB:"),
        "PROCESS_JOB:JOB-1:relatorio"
    );
    worker1.send("JOB_COMPLETE:JOB-1:Processado_relatorio_por_worker1");
    assert_eq!(
        client.recv().unwrap(),
        "JOB_DONE:JOB-1:Processado_relatorio_por_worker1"
    );

    client.send("STATUS");
    let status = client.recv().unwrap();
    let report: serde_json::Value =
        serde_json::from_str(status.strip_prefix("STATUS:").expect("STATUS: line")).unwrap();
    assert_eq!(report["jobs"]["completed"], 1);
    assert_eq!(report["workers"]["healthy"], 1);

    // A bad line gets an error line and the connection stays usable.
    client.send("SUBMIT_JOB");
    assert!(client.recv().unwrap().starts_with("ERROR:"));
    client.send("STATUS");
    assert!(client.recv().unwrap().starts_with("STATUS:"));

    // worker1 takes a job and its socket closes: dead at once, the job goes to worker2.
    client.send("SUBMIT_JOB:segundo");
    assert_eq!(client.recv().unwrap(), "JOB_ACCEPTED:JOB-2");
    assert_eq!(
        worker1.recv_starting("PROCESS_JOB:"),
        "PROCESS_JOB:JOB-2:segundo"
    );
    let mut worker2 = classic_worker(&addr, "worker2");
    wait_healthy(&addr, 2);
    drop(worker1);
    assert_eq!(
        worker2.recv_starting("PROCESS_JOB:"),
        "PROCESS_JOB:JOB-2:segundo"
    );
    worker2.send("JOB_COMPLETE:JOB-2:Processado_segundo_por_worker2");
    assert_eq!(
        client.recv().unwrap(),
        "JOB_DONE:JOB-2:Processado_segundo_por_worker2"
    );

    // worker3 takes a job and stops heartbeating with its socket open: dead after the timeout,
    // and the job goes to worker2 (which keeps heartbeating meanwhile).
    let mut worker3 = classic_worker(&addr, "worker3");
    worker2.send(&format!("HEARTBEAT:{}", unix_seconds()));
    wait_healthy(&addr, 2);
    // worker2 is idle and round robin goes to the next name: make worker2 busy first.
    client.send("SUBMIT_JOB:ocupado");
    assert_eq!(client.recv().unwrap(), "JOB_ACCEPTED:JOB-3");
    client.send("SUBMIT_JOB:terceiro");
    assert_eq!(client.recv().unwrap(), "JOB_ACCEPTED:JOB-4");
    worker2.send(&format!("HEARTBEAT:{}", unix_seconds()));
    let to_w2 = worker2.recv_starting("PROCESS_JOB:");
    let to_w3 = worker3.recv_starting("PROCESS_JOB:");
    assert_ne!(to_w2, to_w3);
    let (w3_job, w3_data) = {
        let mut parts = to_w3.splitn(3, ':').skip(1);
        (
            parts.next().unwrap().to_string(),
            parts.next().unwrap().to_string(),
        )
    };
    let w2_job = to_w2.split(':').nth(1).unwrap().to_string();
    let w2_data = to_w2.split(':').nth(2).unwrap().to_string();
    worker2.send(&format!(
        "JOB_COMPLETE:{w2_job}:Processado_{w2_data}_por_worker2"
    ));
    // Now only worker2 heartbeats; worker3 is silent until it is declared dead.
    let reassigned = wait_until("worker3's job moves to worker2", || {
        worker2.send(&format!("HEARTBEAT:{}", unix_seconds()));
        std::thread::sleep(std::time::Duration::from_millis(100));
        let mut probe = Line::connect(&addr);
        probe.send(&format!(r#"{{"type":"status","job":"{w3_job}"}}"#));
        let info = probe.recv_type("job_info");
        (info["job"]["worker"] == "worker2").then_some(info)
    });
    assert_eq!(reassigned["job"]["attempts"], 2);
    assert_eq!(
        worker2.recv_starting("PROCESS_JOB:"),
        format!("PROCESS_JOB:{w3_job}:{w3_data}")
    );
    drop(worker3);
}

/// `echo STATUS | nc host port`, and the same for a native request: a client that sends one line
/// and at once closes its side gets the whole answer before the coordinator closes the
/// connection — every time, not most times (the close and the request arrive together).
#[test]
fn a_request_followed_at_once_by_the_end_of_input_is_answered() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(dir.path(), TOPOLOGY);
    let (_coordinator, addr) = coordinator(dir.path(), &topology, &[]);
    let requests = [
        ("STATUS", "STATUS:"),
        ("SUBMIT_JOB:relatorio", "JOB_ACCEPTED:"),
        (r#"{"type":"ping"}"#, r#""type":"pong""#),
        (
            r#"{"type":"submit","data":"echo hi"}"#,
            r#""type":"accepted""#,
        ),
    ];
    for attempt in 0..20 {
        for (request, answer) in requests {
            let mut client = Line::connect(&addr);
            client.send(request);
            client
                .writer_mut()
                .shutdown(std::net::Shutdown::Write)
                .unwrap();
            let mut all = String::new();
            let _ = client.writer_mut().read_to_string(&mut all);
            assert!(
                all.contains(answer),
                "attempt {attempt}: {request} was answered {all:?}"
            );
        }
    }
}
