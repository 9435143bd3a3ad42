//! Closed-loop load against the AWS IoT control plane (restJson1 over HTTP/1.1, SigV4).
//!
//! Each connection is one keep-alive HTTP/1.1 connection driven by one task:
//! build and sign a request, send it, await the whole response, repeat.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpStream;

use crate::creds::Credentials;
use crate::stats::{RunStats, Summary};

/// Things read round-robin by `describe-thing` (created first if missing).
pub const READ_THINGS: usize = 16;
/// SHA-256 of `{}`, the body of CreateThing.
const EMPTY_OBJECT_SHA256: &str =
    "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
const X_AMZ_DATE: HeaderName = HeaderName::from_static("x-amz-date");
const X_AMZ_SECURITY_TOKEN: HeaderName = HeaderName::from_static("x-amz-security-token");
/// How long the last in-flight request of a run may take after the run ends.
const GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// DescribeThing (GET /things/{name}) over a few pre-created things, round-robin.
    DescribeThing,
    /// CreateThing (POST /things/{name}) with unique names.
    CreateThing,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::DescribeThing => "describe-thing",
            Scenario::CreateThing => "create-thing",
        }
    }
}

/// An `http://host[:port]` endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `host[:port]` as written: the Host header, and what is signed.
    pub authority: String,
    /// `host:port` to connect to.
    pub connect: String,
}

impl Endpoint {
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let rest = if let Some(rest) = url.strip_prefix("http://") {
            rest
        } else if url.starts_with("https://") {
            bail!("https endpoints are not supported: point --endpoint at the plain HTTP listener");
        } else {
            bail!("--endpoint must look like http://127.0.0.1:8080");
        };
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
            bail!("--endpoint must be http://host[:port] with no path: {url}");
        }
        let has_port = match authority.rfind(':') {
            Some(i) => !authority[i..].contains(']'),
            None => false,
        };
        let connect = if has_port {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        Ok(Endpoint {
            authority: authority.to_owned(),
            connect,
        })
    }

    pub async fn resolve(&self) -> anyhow::Result<SocketAddr> {
        tokio::net::lookup_host(&self.connect)
            .await
            .with_context(|| format!("cannot resolve {}", self.connect))?
            .next()
            .with_context(|| format!("{} resolves to no address", self.connect))
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub scenario: Scenario,
    pub connections: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub runs: usize,
}

/// Result of all runs of one [`LoadSpec`].
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub scenario: Scenario,
    pub connections: usize,
    pub warmup_secs: f64,
    pub duration_secs: f64,
    pub runs: Vec<RunStats>,
    pub median: Summary,
    /// Errors over all runs by `"<status> <code>"` (or `transport: …`).
    pub errors: HashMap<String, u64>,
}

/// The target and the signing identity, shared by all connections.
pub struct Client {
    addr: SocketAddr,
    authority: String,
    host: HeaderValue,
    access_key_id: String,
    secret: String,
    session_token: Option<(String, HeaderValue)>,
    region: String,
    /// Unique-name prefix for CreateThing; the counter makes names unique.
    name_prefix: String,
    counter: AtomicU64,
}

impl Client {
    pub async fn new(
        endpoint: &Endpoint,
        creds: &Credentials,
        region: &str,
    ) -> anyhow::Result<Arc<Self>> {
        let addr = endpoint.resolve().await?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let session_token = match &creds.session_token {
            Some(t) => Some((
                t.clone(),
                HeaderValue::from_str(t).context("bad session token")?,
            )),
            None => None,
        };
        Ok(Arc::new(Client {
            addr,
            authority: endpoint.authority.clone(),
            host: HeaderValue::from_str(&endpoint.authority).context("bad endpoint host")?,
            access_key_id: creds.access_key_id.clone(),
            secret: creds.secret_access_key.clone(),
            session_token,
            region: region.to_owned(),
            name_prefix: format!("bench-{}-{}-", now.as_secs(), std::process::id()),
            counter: AtomicU64::new(0),
        }))
    }

    /// Builds and signs a request; `path` is the percent-encoded path (no query).
    fn request(
        &self,
        method: &Method,
        path: Bytes,
        body: &Bytes,
    ) -> anyhow::Result<Request<Full<Bytes>>> {
        let path_str = std::str::from_utf8(&path).context("path is not UTF-8")?;
        let has_body = !body.is_empty();
        let mut signed_headers: [(&str, &str); 3] = [("host", &self.authority), ("", ""), ("", "")];
        let mut n = 1;
        if has_body {
            signed_headers[n] = ("content-type", "application/json");
            n += 1;
        }
        if let Some((token, _)) = &self.session_token {
            signed_headers[n] = ("x-amz-security-token", token);
            n += 1;
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let signed = sigv4::Signer {
            access_key_id: &self.access_key_id,
            secret: &self.secret,
            region: &self.region,
            service: "iot",
        }
        .sign(
            &sigv4::Request {
                method: method.as_str(),
                path: path_str,
                query: "",
                headers: &signed_headers[..n],
                payload: sigv4::Payload::Sha256Hex(if has_body {
                    EMPTY_OBJECT_SHA256
                } else {
                    sigv4::canonical::EMPTY_SHA256
                }),
            },
            now,
        )
        .map_err(|e| anyhow::anyhow!("signing: {e}"))?;
        let mut req = Request::new(Full::new(body.clone()));
        *req.method_mut() = method.clone();
        *req.uri_mut() = Uri::from_maybe_shared(path).context("bad path")?;
        let h = req.headers_mut();
        h.insert(HOST, self.host.clone());
        if has_body {
            h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        if let Some((_, v)) = &self.session_token {
            h.insert(X_AMZ_SECURITY_TOKEN, v.clone());
        }
        h.insert(X_AMZ_DATE, HeaderValue::try_from(signed.x_amz_date)?);
        h.insert(AUTHORIZATION, HeaderValue::try_from(signed.authorization)?);
        Ok(req)
    }

    async fn connect(&self) -> anyhow::Result<SendRequest<Full<Bytes>>> {
        let stream = TcpStream::connect(self.addr)
            .await
            .with_context(|| format!("cannot connect to {}", self.addr))?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            // Errors surface on the sender; nothing to do here.
            let _ = conn.await;
        });
        Ok(sender)
    }

    /// One request on `sender`; returns the status and, unless 200, the error code.
    async fn exchange(
        &self,
        sender: &mut SendRequest<Full<Bytes>>,
        req: Request<Full<Bytes>>,
    ) -> anyhow::Result<(u16, Option<String>)> {
        sender.ready().await?;
        let resp = sender.send_request(req).await?;
        let status = resp.status().as_u16();
        if status == 200 {
            // Drain without keeping the body.
            let mut body = resp.into_body();
            while let Some(frame) = body.frame().await {
                frame?;
            }
            return Ok((status, None));
        }
        let header_code = resp
            .headers()
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(':').next().unwrap_or(v).to_owned());
        let body = resp.into_body().collect().await?.to_bytes();
        let code = header_code.or_else(|| {
            let v: serde_json::Value = serde_json::from_slice(&body).ok()?;
            ["__type", "code", "Code"]
                .iter()
                .find_map(|k| v.get(k)?.as_str().map(str::to_owned))
        });
        Ok((status, Some(code.unwrap_or_else(|| "-".to_owned()))))
    }

    /// One CreateThing outside of measurement; 200 and 409 (exists) are fine.
    pub async fn create_thing(&self, name: &str) -> anyhow::Result<()> {
        let mut sender = self.connect().await?;
        let req = self.request(
            &Method::POST,
            Bytes::from(format!("/things/{name}")),
            &Bytes::from_static(b"{}"),
        )?;
        match self.exchange(&mut sender, req).await? {
            (200 | 409, _) => Ok(()),
            (status, code) => bail!(
                "CreateThing {name}: HTTP {status} {}",
                code.unwrap_or_default()
            ),
        }
    }
}

/// Measurement window of one run.
#[derive(Clone, Copy)]
struct Window {
    measure_from: Instant,
    end: Instant,
}

impl Window {
    fn contains(&self, t: Instant) -> bool {
        t >= self.measure_from && t <= self.end
    }
}

struct WorkerOut {
    latencies_us: Vec<u32>,
    errors: HashMap<String, u64>,
}

/// One closed-loop connection until `window.end`.
async fn worker(
    client: Arc<Client>,
    scenario: Scenario,
    id: usize,
    read_paths: Arc<Vec<Bytes>>,
    window: Window,
    mut out: WorkerOut,
) -> WorkerOut {
    let body = match scenario {
        Scenario::DescribeThing => Bytes::new(),
        Scenario::CreateThing => Bytes::from_static(b"{}"),
    };
    let method = match scenario {
        Scenario::DescribeThing => Method::GET,
        Scenario::CreateThing => Method::POST,
    };
    let mut sender: Option<SendRequest<Full<Bytes>>> = None;
    let mut next = id;
    let record_error = |out: &mut WorkerOut, key: String| {
        if window.contains(Instant::now()) {
            *out.errors.entry(key).or_insert(0) += 1;
        }
    };
    while Instant::now() < window.end {
        let s = match &mut sender {
            Some(s) => s,
            None => match client.connect().await {
                Ok(s) => sender.insert(s),
                Err(e) => {
                    record_error(&mut out, format!("transport: {e:#}"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let path = match scenario {
            Scenario::DescribeThing => {
                next = (next + 1) % read_paths.len();
                read_paths[next].clone()
            }
            Scenario::CreateThing => {
                let n = client.counter.fetch_add(1, Ordering::Relaxed);
                Bytes::from(format!("/things/{}{n}", client.name_prefix))
            }
        };
        let req = match client.request(&method, path, &body) {
            Ok(r) => r,
            Err(e) => {
                record_error(&mut out, format!("request: {e:#}"));
                break;
            }
        };
        let start = Instant::now();
        let result =
            tokio::time::timeout_at((window.end + GRACE).into(), client.exchange(s, req)).await;
        let done = Instant::now();
        match result {
            Ok(Ok((200, _))) => {
                if window.contains(done) {
                    let us = done.duration_since(start).as_micros();
                    out.latencies_us.push(u32::try_from(us).unwrap_or(u32::MAX));
                }
            }
            Ok(Ok((status, code))) => {
                record_error(&mut out, format!("{status} {}", code.unwrap_or_default()));
            }
            Ok(Err(e)) => {
                sender = None;
                record_error(&mut out, format!("transport: {e:#}"));
            }
            Err(_) => break,
        }
    }
    out
}

/// Creates the things `describe-thing` reads; returns their request paths.
pub async fn prepare(client: &Client, scenario: Scenario) -> anyhow::Result<Arc<Vec<Bytes>>> {
    let mut paths = Vec::new();
    if scenario == Scenario::DescribeThing {
        for i in 0..READ_THINGS {
            let name = format!("bench-read-{i}");
            client.create_thing(&name).await?;
            paths.push(Bytes::from(format!("/things/{name}")));
        }
    }
    Ok(Arc::new(paths))
}

/// Runs `spec.runs` runs of warm-up then measurement; `on_run` sees each run's figures.
pub async fn run(
    client: &Arc<Client>,
    spec: &LoadSpec,
    mut on_run: impl FnMut(usize, &RunStats),
) -> anyhow::Result<LoadReport> {
    anyhow::ensure!(spec.connections > 0, "--connections must be at least 1");
    anyhow::ensure!(spec.runs > 0, "--runs must be at least 1");
    anyhow::ensure!(!spec.duration.is_zero(), "--duration must be positive");
    let read_paths = prepare(client, spec.scenario).await?;
    // Reused across runs: per-connection latency buffers and the merged one.
    let guess = 4096;
    let mut pool: Vec<WorkerOut> = (0..spec.connections)
        .map(|_| WorkerOut {
            latencies_us: Vec::with_capacity(guess),
            errors: HashMap::new(),
        })
        .collect();
    let mut all: Vec<u32> = Vec::with_capacity(guess * spec.connections);
    let mut errors: HashMap<String, u64> = HashMap::new();
    let mut runs = Vec::with_capacity(spec.runs);
    for run_index in 0..spec.runs {
        let measure_from = Instant::now() + spec.warmup;
        let window = Window {
            measure_from,
            end: measure_from + spec.duration,
        };
        let handles: Vec<_> = pool
            .drain(..)
            .enumerate()
            .map(|(id, mut out)| {
                out.latencies_us.clear();
                out.errors.clear();
                tokio::spawn(worker(
                    client.clone(),
                    spec.scenario,
                    id,
                    read_paths.clone(),
                    window,
                    out,
                ))
            })
            .collect();
        all.clear();
        let mut run_errors = 0;
        for h in handles {
            let out = h.await.context("load task failed")?;
            all.extend_from_slice(&out.latencies_us);
            for (k, v) in &out.errors {
                run_errors += v;
                *errors.entry(k.clone()).or_insert(0) += v;
            }
            pool.push(out);
        }
        let stats = RunStats::from_latencies(&mut all, run_errors, spec.duration);
        on_run(run_index, &stats);
        runs.push(stats);
    }
    Ok(LoadReport {
        scenario: spec.scenario,
        connections: spec.connections,
        warmup_secs: spec.warmup.as_secs_f64(),
        duration_secs: spec.duration.as_secs_f64(),
        median: Summary::of(&runs),
        runs,
        errors,
    })
}

pub fn format_run(i: usize, r: &RunStats) -> String {
    format!(
        "run {:>2}: {:>9.1} req/s  p50 {:>7.3} ms  p90 {:>7.3} ms  p99 {:>7.3} ms  max {:>8.3} ms  ({} ok, {} errors)",
        i + 1,
        r.rps,
        r.p50_ms,
        r.p90_ms,
        r.p99_ms,
        r.max_ms,
        r.ok,
        r.errors
    )
}

pub fn format_summary(s: &Summary) -> String {
    format!(
        "median: {:>9.1} req/s  p50 {:>7.3} ms  p90 {:>7.3} ms  p99 {:>7.3} ms  max {:>8.3} ms  ({} runs, {} errors)",
        s.rps, s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms, s.runs, s.errors
    )
}

pub fn format_errors(errors: &HashMap<String, u64>) -> Vec<String> {
    let mut v: Vec<_> = errors.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    v.into_iter()
        .map(|(k, n)| format!("  {n:>8} × {k}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() -> anyhow::Result<()> {
        let e = Endpoint::parse("http://127.0.0.1:8080/")?;
        assert_eq!(e.authority, "127.0.0.1:8080");
        assert_eq!(e.connect, "127.0.0.1:8080");
        let e = Endpoint::parse("http://localhost")?;
        assert_eq!(e.connect, "localhost:80");
        let e = Endpoint::parse("http://[::1]:9000")?;
        assert_eq!(e.connect, "[::1]:9000");
        assert_eq!(Endpoint::parse("http://[::1]")?.connect, "[::1]:80");
        assert!(Endpoint::parse("https://x").is_err());
        assert!(Endpoint::parse("http://x/things").is_err());
        assert!(Endpoint::parse("127.0.0.1:8080").is_err());
        Ok(())
    }

    #[test]
    fn body_hash_constant() {
        assert_eq!(sigv4::canonical::sha256_hex(b"{}"), EMPTY_OBJECT_SHA256);
    }
}
