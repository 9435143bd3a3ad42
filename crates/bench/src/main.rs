#![forbid(unsafe_code)]
//! `onboard-bench`: load generator and benchmark suites for Onboard, or any server
//! speaking the AWS IoT control-plane API.

mod api;
mod creds;
mod mqtt;
mod mqtt_suite;
mod stats;
mod suite;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::api::{Client, Endpoint, LoadSpec, Scenario};

#[derive(Parser)]
#[command(
    name = "onboard-bench",
    version,
    about = "Load generator and benchmark suites for Onboard (or any AWS IoT-compatible server)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Closed-loop load on the control plane (AWS IoT REST API, SigV4) of a running server.
    Api(ApiArgs),
    /// Start a fresh `onboard serve`, measure the control plane and write the "Control plane" section of BENCHMARKS.md.
    RunApiSuite(SuiteArgs),
    /// Load on an MQTT-over-TLS broker that requires client certificates (any broker).
    Mqtt(MqttArgs),
    /// Start Onboard and mosquitto side by side, run the MQTT scenarios against both, write the "MQTT" section of BENCHMARKS.md.
    RunMqttSuite(MqttSuiteArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum MqttScenario {
    /// Full TCP + mutual-TLS handshake + CONNECT/CONNACK + DISCONNECT per connection, C at once.
    ConnectStorm,
    /// Publishers → subscribers through the broker; messages/s delivered and end-to-end latency.
    Publish,
    /// Hold N idle connections and report the broker's resident memory per connection.
    Idle,
}

#[derive(Args)]
struct MqttArgs {
    /// Broker address: a loopback IP or localhost
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    #[arg(long, default_value_t = 8883)]
    port: u16,
    /// TLS server name to verify (and send as SNI)
    #[arg(long)]
    sni: Option<String>,
    /// CA certificate(s) that verify the broker (PEM)
    #[arg(long)]
    cafile: PathBuf,
    /// Client certificate (PEM); with --key
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// Client private key (PEM: PKCS#8, PKCS#1 or SEC1)
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// Directory of NAME.pem (or NAME.crt) + NAME.key pairs, used round-robin
    #[arg(long)]
    certs_dir: Option<PathBuf>,
    #[arg(long, value_enum)]
    scenario: MqttScenario,
    /// connect-storm: concurrent workers; idle: connections to hold
    #[arg(long)]
    connections: Option<usize>,
    /// publish: fan-in (publishers → 1 subscriber) or fan-out (1 publisher → subscribers)
    #[arg(long, value_enum, default_value = "fan-in")]
    pattern: mqtt::Pattern,
    /// publish: publishers (fan-in) or subscribers (fan-out)
    #[arg(long, default_value_t = 4)]
    width: usize,
    /// publish: QoS of the PUBLISHes and of the subscriptions (0 or 1)
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=1))]
    qos: u8,
    /// publish: payload bytes (at least 20: index, sequence, timestamp)
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// publish, QoS 1: unacknowledged PUBLISHes per publisher
    #[arg(long, default_value_t = 32)]
    inflight: usize,
    /// publish: messages per publisher sent but not yet delivered to every subscriber
    #[arg(long, default_value_t = 32)]
    window: usize,
    /// Measured seconds per run (connect-storm, publish)
    #[arg(long, default_value = "5", value_parser = parse_secs)]
    duration: Duration,
    /// Unmeasured seconds before each run's measurement
    #[arg(long, default_value = "1", value_parser = parse_secs)]
    warmup: Duration,
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// Broker process id: VmRSS (idle, required) and CPU time per connection/message from /proc
    #[arg(long)]
    broker_pid: Option<u32>,
    /// Load-generator threads (tokio workers)
    #[arg(long, default_value_t = 2)]
    threads: usize,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct MqttSuiteArgs {
    /// The onboard binary to start
    #[arg(long, default_value = "target/release/onboard")]
    onboard: PathBuf,
    /// The mosquitto binary to start
    #[arg(long, default_value = "mosquitto")]
    mosquitto: PathBuf,
    /// Markdown file whose MQTT section is written (created if missing)
    #[arg(long, default_value = "BENCHMARKS.md")]
    out: PathBuf,
    /// Runs per scenario and broker (alternating); the table shows medians
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Measured seconds per run
    #[arg(long, default_value = "5", value_parser = parse_secs)]
    duration: Duration,
    /// Unmeasured seconds before each run's measurement
    #[arg(long, default_value = "1", value_parser = parse_secs)]
    warmup: Duration,
    /// connect-storm concurrency
    #[arg(long, default_value_t = 32)]
    storm_connections: usize,
    /// Idle connections held per run
    #[arg(long, default_value_t = 10_000)]
    idle_connections: usize,
    /// Publishers (fan-in) and subscribers (fan-out)
    #[arg(long, default_value_t = 4)]
    width: usize,
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// Load-generator threads
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Skip Onboard (measure mosquitto only; for checking the tool)
    #[arg(long)]
    mosquitto_only: bool,
    /// Keep the temporary directory (PKI, configs, logs)
    #[arg(long)]
    keep_data: bool,
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("not a number of seconds: {s}"))?;
    if !(0.0..=86_400.0).contains(&v) {
        return Err(format!("seconds out of range: {s}"));
    }
    Ok(Duration::from_secs_f64(v))
}

#[derive(Args)]
struct ApiArgs {
    /// Control-plane endpoint, plain HTTP
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    endpoint: String,
    /// AWS shared credentials file (INI), e.g. DATA_DIR/credentials of `onboard serve`
    #[arg(long)]
    credentials: PathBuf,
    /// Profile in the credentials file
    #[arg(long, default_value = "default")]
    profile: String,
    /// Region of the SigV4 credential scope
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// What each request does
    #[arg(long, value_enum)]
    scenario: Scenario,
    /// Concurrent keep-alive connections, each a closed loop
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Measured seconds per run
    #[arg(long, default_value = "5", value_parser = parse_secs)]
    duration: Duration,
    /// Unmeasured seconds before each run's measurement
    #[arg(long, default_value = "2", value_parser = parse_secs)]
    warmup: Duration,
    /// Number of runs; the summary is the median over runs
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// Load-generator threads (tokio workers)
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Print one JSON object instead of text
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct SuiteArgs {
    /// The onboard binary to start
    #[arg(long, default_value = "target/release/onboard")]
    onboard: PathBuf,
    /// Markdown file whose control-plane section is written (created if missing)
    #[arg(long, default_value = "BENCHMARKS.md")]
    out: PathBuf,
    /// Concurrency levels, comma-separated
    #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
    connections: Vec<usize>,
    /// Runs per level; the table shows medians over runs
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Measured seconds per run
    #[arg(long, default_value = "5", value_parser = parse_secs)]
    duration: Duration,
    /// Unmeasured seconds before each run's measurement
    #[arg(long, default_value = "2", value_parser = parse_secs)]
    warmup: Duration,
    /// Load-generator threads (tokio workers)
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// ONBOARD_LOG for the server
    #[arg(long, default_value = "warn")]
    server_log: String,
    /// Keep the server's temporary data directory (and its log)
    #[arg(long)]
    keep_data: bool,
}

fn runtime(threads: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    anyhow::ensure!(threads >= 1, "--threads must be at least 1");
    let rt = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    };
    rt.context("cannot start the runtime")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Api(args) => runtime(args.threads).and_then(|rt| rt.block_on(api_command(args))),
        Command::RunApiSuite(args) => runtime(args.threads).and_then(|rt| {
            rt.block_on(suite::run(suite::SuiteOptions {
                onboard: args.onboard,
                out: args.out,
                connections: args.connections,
                runs: args.runs,
                duration: args.duration,
                warmup: args.warmup,
                threads: args.threads,
                keep_data: args.keep_data,
                log: args.server_log,
            }))
        }),
        Command::Mqtt(args) => runtime(args.threads).and_then(|rt| rt.block_on(mqtt_command(args))),
        Command::RunMqttSuite(args) => runtime(args.threads).and_then(|rt| {
            rt.block_on(mqtt_suite::run(mqtt_suite::Options {
                onboard: args.onboard,
                mosquitto: args.mosquitto,
                out: args.out,
                runs: args.runs,
                duration: args.duration,
                warmup: args.warmup,
                storm_connections: args.storm_connections,
                idle_connections: args.idle_connections,
                width: args.width,
                payload: args.payload,
                threads: args.threads,
                mosquitto_only: args.mosquitto_only,
                keep_data: args.keep_data,
            }))
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("onboard-bench: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn api_command(args: ApiArgs) -> anyhow::Result<()> {
    let creds = creds::load(&args.credentials, &args.profile)?;
    let endpoint = Endpoint::parse(&args.endpoint)?;
    let client = Client::new(&endpoint, &creds, &args.region).await?;
    let spec = LoadSpec {
        scenario: args.scenario,
        connections: args.connections,
        duration: args.duration,
        warmup: args.warmup,
        runs: args.runs,
    };
    if !args.json {
        println!(
            "{} against {}: {} connection(s), {} run(s) of {} s after {} s warm-up",
            args.scenario.name(),
            endpoint.authority,
            spec.connections,
            spec.runs,
            spec.duration.as_secs_f64(),
            spec.warmup.as_secs_f64()
        );
    }
    let json = args.json;
    let report = api::run(&client, &spec, |i, r| {
        if !json {
            println!("{}", api::format_run(i, r));
        }
    })
    .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{}", api::format_summary(&report.median));
        if !report.errors.is_empty() {
            println!("errors by status and code:");
            for line in api::format_errors(&report.errors) {
                println!("{line}");
            }
        }
    }
    Ok(())
}

async fn mqtt_command(args: MqttArgs) -> anyhow::Result<()> {
    use std::sync::Arc;
    let addr = mqtt::loopback(&args.host, args.port)?;
    let mut ids = Vec::new();
    if let (Some(cert), Some(key)) = (&args.cert, &args.key) {
        ids.push(mqtt::Identity {
            cert: cert.clone(),
            key: key.clone(),
        });
    }
    if let Some(dir) = &args.certs_dir {
        ids.extend(mqtt::identities_in(dir)?);
    }
    anyhow::ensure!(!ids.is_empty(), "give --cert/--key or --certs-dir");
    anyhow::ensure!(args.runs >= 1, "--runs must be at least 1");
    let target = Arc::new(mqtt::Target::new(
        addr,
        args.sni.as_deref(),
        &args.cafile,
        &ids,
    )?);
    let qos = if args.qos == 1 {
        mqtt_proto::QoS::AtLeastOnce
    } else {
        mqtt_proto::QoS::AtMostOnce
    };
    let mut runs = Vec::new();
    for i in 0..args.runs {
        let r = match args.scenario {
            MqttScenario::ConnectStorm => {
                let spec = mqtt::StormSpec {
                    concurrency: args.connections.unwrap_or(32),
                    duration: args.duration,
                    warmup: args.warmup,
                };
                mqtt::connect_storm(&target, &spec, args.broker_pid).await?
            }
            MqttScenario::Publish => {
                let spec = mqtt::PublishSpec {
                    pattern: args.pattern,
                    width: args.width,
                    qos,
                    payload: args.payload,
                    inflight: args.inflight,
                    window: args.window,
                    duration: args.duration,
                    warmup: args.warmup,
                };
                mqtt::publish(&target, &spec, args.broker_pid).await?
            }
            MqttScenario::Idle => {
                let pid = args
                    .broker_pid
                    .context("idle needs --broker-pid (the broker's process id)")?;
                let spec = mqtt::IdleSpec {
                    connections: args.connections.unwrap_or(10_000),
                    parallel: 64,
                    settle: Duration::from_secs(2),
                };
                mqtt::idle(&target, &spec, pid).await?
            }
        };
        if !args.json {
            println!("run {}: {}", i + 1, mqtt_suite::format_run(&r));
        }
        runs.push(r);
    }
    let summary = mqtt::Summary::of(&runs);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"runs": runs, "median": summary}))?
        );
    } else {
        println!("median: {}", mqtt_suite::format_summary(&summary));
    }
    Ok(())
}
