//! `tcluster bench WHAT`: runs benchmarks on real nodes (see [`crate::bench`]) and prints a
//! table, or one JSON object with `--json`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use crate::bench;
use crate::protocol::message::Encoding;
use crate::topology::units::parse_duration;

/// `tcluster bench` arguments.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Which benchmark.
    #[arg(value_enum)]
    pub what: What,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
    /// How many rounds for detect, failover and startup.
    #[arg(long, default_value_t = 7)]
    pub runs: usize,
    /// dispatch: jobs in the throughput run (default 20,000); draw: jobs the console holds
    /// (default 100,000).
    #[arg(long)]
    pub jobs: Option<u64>,
    /// dispatch: worker processes.
    #[arg(long, default_value_t = 4)]
    pub workers: u32,
    /// dispatch: job slots per worker.
    #[arg(long, default_value_t = 8)]
    pub slots: u32,
    /// dispatch and chat: without the coordinator's journal or the chat history on disk (as
    /// `tcluster node` without --state-dir).
    #[arg(long)]
    pub no_journal: bool,

    /// dispatch: when the journal's commits reach the disk (`sync`, `group 1ms`, `periodic
    /// 10ms`, `none`: `policy journal { durability … }`); chat: when the history's do (`sync`,
    /// `periodic 10ms`: `policy chat { durability … }`)
    #[arg(long, default_value = "sync", value_name = "DURABILITY")]
    pub durability: String,
    /// dispatch: single-job round trips measured.
    #[arg(long, default_value_t = 1000)]
    pub round_trips: usize,
    /// detect and verdicts: heartbeat interval in milliseconds.
    #[arg(long, default_value_t = 50)]
    pub heartbeat_ms: u64,
    /// detect and verdicts: silence in milliseconds after which a worker is dead.
    #[arg(long, default_value_t = 200)]
    pub timeout_ms: u64,
    /// soak and verdicts: how long (`1h`, `10m`).
    #[arg(long = "for", alias = "duration", default_value = "10m", value_parser = parse_duration)]
    pub duration: std::time::Duration,
    /// soak and verdicts: busy threads burning CPU beside the cluster (default: none for soak,
    /// one per core for verdicts).
    #[arg(long)]
    pub load: Option<usize>,
    /// soak: one job (`sleep 100ms`) submitted this often.
    #[arg(long, default_value = "50ms", value_parser = parse_duration)]
    pub job_every: std::time::Duration,
    /// soak: memory sampled this often (and at the start and the end).
    #[arg(long, default_value = "1m", value_parser = parse_duration)]
    pub sample_every: std::time::Duration,
    /// chat: subscribers.
    #[arg(long, default_value_t = 50, value_parser = at_least_one)]
    pub subscribers: usize,
    /// chat: posts in the throughput run (20,000 take about a second: long enough that one
    /// stall of the machine does not decide the figure).
    #[arg(long, default_value_t = 20_000, value_parser = at_least_one)]
    pub posts: usize,
    /// chat: posts the publisher keeps unanswered.
    #[arg(long, default_value_t = 64)]
    pub window: usize,
    /// chat: run the latency part at this many posts a second instead of half the measured
    /// throughput (to compare two servers at one load).
    #[arg(long, value_name = "RATE", value_parser = positive_rate)]
    pub paced: Option<f64>,
    /// chat: how the subscribers ask the chat server for their deliveries: `msgpack` (frames)
    /// or `json` (lines, what `nc` shows).
    #[arg(long, default_value = "msgpack", value_parser = parse_encoding)]
    pub encoding: Encoding,
    /// chat: measure Redis pub/sub at this address instead (a redis-server you started), with
    /// the same clients, for comparison.
    #[arg(long, value_name = "HOST:PORT")]
    pub redis: Option<String>,
    /// console: jobs per second submitted while the console draws (for ten seconds).
    #[arg(long, default_value_t = 10_000.0)]
    pub rate: f64,
    /// console: where the links' faults are applied (the console's `--shaping`).
    #[arg(long, value_enum, default_value_t)]
    pub shaping: crate::supervisor::Shaping,
    /// ingest and draw: log lines parsed, or held by the console.
    #[arg(long, default_value_t = 1_000_000)]
    pub lines: usize,
    /// journal: stop at 100k jobs (1M takes a few minutes).
    #[arg(long)]
    pub quick: bool,
    /// startup, soak and lending: the topology to launch (lending: topologies/lending.top).
    #[arg(long, default_value = "topologies/demo.top")]
    pub topology: PathBuf,
}

/// The benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum What {
    /// No-op jobs through worker processes: jobs/s, and one job's round trip.
    Dispatch,
    /// SIGKILL and SIGSTOP of a worker until it is declared dead; its jobs reassigned.
    Detect,
    /// The console on a topology for a long while with a steady job stream: memory of every
    /// process, and false suspects and deaths.
    Soak,
    /// Healthy workers under CPU load for a while, counting false suspects and deaths.
    Verdicts,
    /// SIGKILL of the primary until the backup serves.
    Failover,
    /// Deliveries/s from a chat server to many subscribers; latency at half load.
    Chat,
    /// Launch of a topology until every node is ready.
    Startup,
    /// Restart time and bytes on disk after 10k, 100k and 1M completed jobs.
    Journal,
    /// topologies/lending.top's rush with lending and without; submit → first borrowed job.
    Lending,
    /// The console at 200×60 while its cluster completes 10,000 jobs/s: frame time and CPU.
    Console,
    /// The console's frame at 200×60 with 200 nodes, 100k jobs and 1M log lines (no nodes).
    Draw,
    /// Log lines as nodes write them, parsed and into the console's ring, on one core.
    Ingest,
    /// The quick ones, in this order: dispatch, detect, failover, chat, startup, lending, ingest,
    /// draw.
    All,
}

/// Runs `tcluster bench`.
pub fn run(args: BenchArgs) -> ExitCode {
    let program = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: cannot find the tcluster program: {e}");
            return ExitCode::from(1);
        }
    };
    // One thread, like the nodes: the client side of a measurement should not add hand-offs
    // between threads to what it measures.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let which: Vec<What> = match args.what {
        What::All => vec![
            What::Dispatch,
            What::Detect,
            What::Failover,
            What::Chat,
            What::Startup,
            What::Lending,
            What::Ingest,
            What::Draw,
        ],
        one => vec![one],
    };
    for what in &which {
        if let Some(error) = durability_error(*what, &args.durability) {
            let name = format!("{what:?}").to_lowercase();
            eprintln!("error: --durability {} ({name}): {error}", args.durability);
            return ExitCode::from(2);
        }
    }
    let mut json = serde_json::Map::new();
    for what in which {
        let name = format!("{what:?}").to_lowercase();
        if !args.json {
            eprintln!("running {name} …");
        }
        let result = runtime.block_on(measure(what, &program, &args));
        match result {
            Ok((table, value)) => {
                if args.json {
                    json.insert(name, value.unwrap_or_default());
                } else {
                    outln!("{table}");
                }
            }
            Err(e) => {
                eprintln!("error: {name}: {e}");
                return ExitCode::from(1);
            }
        }
    }
    if args.json {
        outln!("{}", serde_json::Value::Object(json));
    }
    ExitCode::SUCCESS
}

/// Runs one benchmark: its table for people, and its figures as JSON.
async fn measure(
    what: What,
    program: &Path,
    args: &BenchArgs,
) -> Result<(String, serde_json::Result<serde_json::Value>), bench::BenchError> {
    Ok(match what {
        What::Dispatch => {
            let r = bench::dispatch(
                program,
                args.workers.max(1),
                args.slots.max(1),
                args.jobs.unwrap_or(20_000).max(1),
                args.round_trips.max(1),
                (!args.no_journal).then_some(args.durability.as_str()),
            )
            .await?;
            (r.table(), serde_json::to_value(&r))
        }
        What::Detect => {
            let r = bench::detect(
                program,
                args.heartbeat_ms.max(1),
                args.timeout_ms.max(1),
                args.runs.max(1),
            )
            .await?;
            (r.table(), serde_json::to_value(&r))
        }
        What::Soak => {
            let plan = bench::SoakPlan {
                topology: &args.topology,
                duration: args.duration,
                job_every: args.job_every,
                sample_every: args.sample_every,
                load_threads: args.load.unwrap_or(0),
            };
            let r = bench::soak(program, plan).await?;
            (r.table(), serde_json::to_value(&r))
        }
        What::Verdicts => {
            let load = args
                .load
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
            let r = bench::verdicts(
                program,
                args.heartbeat_ms.max(1),
                args.timeout_ms.max(1),
                args.duration,
                load,
            )
            .await?;
            (r.table(), serde_json::to_value(&r))
        }
        What::Console => {
            let rate = if args.rate.is_finite() && args.rate >= 1.0 {
                args.rate
            } else {
                10_000.0
            };
            let ten = std::time::Duration::from_secs(10);
            let r = bench::frames(program, rate, ten, args.shaping).await?;
            (r.table(), serde_json::to_value(&r))
        }
        What::Draw => {
            let r = bench::draw(args.jobs.unwrap_or(100_000), args.lines)?;
            (r.table(), serde_json::to_value(&r))
        }
        What::Ingest => {
            let r = bench::ingest(args.lines)?;
            (r.table(), serde_json::to_value(&r))
        }
        What::Failover => {
            let r = bench::failover(program, args.runs.max(1)).await?;
            (r.table(), serde_json::to_value(&r))
        }
        What::Chat => {
            let fan = bench::FanOut {
                subscribers: args.subscribers.max(1),
                posts: args.posts.max(1),
                window: args.window.max(1),
                paced: args.paced,
                encoding: args.encoding,
            };
            let r = match args.redis.as_deref() {
                Some(redis) => bench::redis_chat(redis, fan).await?,
                None => {
                    let history = (!args.no_journal).then_some(args.durability.as_str());
                    bench::chat(program, fan, history).await?
                }
            };
            (r.table(), serde_json::to_value(&r))
        }
        What::Journal => {
            let counts: &[u64] = if args.quick {
                &[10_000, 100_000]
            } else {
                &[10_000, 100_000, 1_000_000]
            };
            let r = bench::journal(counts, 100_000)?;
            (r.table(), serde_json::to_value(&r))
        }
        What::Lending => {
            // The topology given, if it lends; else topologies/lending.top.
            let lends = crate::topology::load(&args.topology)
                .is_ok_and(|(t, _)| t.policies.lending.is_some());
            let topology = if lends {
                args.topology.as_path()
            } else {
                Path::new("topologies/lending.top")
            };
            let r = bench::lending(program, topology, args.runs.max(1)).await?;
            (r.table(), serde_json::to_value(&r))
        }
        What::Startup | What::All => {
            let r = bench::startup(program, &args.topology, args.runs.max(1)).await?;
            (r.table(), serde_json::to_value(&r))
        }
    })
}

/// What is wrong with `--durability TEXT` for the benchmark `what`, read as the topology's
/// `policy journal { durability TEXT }` (dispatch) or `policy chat { … }` (chat) is read (none:
/// it is right, or `what` has no use for it).
fn durability_error(what: What, text: &str) -> Option<String> {
    let policy = match what {
        What::Dispatch => {
            format!("node c {{ type master }}\npolicy journal {{ durability {text} }}\n")
        }
        What::Chat => format!("node c {{ type chat }}\npolicy chat {{ durability {text} }}\n"),
        _ => return None,
    };
    let (_, report) = crate::topology::check_bytes("--durability", policy.as_bytes());
    let error = report.diagnostics.iter().find(|d| d.is_error())?;
    Some(format!("{} ({})", error.message, error.label))
}

/// `--encoding`: `json` or `msgpack`.
fn parse_encoding(s: &str) -> Result<Encoding, String> {
    match s {
        "json" => Ok(Encoding::Json),
        "msgpack" => Ok(Encoding::Msgpack),
        _ => Err(format!(
            "`{s}` is not an encoding: the encodings are json and msgpack"
        )),
    }
}

/// `--paced RATE`: a rate as a topology writes one (`15000`, `15000/s`, `900000/min`), above
/// zero.
fn positive_rate(text: &str) -> Result<f64, String> {
    let text = text.trim();
    match crate::topology::units::parse_any_per_second(text) {
        Ok(rate) if rate > 0.0 => Ok(rate),
        Ok(_) => Err(format!(
            "`{text}` is not a rate: posts a second, above zero"
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// A count that must be one or more (`--posts`, `--subscribers`): none measures nothing.
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(0) => Err(format!("`{text}` is not a count: one or more")),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("`{text}` is not a count: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::positive_rate;

    #[test]
    fn a_paced_rate_is_a_positive_finite_number() {
        assert_eq!(positive_rate("12000"), Ok(12000.0));
        assert_eq!(positive_rate(" 2.5 "), Ok(2.5));
        assert_eq!(positive_rate("900000/min"), Ok(15000.0));
        for bad in ["0", "-3", "inf", "NaN", "fast", "", "5/fortnight"] {
            let e = positive_rate(bad).unwrap_err();
            assert!(e.contains(&format!("`{bad}`")), "{bad}: {e}");
        }
    }
}
