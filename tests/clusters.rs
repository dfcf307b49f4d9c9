//! Several clusters in one topology (`cluster NAME` on nodes): each is a cluster of its own —
//! its primary, its backups, its workers — and masters of different clusters are peers, never in
//! each other's election. A file without `cluster` keys is one default cluster, as before.

mod common;

use tcluster::console::app::{App, NodeRow};
use tcluster::console::command::{Parsed, parse};
use tcluster::console::config::Config;
use tcluster::role::coordinator::{CoordinatorConfig, master_ranks};
use tcluster::topology::{ClusterAction, DEFAULT_CLUSTER, MasterRole, Topology, check_bytes};

const TWO: &str = r#"
node server-1 { type master; cluster east; port 7800 }
node backup-1 { type master; cluster east; port 7802 }
node server-2 { type master; cluster west; port 7801 }
node east     { type worker; cluster east; count 3 }
node west     { type worker; cluster west; count 3 }
policy lending { queue_threshold 6; max_lend 1 }
scenario rush { at 0s submit "sleep 300ms" count 60 to east }
"#;

fn topology(text: &str) -> Topology {
    let (topology, report) = check_bytes("t.top", text.as_bytes());
    topology.unwrap_or_else(|| panic!("{}", report.render()))
}

#[test]
fn each_cluster_has_its_own_primary_and_election() {
    let t = topology(TWO);
    assert_eq!(t.clusters(), ["east", "west"]);
    assert!(t.has_clusters());
    assert_eq!(t.primary_of("east").unwrap().name, "server-1");
    assert_eq!(t.primary_of("west").unwrap().name, "server-2");
    // The first master of each cluster is its primary; the others of that cluster its backups.
    assert_eq!(t.node("backup-1").unwrap().role, Some(MasterRole::Backup));
    assert_eq!(t.node("server-2").unwrap().role, Some(MasterRole::Primary));
    assert_eq!(t.node("west-2").unwrap().cluster, "west");

    // The Bully election of a cluster ranks only its own masters.
    assert_eq!(
        master_ranks(&t, "east"),
        [("server-1".to_string(), 2), ("backup-1".to_string(), 1)]
    );
    assert_eq!(master_ranks(&t, "west"), [("server-2".to_string(), 1)]);
    let east = CoordinatorConfig::from_topology(&t, "backup-1", 1);
    let peers: Vec<&str> = east.peers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(peers, ["server-1"], "a master of west is no backup of east");
    assert_eq!(east.primary.as_deref(), Some("server-1"));
    let west = CoordinatorConfig::from_topology(&t, "server-2", 1);
    assert!(west.peers.is_empty());
    assert_eq!(west.role, MasterRole::Primary);
}

#[test]
fn lending_policy_and_submit_to_a_cluster_are_read() {
    let t = topology(TWO);
    let lending = t.policies.lending.expect("the file has policy lending");
    assert_eq!(lending.queue_threshold, 6);
    assert_eq!(lending.max_lend, 1);
    // Keys left out take their defaults.
    assert_eq!(lending.idle_before_lend.as_millis(), 500);
    assert_eq!(lending.return_after_idle.as_secs(), 2);
    let step = &t.scenario("rush").unwrap().steps[0];
    assert_eq!(
        step.action,
        ClusterAction::Submit {
            data: "sleep 300ms".into(),
            count: 60,
            priority: 0,
            cluster: Some("east".into()),
        }
    );
    assert_eq!(
        step.action.to_string(),
        "submit \"sleep 300ms\" count 60 to east"
    );
}

#[test]
fn a_file_without_clusters_is_one_default_cluster_without_lending() {
    let t = topology(
        "node coordinator { type master }\nnode backup { type master }\nnode worker { type worker; count 2 }\n",
    );
    assert_eq!(t.clusters(), [DEFAULT_CLUSTER]);
    assert!(!t.has_clusters());
    assert!(t.policies.lending.is_none());
    assert_eq!(t.primary().unwrap().name, "coordinator");
    assert_eq!(t.node("worker-1").unwrap().cluster, DEFAULT_CLUSTER);
    assert_eq!(master_ranks(&t, DEFAULT_CLUSTER).len(), 2);
}

#[test]
fn the_console_submits_to_a_cluster_it_knows() {
    let nodes = vec![NodeRow::new("server-1", "master")];
    let mut app = App::new("t", "server-1", nodes, Config::default());
    app.clusters = vec!["east".into(), "west".into()];
    let submit = |data: &str, count, cluster: Option<&str>| {
        Ok(Parsed::Act(ClusterAction::Submit {
            data: data.into(),
            count,
            priority: 0,
            cluster: cluster.map(str::to_string),
        }))
    };
    assert_eq!(
        parse("submit 5 sleep 1s to east", &app),
        submit("sleep 1s", 5, Some("east"))
    );
    assert_eq!(parse("submit sleep 1s", &app), submit("sleep 1s", 1, None));
    // `to` followed by a word that is no cluster is part of the job's data.
    assert_eq!(
        parse("submit echo go to bed", &app),
        submit("echo go to bed", 1, None)
    );
}

/// The console on two clusters: each node's cluster in a column, a lent worker tagged with the
/// cluster it works for, judged by its own cluster's events (not the other's), and its load
/// read at the borrower.
#[test]
fn the_console_shows_each_nodes_cluster_and_who_is_lent() {
    use common::lecture::*;
    use tcluster::cluster::event::EventKind;
    use tcluster::console::update::update;
    use tcluster::view::{Faults, Process, Verdict};

    let status = |name: &str, kind: &str, cluster: &str| {
        tcluster::console::keymap::Action::Update(tcluster::supervisor::Update::Node(
            tcluster::view::NodeStatus {
                name: name.into(),
                kind: kind.into(),
                process: Process::Running,
                pid: Some(100),
                address: None,
                faults: Faults::default(),
                cluster: cluster.into(),
            },
        ))
    };
    let mut app = App::new("lending", "server-1", Vec::new(), Config::default());
    app.clusters = vec!["east".into(), "west".into()];
    app.main_cluster = "east".into();
    app.others.insert(
        "west".into(),
        tcluster::view::Reading::new(tcluster::view::ClusterView::new("server-2", 1, false)),
    );
    let joined = |w: &str| EventKind::WorkerJoined {
        worker: w.into(),
        slots: 1,
        classic: false,
    };
    let mut actions = vec![
        status("server-1", "master", "east"),
        status("server-2", "master", "west"),
        status("east-1", "worker", "east"),
        status("west-1", "worker", "west"),
    ];
    actions.extend([
        event_from("server-1", 10, joined("east-1")),
        event_from("server-2", 10, joined("west-1")),
        event_from(
            "server-2",
            500,
            EventKind::WorkerLent {
                worker: "west-1".into(),
                to: "east".into(),
            },
        ),
        event_from("server-1", 510, joined("west-1")),
        event_from(
            "server-1",
            510,
            EventKind::WorkerBorrowed {
                worker: "west-1".into(),
                from: "west".into(),
            },
        ),
        event_from(
            "server-1",
            520,
            EventKind::JobSubmitted {
                job: tcluster::protocol::message::JobId(1),
                data: "sleep 1s".into(),
                priority: 0,
                by: "alice".into(),
            },
        ),
        event_from(
            "server-1",
            530,
            EventKind::JobAssigned {
                job: tcluster::protocol::message::JobId(1),
                worker: "west-1".into(),
                attempt: 1,
            },
        ),
    ]);
    for action in actions {
        update(&mut app, action);
    }
    // West's events stay out of east's reading.
    assert_eq!(
        app.cluster.read().state.workers.len(),
        2,
        "east-1 and the borrowed west-1"
    );
    assert_eq!(app.others["west"].read().state.workers.len(), 1);
    let west_1 = row(&app, "west-1");
    assert_eq!(app.lent_to(west_1).as_deref(), Some("east"));
    assert_eq!(app.verdict(west_1), Verdict::Healthy);
    let screen = render(&mut app, 160, 48);
    assert!(screen.contains("CLUSTER"), "{screen}");
    let line = screen
        .lines()
        .find(|l| l.contains("west-1"))
        .expect("west-1's row");
    assert!(line.contains("west"), "{line}");
    assert!(line.contains("lent to east"), "{line}");
    assert!(line.contains("1/1"), "its load at the borrower: {line}");

    // The map: each cluster in its band, the lent worker tagged, at every size.
    update(
        &mut app,
        tcluster::console::keymap::Action::Show(tcluster::console::app::View::Map),
    );
    for (w, h) in [(80, 24), (120, 36), (160, 48)] {
        let map = render(&mut app, w, h);
        for text in ["cluster east", "cluster west", "west-1", "lent to east"] {
            assert!(map.contains(text), "{text:?} at {w}×{h}:\n{map}");
        }
    }
}

/// A flooded borrower lent fewer workers than it asked for (its owner lends only workers idle
/// long enough) asks again for the rest once they arrive, and stops at `max_lend`.
#[test]
fn a_borrower_lent_fewer_than_it_wants_asks_again_for_the_rest() {
    use tcluster::protocol::Dialect;
    use tcluster::protocol::message::{Envelope, Message};
    use tcluster::role::coordinator::{Coordinator, Input, Output, PeerCluster, PeerMaster};
    let env = |from: &str, message| Envelope {
        from: from.into(),
        clock: 0,
        term: None,
        message,
    };
    let mut config = CoordinatorConfig::for_tests("server-1");
    config.cluster = "east".into();
    config.address = Some("server-1:0".into());
    config.lending = Some(tcluster::topology::Lending::default());
    config.clusters.push(PeerCluster {
        name: "west".into(),
        masters: vec![PeerMaster {
            name: "server-2".into(),
            address: "server-2:0".into(),
            rank: 0,
        }],
    });
    let mut c = Coordinator::new(config);
    let register = |owner: Option<&str>| Message::Register {
        slots: 1,
        running: vec![],
        owner: owner.map(str::to_string),
    };
    let submit = Message::Submit {
        data: "sleep 9s".into(),
        count: 20,
        priority: 0,
        token: None,
        notify: false,
    };
    for (conn, from, message) in [(1, "east-1", register(None)), (2, "client", submit)] {
        c.step(0, Input::Connected(conn));
        c.step(
            0,
            Input::Received(conn, Dialect::Native, env(from, message)),
        );
    }
    // What the borrower asks of west's primary on a tick, if anything.
    let asked = |outputs: Vec<Output>| -> Vec<u32> {
        outputs
            .into_iter()
            .filter_map(|o| match o {
                Output::ToMaster {
                    master, envelope, ..
                } if master == "server-2" => match envelope.message {
                    Message::WorkerRequest { want, .. } => Some(want),
                    _ => None,
                },
                _ => None,
            })
            .collect()
    };
    let mut now = 100;
    assert_eq!(
        asked(c.step(now, Input::Tick)),
        [2],
        "19 jobs wait: two asked for"
    );
    // West had one worker idle long enough.
    let lend = |c: &mut Coordinator, now: u64, conn: u64, worker: &str| {
        let available = Message::Available {
            cluster: "west".into(),
            workers: vec![worker.to_string()],
        };
        c.step(
            now,
            Input::FromMaster {
                master: "server-2".into(),
                reply: Some(env("server-2", available)),
            },
        );
        c.step(now, Input::Connected(conn));
        c.step(
            now,
            Input::Received(conn, Dialect::Native, env(worker, register(Some("west")))),
        );
        assert_eq!(
            c.state().workers[worker].owner.as_deref(),
            Some("west"),
            "{worker} is borrowed"
        );
    };
    lend(&mut c, now, 3, "west-1");
    now += 10;
    assert_eq!(asked(c.step(now, Input::Tick)), [1], "one more is wanted");
    lend(&mut c, now, 4, "west-2");
    // (Within the heartbeat's timeout: a borrowed worker that went silent would be wanted again.)
    for _ in 0..15 {
        now += 100;
        assert!(
            asked(c.step(now, Input::Tick)).is_empty(),
            "max_lend (2) borrowed: no more asked"
        );
    }
}
