//! The same roles as in-process tasks: a coordinator and two workers inside the test process,
//! talking over TCP on OS-chosen ports, driven by the client library.

use std::time::Duration;

use tcluster::client::Client;
use tcluster::node::{self, NodeOptions};
use tcluster::protocol::message::{JobState, Message};
use tcluster::role::coordinator::CoordinatorConfig;
use tcluster::role::event::EventKind;
use tcluster::topology::check_bytes;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

const TOPOLOGY: &str =
    "node coordinator { type master }\nnode worker { type worker; count 2; launch inproc }\n";

#[tokio::test]
async fn roles_run_as_in_process_tasks() {
    let (topology, report) = check_bytes("inproc.top", TOPOLOGY.as_bytes());
    let topology = topology.unwrap_or_else(|| panic!("{}", report.render()));
    let shutdown = CancellationToken::new();

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = CoordinatorConfig::from_topology(&topology, "coordinator", 7);
    let coordinator =
        node::coordinator::start(config, listener, Default::default(), shutdown.clone()).unwrap();
    let addr = coordinator.local_addr.to_string();
    let mut events = coordinator.events.subscribe();

    for name in ["worker-1", "worker-2"] {
        let (topology, addr, shutdown) = (topology.clone(), addr.clone(), shutdown.clone());
        tokio::spawn(async move {
            let options = NodeOptions {
                coordinator: Some(addr),
                ..NodeOptions::default()
            };
            node::run(&topology, name, options, shutdown).await.unwrap();
        });
    }
    let mut joined = 0;
    tokio::time::timeout(Duration::from_secs(30), async {
        while joined < 2 {
            if let EventKind::WorkerJoined { .. } = events.recv().await.unwrap().kind {
                joined += 1;
            }
        }
    })
    .await
    .expect("both workers join");

    let mut client = Client::connect(&addr, "test", None).await.unwrap();
    let reply = client
        .request(Message::Submit {
            data: "sleep 50ms".into(),
            count: 4,
            priority: 0,
            token: None,
            notify: true,
        })
        .await
        .unwrap();
    let Message::Accepted { jobs, .. } = reply else {
        panic!("{reply:?}")
    };
    assert_eq!(jobs.len(), 4);
    let mut finished = 0;
    tokio::time::timeout(Duration::from_secs(30), async {
        while finished < 4 {
            if let Message::JobFinished { state, .. } = client.receive().await.unwrap().message {
                assert_eq!(state, JobState::Completed);
                finished += 1;
            }
        }
    })
    .await
    .expect("all jobs finish");

    let Message::WorkerList { workers } = client.request(Message::Workers).await.unwrap() else {
        panic!()
    };
    assert_eq!(workers.iter().map(|w| w.done).sum::<u64>(), 4);
    assert!(
        workers.iter().all(|w| w.done > 0),
        "round robin used both: {workers:?}"
    );
    shutdown.cancel();
    coordinator.wait().await;
}

#[tokio::test]
async fn a_worker_reconnects_when_its_coordinator_comes_back() {
    let (topology, _) = check_bytes("inproc.top", TOPOLOGY.as_bytes());
    let topology = topology.unwrap();
    let config = CoordinatorConfig::from_topology(&topology, "coordinator", 7);

    let first_shutdown = CancellationToken::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let first = node::coordinator::start(
        config.clone(),
        listener,
        Default::default(),
        first_shutdown.clone(),
    )
    .unwrap();
    let addr = first.local_addr;
    let mut events = first.events.subscribe();
    let workers_shutdown = CancellationToken::new();
    {
        let (topology, shutdown) = (topology.clone(), workers_shutdown.clone());
        tokio::spawn(async move {
            let options = NodeOptions {
                coordinator: Some(addr.to_string()),
                ..NodeOptions::default()
            };
            node::run(&topology, "worker-1", options, shutdown)
                .await
                .unwrap();
        });
    }
    let joined = |mut events: tokio::sync::broadcast::Receiver<
        tcluster::role::event::ClusterEvent,
    >| async move {
        tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                if let EventKind::WorkerJoined { worker, .. } = events.recv().await.unwrap().kind {
                    return worker;
                }
            }
        })
        .await
        .expect("the worker registers")
    };
    assert_eq!(joined(events).await, "worker-1");

    // The coordinator goes away, and a new one starts on the same address.
    first_shutdown.cancel();
    first.wait().await;
    let second_shutdown = CancellationToken::new();
    let listener = TcpListener::bind(addr).await.unwrap();
    let second = node::coordinator::start(
        config,
        listener,
        Default::default(),
        second_shutdown.clone(),
    )
    .unwrap();
    events = second.events.subscribe();
    assert_eq!(
        joined(events).await,
        "worker-1",
        "the worker found the new coordinator by itself"
    );

    workers_shutdown.cancel();
    second_shutdown.cancel();
    second.wait().await;
}
