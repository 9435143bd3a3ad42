//! `run-api-suite`: start a fresh `onboard serve`, measure the control plane, write BENCHMARKS.md.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::Empty;
use hyper::Request;
use hyper_util::rt::TokioIo;

use crate::api::{self, Client, Endpoint, LoadReport, LoadSpec, Scenario};
use crate::creds;

pub const BEGIN: &str = "<!-- control-plane:begin -->";
pub const END: &str = "<!-- control-plane:end -->";

/// The issue #2 goal for DescribeThing, requests per second.
pub const GOAL_RPS: f64 = 5000.0;
/// AWS IoT's default DescribeThing quota, requests per second.
pub const AWS_QUOTA_RPS: f64 = 350.0;

pub struct SuiteOptions {
    pub onboard: PathBuf,
    pub out: PathBuf,
    pub connections: Vec<usize>,
    pub runs: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub threads: usize,
    pub keep_data: bool,
    pub log: String,
}

/// Kills the server (our own child, by pid) however the suite ends.
struct Server {
    child: Child,
    data_dir: PathBuf,
    keep_data: bool,
}

impl Server {
    fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
        if !self.keep_data {
            let _ = fs::remove_dir_all(&self.data_dir);
        }
    }
}

pub(crate) fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub(crate) async fn health_ok(addr: &str) -> bool {
    let Ok(stream) = tokio::net::TcpStream::connect(addr).await else {
        return false;
    };
    let Ok((mut sender, conn)) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
    else {
        return false;
    };
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let Ok(req) = Request::get("/health")
        .header("host", addr)
        .body(Empty::<Bytes>::new())
    else {
        return false;
    };
    matches!(sender.send_request(req).await, Ok(r) if r.status().is_success())
}

pub(crate) fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let v: Vec<&str> = text.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

pub async fn run(opts: SuiteOptions) -> anyhow::Result<()> {
    anyhow::ensure!(
        !opts.connections.is_empty(),
        "--connections needs at least one level"
    );
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let data_dir = std::env::temp_dir().join(format!(
        "onboard-bench-{}-{}",
        std::process::id(),
        stamp.as_secs()
    ));
    fs::create_dir_all(&data_dir)?;
    let log_path = data_dir.join("server.log");
    let log = fs::File::create(&log_path)?;
    let api_addr = format!("127.0.0.1:{}", free_port()?);
    let mqtt_addr = format!("127.0.0.1:{}", free_port()?);
    let version = Command::new(&opts.onboard)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let child = Command::new(&opts.onboard)
        .arg("serve")
        .arg("--data-dir")
        .arg(&data_dir)
        .args(["--api-listen", &api_addr, "--mqtt-listen", &mqtt_addr])
        .env("ONBOARD_LOG", &opts.log)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start {}", opts.onboard.display()))?;
    let mut server = Server {
        child,
        data_dir: data_dir.clone(),
        keep_data: opts.keep_data,
    };
    eprintln!(
        "onboard-bench: started {} (pid {}) on {api_addr}, data {}",
        opts.onboard.display(),
        server.child.id(),
        data_dir.display()
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = server.child.try_wait()? {
            bail!("onboard exited ({status}):\n{}", tail(&log_path, 20));
        }
        if health_ok(&api_addr).await {
            break;
        }
        if Instant::now() > deadline {
            bail!("onboard not healthy after 60 s:\n{}", tail(&log_path, 20));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let creds = creds::load(&data_dir.join("credentials"), "default")?;
    let endpoint = Endpoint::parse(&format!("http://{api_addr}"))?;
    let client = Client::new(&endpoint, &creds, "us-east-1").await?;

    let mut reports = Vec::new();
    for scenario in [Scenario::DescribeThing, Scenario::CreateThing] {
        for &connections in &opts.connections {
            let spec = LoadSpec {
                scenario,
                connections,
                duration: opts.duration,
                warmup: opts.warmup,
                runs: opts.runs,
            };
            eprintln!("== {} with {connections} connection(s)", scenario.name());
            let report = api::run(&client, &spec, |i, r| {
                eprintln!("{}", api::format_run(i, r))
            })
            .await?;
            eprintln!("{}", api::format_summary(&report.median));
            for line in api::format_errors(&report.errors) {
                eprintln!("{line}");
            }
            reports.push(report);
        }
    }
    if let Ok(Some(status)) = server.child.try_wait() {
        bail!(
            "onboard exited during the suite ({status}):\n{}",
            tail(&log_path, 20)
        );
    }
    server.stop();
    let warnings = fs::read_to_string(&log_path)
        .map(|t| t.lines().count())
        .unwrap_or(0);
    if warnings > 0 {
        eprintln!(
            "onboard-bench: server log has {warnings} line(s): {}",
            log_path.display()
        );
    }

    let section = render(&opts, &reports, &Environment::detect(&version));
    let previous = fs::read_to_string(&opts.out).ok();
    let text = splice(previous.as_deref(), &section);
    fs::write(&opts.out, text).with_context(|| format!("cannot write {}", opts.out.display()))?;
    eprintln!("onboard-bench: wrote {}", opts.out.display());
    print!("{section}");
    Ok(())
}

pub struct Environment {
    pub date: String,
    pub cpus: usize,
    pub cpu_model: String,
    pub commit: String,
    pub version: String,
}

impl Environment {
    pub(crate) fn detect(version: &str) -> Self {
        let date = time::OffsetDateTime::now_utc()
            .format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute] UTC"
            ))
            .unwrap_or_default();
        let cpu_model = fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown CPU".to_owned());
        let git = |args: &[&str]| {
            Command::new("git")
                .args(args)
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        };
        let mut commit = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
        if git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty()) {
            commit.push_str(" (with uncommitted changes)");
        }
        Environment {
            date,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            commit,
            version: version.to_owned(),
        }
    }
}

pub(crate) fn fmt_rps(v: f64) -> String {
    let n = v.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The Markdown section, markers included.
pub fn render(opts: &SuiteOptions, reports: &[LoadReport], env: &Environment) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "{BEGIN}");
    s.push_str("## Control plane (AWS IoT REST API)\n\n");
    let best = reports
        .iter()
        .filter(|r| r.scenario == Scenario::DescribeThing)
        .max_by(|a, b| a.median.rps.total_cmp(&b.median.rps));
    if let Some(b) = best {
        let met = b.median.rps >= GOAL_RPS;
        let _ = writeln!(
            s,
            "**Goal (issue #2): ≥ {} DescribeThing/s** on one node (AWS IoT's default DescribeThing quota is {}/s). \
             **{}**: best median {} req/s with {} connection(s), {:.0}× AWS's default quota.\n",
            fmt_rps(GOAL_RPS),
            fmt_rps(AWS_QUOTA_RPS),
            if met { "Met" } else { "Not met" },
            fmt_rps(b.median.rps),
            b.connections,
            b.median.rps / AWS_QUOTA_RPS,
        );
    }
    s.push_str("| Scenario | Connections | req/s | p50 (ms) | p99 (ms) | errors |\n");
    s.push_str("|---|---:|---:|---:|---:|---:|\n");
    for r in reports {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.2} | {:.2} | {} |",
            r.scenario.name(),
            r.connections,
            fmt_rps(r.median.rps),
            r.median.p50_ms,
            r.median.p99_ms,
            r.median.errors
        );
    }
    let levels: Vec<String> = opts.connections.iter().map(ToString::to_string).collect();
    let _ = write!(
        s,
        "\nMedians over {runs} runs of {dur} s each; req/s counts only HTTP 200 responses; errors are totals over the runs.\n\n\
         - **Date**: {date}\n\
         - **Machine**: {cpus} logical CPU(s), {model}; the server and the load generator share them\n\
         - **Onboard**: commit `{commit}`{version}\n\
         - **Server**: `onboard serve` on a fresh data directory (SQLite), plain HTTP on loopback, `ONBOARD_LOG={log}`\n\
         - **Method**: `onboard-bench` on {threads} thread(s) opens N HTTP/1.1 keep-alive connections, each a closed loop \
         (send, await the whole response, repeat); every request is signed with SigV4 (service `iot`, us-east-1). \
         `describe-thing` reads {things} pre-created things round-robin (`GET /things/{{name}}`); `create-thing` creates \
         things with unique names (`POST /things/{{name}}`, body `{{}}`), so the registry grows during the suite. \
         Each level: {runs} runs, each a {warm} s warm-up then {dur} s measured; latencies are per request, send to last byte.\n\n",
        runs = opts.runs,
        dur = opts.duration.as_secs_f64(),
        warm = opts.warmup.as_secs_f64(),
        date = env.date,
        cpus = env.cpus,
        model = env.cpu_model,
        commit = env.commit,
        version = if env.version.is_empty() {
            String::new()
        } else {
            format!(" (`{}`)", env.version)
        },
        log = opts.log,
        threads = opts.threads,
        things = api::READ_THINGS,
    );
    let mut cmd = format!(
        "target/release/onboard-bench run-api-suite --onboard target/release/onboard --out {}",
        opts.out.display()
    );
    if levels != ["1", "8", "32"] {
        let _ = write!(cmd, " --connections {}", levels.join(","));
    }
    if opts.runs != 5 {
        let _ = write!(cmd, " --runs {}", opts.runs);
    }
    if opts.duration != Duration::from_secs(5) {
        let _ = write!(cmd, " --duration {}", opts.duration.as_secs_f64());
    }
    if opts.warmup != Duration::from_secs(2) {
        let _ = write!(cmd, " --warmup {}", opts.warmup.as_secs_f64());
    }
    if opts.threads != 1 {
        let _ = write!(cmd, " --threads {}", opts.threads);
    }
    if opts.log != "warn" {
        let _ = write!(cmd, " --server-log {}", opts.log);
    }
    let _ = write!(
        s,
        "Rerun:\n\n```sh\ncargo build --release -p onboard -p bench\n{cmd}\n```\n\n\
         Against any AWS IoT-compatible endpoint (plain HTTP): \
         `target/release/onboard-bench api --endpoint http://127.0.0.1:8080 --credentials DATA_DIR/credentials \
         --scenario describe-thing --connections 8 --duration 5 --runs 5`.\n"
    );
    let _ = writeln!(s, "{END}");
    s
}

/// Puts `section` in place of the marked section of `previous` (or appends it; or starts a new file).
pub fn splice(previous: Option<&str>, section: &str) -> String {
    splice_between(previous, section, BEGIN, END)
}

/// Puts `section` in place of the part of `previous` between `begin` and `end` (or appends it).
pub fn splice_between(previous: Option<&str>, section: &str, begin: &str, end: &str) -> String {
    match previous {
        None => format!(
            "# Benchmarks\n\nFigures measured by `onboard-bench` (crates/bench). \
             Each section is rewritten by its own tool between its markers.\n\n{section}"
        ),
        Some(text) => match (text.find(begin), text.find(end)) {
            (Some(b), Some(e)) if e > b => {
                let mut rest = &text[e + end.len()..];
                rest = rest.strip_prefix('\n').unwrap_or(rest);
                format!("{}{section}{rest}", &text[..b])
            }
            _ => {
                let sep = if text.ends_with("\n\n") || text.is_empty() {
                    ""
                } else if text.ends_with('\n') {
                    "\n"
                } else {
                    "\n\n"
                };
                format!("{text}{sep}{section}")
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splice_replaces_only_the_section() {
        let old = format!(
            "# Benchmarks\n\nintro\n\n{BEGIN}\nold\n{END}\n\n<!-- mqtt:begin -->\nmqtt\n<!-- mqtt:end -->\n"
        );
        let new = format!("{BEGIN}\nnew\n{END}\n");
        let out = splice(Some(&old), &new);
        assert_eq!(
            out,
            format!(
                "# Benchmarks\n\nintro\n\n{BEGIN}\nnew\n{END}\n\n<!-- mqtt:begin -->\nmqtt\n<!-- mqtt:end -->\n"
            )
        );
        assert_eq!(splice(Some(&out), &new), out);
    }

    #[test]
    fn splice_appends_or_creates() {
        let new = format!("{BEGIN}\nx\n{END}\n");
        assert_eq!(splice(Some("# B\n"), &new), format!("# B\n\n{new}"));
        assert!(splice(None, &new).ends_with(&new));
        assert!(splice(None, &new).starts_with("# Benchmarks"));
    }

    #[test]
    fn thousands() {
        assert_eq!(fmt_rps(5000.0), "5,000");
        assert_eq!(fmt_rps(350.0), "350");
        assert_eq!(fmt_rps(1234567.4), "1,234,567");
    }
}
