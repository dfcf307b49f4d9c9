//! The SPEC's own example (the classic lab's file) parses to the model it describes.

use std::time::Duration;

use tcluster::topology::units::{Rate, Size};
use tcluster::topology::*;

/// The example exactly as the specification writes it.
const SPEC_EXAMPLE: &str = r#"set SYSTEM_NAME "DistributedProcessingSystem"
set VERSION "1.0"
set LOG_LEVEL "INFO"

node coordinator {
    type master
    address "127.0.0.1"
    port 9000
    resources {
        cpu 2
        memory "4GB"
        storage "20GB"
    }
    services {
        job_scheduler true
        load_balancer true
        monitor true
    }
}

connection coordinator -> worker1 {
    protocol "tcp"
    bandwidth "1Gbps"
    latency "10ms"
    encrypted true
}

policy load_balancing {
    algorithm "round_robin"
    health_check_interval 30
    failover true
}
"#;

#[test]
fn the_example_alone_only_lacks_the_worker_it_names() {
    let (topology, report) = check_bytes("classic.top", SPEC_EXAMPLE.as_bytes());
    assert!(topology.is_none());
    assert_eq!(report.errors(), 1, "{}", report.render());
    assert_eq!(report.warnings(), 0, "{}", report.render());
    let d = &report.diagnostics[0];
    assert_eq!(d.message, "unknown node `worker1`");
    assert_eq!(report.source.line_col(d.span.start), (21, 27));
}

#[test]
fn the_example_with_its_worker_gives_the_expected_model() {
    let text = format!("{SPEC_EXAMPLE}\nnode worker1 {{ type worker }}\n");
    let (topology, report) = check_bytes("classic.top", text.as_bytes());
    let t = topology.unwrap_or_else(|| panic!("{}", report.render()));
    assert!(report.diagnostics.is_empty(), "{}", report.render());

    assert_eq!(t.globals.system_name, "DistributedProcessingSystem");
    assert_eq!(t.globals.version.as_deref(), Some("1.0"));
    assert_eq!(t.globals.log_level, LogLevel::Info);
    assert_eq!(t.globals.all.len(), 3);

    assert_eq!(t.nodes.len(), 2);
    let c = t.node("coordinator").unwrap();
    assert_eq!(c.kind, NodeKind::Master);
    assert_eq!(c.role, Some(MasterRole::Primary));
    assert_eq!(c.address, "127.0.0.1");
    assert_eq!(c.port, Some(9000));
    assert_eq!(c.resources.cpu, 2);
    assert_eq!(c.resources.memory, Some(Size(4_000_000_000)));
    assert_eq!(c.resources.storage, Some(Size(20_000_000_000)));
    assert_eq!(
        c.services,
        vec![
            ("job_scheduler".to_string(), true),
            ("load_balancer".to_string(), true),
            ("monitor".to_string(), true)
        ]
    );
    assert_eq!(c.launch, Launch::Process);
    let w = t.node("worker1").unwrap();
    assert_eq!(
        (w.kind, w.role, w.port, w.resources.cpu),
        (NodeKind::Worker, None, None, 1)
    );

    assert_eq!(t.connections.len(), 1);
    let link = t.link("coordinator", "worker1").unwrap();
    assert!(!link.both_ways);
    assert_eq!(link.link.protocol.as_deref(), Some("tcp"));
    assert_eq!(link.link.bandwidth, Some(Rate(1_000_000_000)));
    assert_eq!(link.link.latency, Duration::from_millis(10));
    assert!(link.link.encrypted);
    assert!(t.link("worker1", "coordinator").is_none());

    let lb = &t.policies.load_balancing;
    assert_eq!(lb.algorithm, Algorithm::RoundRobin);
    assert_eq!(lb.health_check_interval, Duration::from_secs(30));
    assert!(lb.failover);
    assert_eq!(t.policies.declared, vec!["load_balancing".to_string()]);
    // Left out, so defaults.
    assert_eq!(t.policies.heartbeat, Heartbeat::default());
    assert_eq!(t.policies.retry, Retry::default());
    assert!(t.users.is_empty() && t.scenarios.is_empty());
}

#[test]
fn count_expands_names_and_ports_and_connections_to_a_group() {
    let text = "node c { type master; port 9000 }\n\
                node w { type worker; count 3; port 9100 }\n\
                connection c <-> w { latency 5ms }\n\
                scenario s { at 1s kill w-2; at 1.5s partition c -> w-3; at 2s skew w-1 -250ms; at 3s heal }\n";
    let (topology, report) = check_bytes("t.top", text.as_bytes());
    let t = topology.unwrap_or_else(|| panic!("{}", report.render()));
    let names: Vec<(&str, Option<u16>)> =
        t.nodes.iter().map(|n| (n.name.as_str(), n.port)).collect();
    assert_eq!(
        names,
        [
            ("c", Some(9000)),
            ("w-1", Some(9100)),
            ("w-2", Some(9101)),
            ("w-3", Some(9102))
        ]
    );
    assert!(t.nodes[1..].iter().all(|n| n.group.as_deref() == Some("w")));
    assert_eq!(t.connections.len(), 6);
    assert!(
        t.link("w-2", "c")
            .is_some_and(|l| l.both_ways && l.link.latency == Duration::from_millis(5))
    );

    let steps = &t.scenario("s").unwrap().steps;
    assert_eq!(steps[0].action, ClusterAction::Kill("w-2".into()));
    assert_eq!(steps[1].at, Duration::from_millis(1500));
    assert_eq!(
        steps[1].action,
        ClusterAction::Partition {
            a: "c".into(),
            b: Some("w-3".into()),
            one_way: true
        }
    );
    assert_eq!(
        steps[2].action,
        ClusterAction::Skew {
            node: "w-1".into(),
            offset_ms: -250
        }
    );
    assert_eq!(steps[3].action, ClusterAction::Heal { a: None, b: None });
}

#[test]
fn every_shipped_topology_is_valid() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/topologies");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "top") {
            let result = load(&path);
            if let Err(LoadError::Invalid(report)) = &result {
                panic!("{}", report.render());
            }
            let (_, report) = result.unwrap();
            assert_eq!(
                report.diagnostics,
                vec![],
                "{} has warnings",
                path.display()
            );
            seen += 1;
        }
    }
    assert!(seen >= 3);
}

#[test]
fn loss_may_be_one_way_or_both() {
    let text = "node c { type master }\nnode w { type worker }\n\
                scenario s { at 1s loss c -> w 20%; at 2s loss c w 5%; at 3s loss c <-> w 0% }\n";
    let (topology, report) = check_bytes("t.top", text.as_bytes());
    let t = topology.unwrap_or_else(|| panic!("{}", report.render()));
    let steps = &t.scenario("s").unwrap().steps;
    let loss = |p: f64, one_way| ClusterAction::Loss {
        a: "c".into(),
        b: "w".into(),
        loss: tcluster::topology::units::Percent(p),
        one_way,
    };
    assert_eq!(steps[0].action, loss(20.0, true));
    assert_eq!(steps[1].action, loss(5.0, false));
    assert_eq!(steps[2].action, loss(0.0, false));
    assert_eq!(steps[0].action.to_string(), "loss c -> w 20%");
    let (_, bad) = check_bytes(
        "t.top",
        b"node c { type master }\nnode w { type worker }\nscenario s { at 1s loss c -> w }\n",
    );
    assert!(bad.render().contains("loss A B 10%"), "{}", bad.render());
}
