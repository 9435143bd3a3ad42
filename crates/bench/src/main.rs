#![forbid(unsafe_code)]
//! `onboard-bench`: load generator and benchmark suites for Onboard, or any server
//! speaking the AWS IoT control-plane API.

mod api;
mod creds;
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
