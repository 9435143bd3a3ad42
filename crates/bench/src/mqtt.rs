//! MQTT-over-TLS load generator: any broker that takes client certificates.
//!
//! Scenarios: `connect-storm` (full mutual-TLS handshake + CONNECT/CONNACK per connection,
//! no session resumption), `publish` (fan-in and fan-out at QoS 0 or 1, end-to-end latency
//! from a timestamp in the payload) and `idle` (broker resident memory per held connection).
//! The client speaks MQTT 3.1.1 with the `mqtt-proto` codec. Only loopback targets are allowed.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::{Bytes, BytesMut};
use mqtt_proto::packet::{Connect, Disconnect, PubResp, Publish, Subscribe, SubscriptionOptions};
use mqtt_proto::{Decoder, Packet, ProtocolVersion, QoS, ReasonCode};
use rustls::ClientConfig;
use rustls::client::Resumption;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{Notify, Semaphore};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::stats::{median, percentile};

const V: ProtocolVersion = ProtocolVersion::V311;
/// Time limit of any single step (connect, handshake, CONNACK, SUBACK, write).
const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest packet the client accepts.
const MAX_PACKET: u32 = 1 << 20;
/// Bytes of the payload header: publisher index (u32), sequence (u64), send time (u64 ns).
pub const PAYLOAD_HEADER: usize = 20;

/// Where to connect and as whom.
pub struct Target {
    addr: SocketAddr,
    server_name: ServerName<'static>,
    /// One client configuration per device identity, used round-robin.
    configs: Vec<TlsConnector>,
}

/// A device identity: certificate and private key files (PEM).
#[derive(Debug, Clone)]
pub struct Identity {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Identities in `dir`: every `NAME.pem` or `NAME.crt` that has a `NAME.key` beside it, sorted by name.
pub fn identities_in(dir: &Path) -> anyhow::Result<Vec<Identity>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        let is_cert = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("pem" | "crt")
        );
        let key = path.with_extension("key");
        if is_cert && key.is_file() {
            out.push(Identity { cert: path, key });
        }
    }
    out.sort_by(|a, b| a.cert.cmp(&b.cert));
    anyhow::ensure!(
        !out.is_empty(),
        "no NAME.pem/NAME.key pairs in {}",
        dir.display()
    );
    Ok(out)
}

/// `host` must be a loopback address or `localhost`: this tool only loads the local machine.
pub fn loopback(host: &str, port: u16) -> anyhow::Result<SocketAddr> {
    let ip: IpAddr = if host.eq_ignore_ascii_case("localhost") {
        IpAddr::from([127, 0, 0, 1])
    } else {
        host.parse()
            .with_context(|| format!("--host must be an IP literal or localhost: {host}"))?
    };
    if !ip.is_loopback() {
        bail!("--host must be a loopback address (this tool only loads the local machine): {ip}");
    }
    Ok(SocketAddr::new(ip, port))
}

impl Target {
    /// `sni` defaults to `localhost`; an IP literal there means "send no SNI" (rustls never sends IPs).
    pub fn new(
        addr: SocketAddr,
        sni: Option<&str>,
        cafile: &Path,
        identities: &[Identity],
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(!identities.is_empty(), "no client certificate given");
        let mut roots = rustls::RootCertStore::empty();
        let cas: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cafile)
            .with_context(|| format!("cannot read {}", cafile.display()))?
            .collect::<Result<_, _>>()
            .with_context(|| format!("bad PEM in {}", cafile.display()))?;
        anyhow::ensure!(!cas.is_empty(), "no certificate in {}", cafile.display());
        for ca in cas {
            roots
                .add(ca)
                .with_context(|| format!("bad CA certificate in {}", cafile.display()))?;
        }
        let roots = Arc::new(roots);
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut configs = Vec::new();
        for id in identities {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&id.cert)
                .with_context(|| format!("cannot read {}", id.cert.display()))?
                .collect::<Result<_, _>>()
                .with_context(|| format!("bad PEM in {}", id.cert.display()))?;
            let key = PrivateKeyDer::from_pem_file(&id.key)
                .with_context(|| format!("cannot read a private key from {}", id.key.display()))?;
            let mut config = ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()?
                .with_root_certificates(roots.clone())
                .with_client_auth_cert(chain, key)
                .with_context(|| format!("bad client certificate {}", id.cert.display()))?;
            // Every handshake is a full one: no session cache, no tickets.
            config.resumption = Resumption::disabled();
            configs.push(TlsConnector::from(Arc::new(config)));
        }
        let name = sni.unwrap_or("localhost").to_owned();
        let server_name =
            ServerName::try_from(name).map_err(|_| anyhow::anyhow!("bad --sni name"))?;
        Ok(Target {
            addr,
            server_name,
            configs,
        })
    }

    /// TCP connect, TLS handshake, CONNECT (clean session), CONNACK accepted.
    pub async fn open(&self, n: usize, client_id: &str, keep_alive: u16) -> anyhow::Result<Conn> {
        let connector = &self.configs[n % self.configs.len()];
        let step = async {
            let tcp = TcpStream::connect(self.addr).await.context("TCP connect")?;
            tcp.set_nodelay(true)?;
            let tls = connector
                .connect(self.server_name.clone(), tcp)
                .await
                .context("TLS handshake")?;
            let mut conn = Conn {
                stream: tls,
                decoder: Decoder::new(Some(V), MAX_PACKET),
                buf: vec![0; 16 * 1024],
            };
            conn.send(&Packet::Connect(Box::new(Connect {
                protocol: V,
                clean_start: true,
                keep_alive,
                client_id: client_id.to_owned(),
                will: None,
                username: None,
                password: None,
                properties: Default::default(),
            })))
            .await?;
            match conn.recv().await? {
                Packet::ConnAck(ack) if ack.reason == ReasonCode::Success => Ok(conn),
                Packet::ConnAck(ack) => bail!("CONNACK refused: {:?}", ack.reason),
                p => bail!("expected CONNACK, got {}", p.name()),
            }
        };
        tokio::time::timeout(STEP_TIMEOUT, step)
            .await
            .context("connect timed out")?
    }
}

/// One MQTT connection over TLS.
pub struct Conn {
    stream: TlsStream<TcpStream>,
    decoder: Decoder,
    buf: Vec<u8>,
}

fn encode(p: &Packet) -> anyhow::Result<Bytes> {
    p.to_bytes(V).map_err(|e| anyhow::anyhow!("encode: {e}"))
}

impl Conn {
    pub async fn send(&mut self, p: &Packet) -> anyhow::Result<()> {
        let bytes = encode(p)?;
        self.stream.write_all(&bytes).await?;
        self.stream.flush().await?;
        Ok(())
    }

    pub async fn recv(&mut self) -> anyhow::Result<Packet> {
        loop {
            if let Some(p) = self.decoder.decode().map_err(|e| anyhow::anyhow!("{e}"))? {
                return Ok(p);
            }
            let n = self.stream.read(&mut self.buf).await?;
            if n == 0 {
                bail!("connection closed by the broker");
            }
            self.decoder.feed(&self.buf[..n]);
        }
    }

    pub async fn subscribe(&mut self, filter: &str, qos: QoS) -> anyhow::Result<()> {
        self.send(&Packet::Subscribe(Subscribe {
            packet_id: 1,
            properties: Default::default(),
            filters: vec![(filter.to_owned(), SubscriptionOptions::new(qos))],
        }))
        .await?;
        let ack = tokio::time::timeout(STEP_TIMEOUT, self.recv())
            .await
            .context("SUBACK timed out")??;
        match ack {
            Packet::SubAck(a) if a.reasons.iter().all(|r| (*r as u8) < 0x80) => Ok(()),
            Packet::SubAck(a) => bail!("subscription to {filter} refused: {:?}", a.reasons),
            p => bail!("expected SUBACK, got {}", p.name()),
        }
    }

    /// DISCONNECT and TLS close, bounded in time; errors ignored.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            let _ = self
                .send(&Packet::Disconnect(Disconnect {
                    reason: ReasonCode::Success,
                    properties: Default::default(),
                }))
                .await;
            let _ = self.stream.shutdown().await;
        })
        .await;
    }

    fn split(self) -> (Reader, WriteHalf<TlsStream<TcpStream>>) {
        let (r, w) = tokio::io::split(self.stream);
        (
            Reader {
                r,
                decoder: self.decoder,
                buf: self.buf,
            },
            w,
        )
    }
}

struct Reader {
    r: ReadHalf<TlsStream<TcpStream>>,
    decoder: Decoder,
    buf: Vec<u8>,
}

impl Reader {
    /// Reads once and returns the packets decoded; an error when closed or malformed.
    async fn packets(&mut self, out: &mut Vec<Packet>) -> anyhow::Result<()> {
        let n = self.r.read(&mut self.buf).await?;
        if n == 0 {
            bail!("connection closed by the broker");
        }
        self.decoder.feed(&self.buf[..n]);
        while let Some(p) = self.decoder.decode().map_err(|e| anyhow::anyhow!("{e}"))? {
            out.push(p);
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- payload

/// Writes the payload: publisher index, sequence number, send time in ns since the run's origin,
/// then padding up to `size` (at least [`PAYLOAD_HEADER`] bytes).
pub fn encode_payload(publisher: u32, seq: u64, sent_ns: u64, size: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(size.max(PAYLOAD_HEADER));
    v.extend_from_slice(&publisher.to_be_bytes());
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(&sent_ns.to_be_bytes());
    v.resize(size.max(PAYLOAD_HEADER), b'x');
    v
}

/// (publisher, sequence, send time ns) from a payload written by [`encode_payload`].
pub fn decode_payload(p: &[u8]) -> Option<(u32, u64, u64)> {
    let publisher = u32::from_be_bytes(p.get(0..4)?.try_into().ok()?);
    let seq = u64::from_be_bytes(p.get(4..12)?.try_into().ok()?);
    let sent = u64::from_be_bytes(p.get(12..20)?.try_into().ok()?);
    Some((publisher, seq, sent))
}

// ---------------------------------------------------------------- /proc

/// Resident set size of `pid` in KiB (VmRSS of /proc/PID/status).
pub fn vm_rss_kib(pid: u32) -> anyhow::Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    parse_vm_rss(&text).context("no VmRSS line")
}

pub fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line["VmRSS:".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// CPU time (user + system) of `pid` in clock ticks (utime and stime of /proc/PID/stat).
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_ticks(&text)
}

pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    // The command name may contain spaces: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); utime is field 14, stime field 15.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Clock ticks per second (`getconf CLK_TCK`, 100 when unknown).
pub fn clk_tck() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// Raises the soft RLIMIT_NOFILE towards `want` (bounded by the hard limit); returns the new soft limit.
pub fn raise_nofile(want: u64) -> u64 {
    rlimit::increase_nofile_limit(want).unwrap_or(0)
}

// ---------------------------------------------------------------- results

#[derive(Debug, Clone, Default, Serialize)]
pub struct RunResult {
    /// Connections per second (connect-storm) or messages delivered per second (publish).
    pub rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
    /// Broker CPU per connection (connect-storm, ms) or per delivered message (publish, µs); 0 without --broker-pid.
    pub broker_cpu: f64,
    /// Idle: broker resident memory growth per connection, KiB.
    pub kib_per_conn: f64,
    /// Idle: connections held.
    pub held: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
    pub broker_cpu: f64,
    pub kib_per_conn: f64,
    pub held: u64,
}

impl Summary {
    /// Medians over runs (errors: total).
    pub fn of(runs: &[RunResult]) -> Self {
        let m = |f: fn(&RunResult) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
        Summary {
            rate: m(|r| r.rate),
            p50_ms: m(|r| r.p50_ms),
            p99_ms: m(|r| r.p99_ms),
            errors: runs.iter().map(|r| r.errors).sum(),
            broker_cpu: m(|r| r.broker_cpu),
            kib_per_conn: m(|r| r.kib_per_conn),
            held: m(|r| r.held as f64) as u64,
        }
    }
}

fn ms(us: u32) -> f64 {
    f64::from(us) / 1000.0
}

// ---------------------------------------------------------------- connect storm

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

fn client_id(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT_ID.fetch_add(1, Ordering::Relaxed)
    )
}

#[derive(Debug, Clone)]
pub struct StormSpec {
    pub concurrency: usize,
    pub duration: Duration,
    pub warmup: Duration,
}

/// C workers, each a loop of connect → CONNACK → DISCONNECT until the run ends.
pub async fn connect_storm(
    target: &Arc<Target>,
    spec: &StormSpec,
    broker_pid: Option<u32>,
) -> anyhow::Result<RunResult> {
    anyhow::ensure!(spec.concurrency >= 1, "--connections must be at least 1");
    let start = Instant::now();
    let measure_from = start + spec.warmup;
    let end = measure_from + spec.duration;
    let mut tasks = Vec::new();
    let cpu0 = Arc::new(std::sync::Mutex::new(None::<u64>));
    // Worker w uses identities w, w + C, w + 2C, ... (round-robin over the identities).
    let step = spec.concurrency;
    for w in 0..spec.concurrency {
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0u64;
            let mut n = w;
            while Instant::now() < end {
                let t0 = Instant::now();
                let r = target.open(n, &client_id("storm"), 60).await;
                let t1 = Instant::now();
                let counted = t0 >= measure_from && t1 <= end;
                match r {
                    Ok(conn) => {
                        if counted {
                            lat.push(
                                u32::try_from(t1.duration_since(t0).as_micros())
                                    .unwrap_or(u32::MAX),
                            );
                        }
                        conn.close().await;
                    }
                    Err(_) if counted => errors += 1,
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
                n += step;
            }
            (lat, errors)
        }));
    }
    let cpu_start = {
        let cpu0 = cpu0.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(measure_from.into()).await;
            let v = broker_pid.and_then(cpu_ticks);
            if let Ok(mut g) = cpu0.lock() {
                *g = v;
            }
        })
    };
    tokio::time::sleep_until(end.into()).await;
    let cpu1 = broker_pid.and_then(cpu_ticks);
    let _ = cpu_start.await;
    let mut lat = Vec::new();
    let mut errors = 0;
    for t in tasks {
        if let Ok(Ok((l, e))) = tokio::time::timeout(STEP_TIMEOUT * 2, t).await {
            lat.extend(l);
            errors += e;
        }
    }
    lat.sort_unstable();
    let secs = spec.duration.as_secs_f64();
    let count = lat.len() as f64;
    let c0 = cpu0.lock().ok().and_then(|g| *g);
    let broker_cpu = match (c0, cpu1) {
        (Some(a), Some(b)) if count > 0.0 => (b - a) as f64 / clk_tck() * 1000.0 / count,
        _ => 0.0,
    };
    Ok(RunResult {
        rate: count / secs,
        p50_ms: ms(percentile(&lat, 50.0)),
        p99_ms: ms(percentile(&lat, 99.0)),
        errors,
        broker_cpu,
        ..Default::default()
    })
}

// ---------------------------------------------------------------- publish

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pattern {
    /// F publishers → 1 subscriber.
    FanIn,
    /// 1 publisher → N subscribers.
    FanOut,
}

impl Pattern {
    pub fn name(self) -> &'static str {
        match self {
            Pattern::FanIn => "fan-in",
            Pattern::FanOut => "fan-out",
        }
    }
}

#[derive(Debug, Clone)]
pub struct PublishSpec {
    pub pattern: Pattern,
    /// Publishers for fan-in; subscribers for fan-out.
    pub width: usize,
    pub qos: QoS,
    pub payload: usize,
    /// QoS 1: PUBACKs a publisher may await at once.
    pub inflight: usize,
    /// Messages a publisher may have sent but not yet delivered to every subscriber.
    pub window: usize,
    pub duration: Duration,
    pub warmup: Duration,
}

struct Shared {
    origin: Instant,
    measure_from_ns: u64,
    end_ns: u64,
    /// Deliveries counted per publisher (all subscribers together).
    delivered: Vec<AtomicU64>,
    wake: Vec<Notify>,
    stop: AtomicBool,
    /// Subscribers return once set.
    done: AtomicBool,
}

impl Shared {
    fn now_ns(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// One publish run: connect, subscribe, publish for warm-up + duration, measure deliveries.
pub async fn publish(
    target: &Arc<Target>,
    spec: &PublishSpec,
    broker_pid: Option<u32>,
) -> anyhow::Result<RunResult> {
    anyhow::ensure!(spec.width >= 1, "need at least one publisher/subscriber");
    anyhow::ensure!(spec.window >= 1 && spec.inflight >= 1, "window must be ≥ 1");
    anyhow::ensure!(
        spec.payload <= 100 * 1024,
        "payload at most 100 KiB (AWS IoT allows 128 KiB per message)"
    );
    let (publishers, subscribers) = match spec.pattern {
        Pattern::FanIn => (spec.width, 1),
        Pattern::FanOut => (1, spec.width),
    };
    let tag = client_id("t");
    let topic = format!("bench/{tag}/{}", spec.pattern.name());
    // Subscribers first.
    let mut subs = Vec::new();
    for i in 0..subscribers {
        let mut c = target
            .open(i, &client_id("sub"), 60)
            .await
            .context("subscriber connect")?;
        c.subscribe(&topic, spec.qos).await?;
        subs.push(c);
    }
    let mut pubs = Vec::new();
    for i in 0..publishers {
        pubs.push(
            target
                .open(subscribers + i, &client_id("pub"), 60)
                .await
                .context("publisher connect")?,
        );
    }
    let origin = Instant::now();
    let measure_from = spec.warmup;
    let end = spec.warmup + spec.duration;
    let shared = Arc::new(Shared {
        origin,
        measure_from_ns: u64::try_from(measure_from.as_nanos()).unwrap_or(u64::MAX),
        end_ns: u64::try_from(end.as_nanos()).unwrap_or(u64::MAX),
        delivered: (0..publishers).map(|_| AtomicU64::new(0)).collect(),
        wake: (0..publishers).map(|_| Notify::new()).collect(),
        stop: AtomicBool::new(false),
        done: AtomicBool::new(false),
    });
    let cpu_at = |pid: Option<u32>| pid.and_then(cpu_ticks);

    let mut sub_tasks = Vec::new();
    for c in subs {
        let shared = shared.clone();
        let qos = spec.qos;
        sub_tasks.push(tokio::spawn(subscriber(c, shared, qos)));
    }
    let mut pub_tasks = Vec::new();
    for (i, c) in pubs.into_iter().enumerate() {
        let shared = shared.clone();
        let spec = spec.clone();
        let topic = topic.clone();
        pub_tasks.push(tokio::spawn(publisher(
            c,
            shared,
            spec,
            i,
            subscribers as u64,
            topic,
        )));
    }
    tokio::time::sleep_until((origin + measure_from).into()).await;
    let cpu0 = cpu_at(broker_pid);
    tokio::time::sleep_until((origin + end).into()).await;
    let cpu1 = cpu_at(broker_pid);
    shared.stop.store(true, Ordering::Relaxed);
    for w in &shared.wake {
        w.notify_one();
    }
    let mut errors = 0;
    for t in pub_tasks {
        match tokio::time::timeout(STEP_TIMEOUT, t).await {
            Ok(Ok(Ok(()))) => {}
            _ => errors += 1,
        }
    }
    // Let the last deliveries arrive, then stop the subscribers.
    tokio::time::sleep(Duration::from_millis(300)).await;
    shared.done.store(true, Ordering::Relaxed);
    let mut lat = Vec::new();
    for t in sub_tasks {
        match tokio::time::timeout(Duration::from_secs(5), t).await {
            Ok(Ok(out)) => {
                if out.failed {
                    errors += 1;
                }
                lat.extend(out.latencies_us);
            }
            _ => errors += 1,
        }
    }
    lat.sort_unstable();
    let count = lat.len() as f64;
    let broker_cpu = match (cpu0, cpu1) {
        (Some(a), Some(b)) if count > 0.0 => (b - a) as f64 / clk_tck() * 1e6 / count,
        _ => 0.0,
    };
    Ok(RunResult {
        rate: count / spec.duration.as_secs_f64(),
        p50_ms: ms(percentile(&lat, 50.0)),
        p99_ms: ms(percentile(&lat, 99.0)),
        errors,
        broker_cpu,
        ..Default::default()
    })
}

#[derive(Default)]
struct SubOut {
    latencies_us: Vec<u32>,
    failed: bool,
}

/// Reads deliveries until the run stops; returns latencies of those received in the window.
/// Returns when the caller sets `done` (or on error); the connection is then dropped.
async fn subscriber(conn: Conn, shared: Arc<Shared>, qos: QoS) -> SubOut {
    let (mut reader, mut w) = conn.split();
    let mut out = SubOut::default();
    let mut packets = Vec::new();
    let mut acks = BytesMut::new();
    loop {
        if shared.done.load(Ordering::Relaxed) {
            break;
        }
        packets.clear();
        match tokio::time::timeout(Duration::from_millis(100), reader.packets(&mut packets)).await {
            Err(_) => continue,
            Ok(Err(_)) => {
                out.failed = !shared.stop.load(Ordering::Relaxed);
                break;
            }
            Ok(Ok(())) => {}
        }
        let now = shared.now_ns();
        for p in packets.drain(..) {
            let Packet::Publish(p) = p else { continue };
            if let Some((publisher, _seq, sent)) = decode_payload(&p.payload) {
                if now >= shared.measure_from_ns && now <= shared.end_ns {
                    let us = now.saturating_sub(sent) / 1000;
                    out.latencies_us.push(u32::try_from(us).unwrap_or(u32::MAX));
                }
                if let (Some(d), Some(wk)) = (
                    shared.delivered.get(publisher as usize),
                    shared.wake.get(publisher as usize),
                ) {
                    d.fetch_add(1, Ordering::Relaxed);
                    wk.notify_one();
                }
            }
            if qos == QoS::AtLeastOnce
                && let Some(id) = p.packet_id
            {
                let ack = Packet::PubAck(PubResp {
                    packet_id: id,
                    reason: ReasonCode::Success,
                    properties: Default::default(),
                });
                if ack.encode(V, &mut acks).is_err() {
                    out.failed = true;
                    return out;
                }
            }
        }
        if !acks.is_empty() {
            if w.write_all(&acks).await.is_err() {
                out.failed = true;
                return out;
            }
            acks.clear();
        }
    }
    out
}

async fn publisher(
    conn: Conn,
    shared: Arc<Shared>,
    spec: PublishSpec,
    index: usize,
    subscribers: u64,
    topic: String,
) -> anyhow::Result<()> {
    let (mut reader, mut w) = conn.split();
    let acked = Arc::new(AtomicU64::new(0));
    // PUBACK reader (QoS 1); for QoS 0 it only notices a closed connection.
    let reader_task = {
        let acked = acked.clone();
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut packets = Vec::new();
            loop {
                packets.clear();
                if reader.packets(&mut packets).await.is_err() {
                    return;
                }
                let n = packets
                    .iter()
                    .filter(|p| matches!(p, Packet::PubAck(_)))
                    .count() as u64;
                if n > 0 {
                    acked.fetch_add(n, Ordering::Relaxed);
                    shared.wake[index].notify_one();
                }
            }
        })
    };
    let mut sent: u64 = 0;
    let mut next_id: u16 = 0;
    let mut buf = BytesMut::new();
    let window = spec.window as u64;
    let result = async {
        while !shared.stop.load(Ordering::Relaxed) && shared.now_ns() < shared.end_ns {
            let delivered = shared.delivered[index].load(Ordering::Relaxed);
            // Messages not yet delivered to every subscriber (rounded up).
            let pending = sent.saturating_sub(delivered / subscribers);
            let mut room = window.saturating_sub(pending);
            if spec.qos == QoS::AtLeastOnce {
                let unacked = sent.saturating_sub(acked.load(Ordering::Relaxed));
                room = room.min((spec.inflight as u64).saturating_sub(unacked));
            }
            if room == 0 {
                // Woken by a delivery or a PUBACK; the timeout covers lost wake-ups and loss.
                let _ =
                    tokio::time::timeout(Duration::from_millis(50), shared.wake[index].notified())
                        .await;
                continue;
            }
            buf.clear();
            for _ in 0..room {
                let packet_id = if spec.qos == QoS::AtLeastOnce {
                    next_id = next_id.checked_add(1).unwrap_or(1);
                    Some(next_id)
                } else {
                    None
                };
                let payload = encode_payload(index as u32, sent, shared.now_ns(), spec.payload);
                Packet::Publish(Publish {
                    dup: false,
                    qos: spec.qos,
                    retain: false,
                    topic: topic.clone(),
                    packet_id,
                    properties: Default::default(),
                    payload: Bytes::from(payload),
                })
                .encode(V, &mut buf)
                .map_err(|e| anyhow::anyhow!("encode: {e}"))?;
                sent += 1;
            }
            tokio::time::timeout(STEP_TIMEOUT, w.write_all(&buf))
                .await
                .context("write timed out")??;
        }
        anyhow::Ok(())
    }
    .await;
    // Leave the connection open until the subscribers are done; the caller closes everything
    // by dropping. A clean DISCONNECT for the broker's sake:
    if let Ok(bytes) = encode(&Packet::Disconnect(Disconnect {
        reason: ReasonCode::Success,
        properties: Default::default(),
    })) {
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            let _ = w.write_all(&bytes).await;
            let _ = w.shutdown().await;
        })
        .await;
    }
    reader_task.abort();
    result
}

// ---------------------------------------------------------------- idle

#[derive(Debug, Clone)]
pub struct IdleSpec {
    pub connections: usize,
    /// Handshakes in progress at once while opening.
    pub parallel: usize,
    /// Pause before each memory reading.
    pub settle: Duration,
}

/// Opens and holds `connections` connections (keep-alive 1200 s), reads the broker's VmRSS
/// before and after, then closes them.
pub async fn idle(
    target: &Arc<Target>,
    spec: &IdleSpec,
    broker_pid: u32,
) -> anyhow::Result<RunResult> {
    let limit = raise_nofile(spec.connections as u64 + 1024);
    if limit > 0 && limit < spec.connections as u64 + 64 {
        bail!(
            "open-file limit {limit} is too low for {} connections: raise the hard limit (ulimit -Hn) first",
            spec.connections
        );
    }
    tokio::time::sleep(spec.settle).await;
    let before = vm_rss_kib(broker_pid)?;
    let sem = Arc::new(Semaphore::new(spec.parallel.max(1)));
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut tasks = Vec::with_capacity(spec.connections);
    for i in 0..spec.connections {
        let permit = sem.clone().acquire_owned().await?;
        if Instant::now() > deadline {
            bail!(
                "opening {} connections took more than 600 s",
                spec.connections
            );
        }
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            let r = target.open(i, &client_id("idle"), 1200).await;
            drop(permit);
            r
        }));
    }
    let mut conns = Vec::with_capacity(spec.connections);
    let mut errors = 0;
    for t in tasks {
        match t.await {
            Ok(Ok(c)) => conns.push(c),
            _ => errors += 1,
        }
    }
    tokio::time::sleep(spec.settle).await;
    let after = vm_rss_kib(broker_pid)?;
    let held = conns.len() as u64;
    // Close them, a bounded number at a time.
    let mut closing = tokio::task::JoinSet::new();
    for c in conns {
        if closing.len() >= 256 {
            closing.join_next().await;
        }
        closing.spawn(c.close());
    }
    while closing.join_next().await.is_some() {}
    Ok(RunResult {
        errors,
        held,
        kib_per_conn: if held > 0 {
            after.saturating_sub(before) as f64 / held as f64
        } else {
            0.0
        },
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trip() {
        let p = encode_payload(7, 123_456, 9_876_543_210, 64);
        assert_eq!(p.len(), 64);
        assert_eq!(decode_payload(&p), Some((7, 123_456, 9_876_543_210)));
        // Smaller sizes still carry the header.
        assert_eq!(encode_payload(1, 2, 3, 0).len(), PAYLOAD_HEADER);
        assert_eq!(decode_payload(&[0; 19]), None);
    }

    #[test]
    fn proc_parsing() {
        let status = "Name:\tmosquitto\nVmPeak:\t  1000 kB\nVmRSS:\t    6852 kB\nThreads: 1\n";
        assert_eq!(parse_vm_rss(status), Some(6852));
        assert_eq!(parse_vm_rss("Name: x\n"), None);
        let stat =
            "1234 (my proc) S 1 1234 1234 0 -1 4194560 500 0 0 0 25 17 0 0 20 0 1 0 100 1000 200";
        assert_eq!(parse_stat_ticks(stat), Some(42));
    }

    #[test]
    fn only_loopback() {
        assert!(loopback("127.0.0.1", 8883).is_ok());
        assert!(loopback("localhost", 8883).is_ok());
        assert!(loopback("::1", 8883).is_ok());
        assert!(loopback("10.0.0.1", 8883).is_err());
        assert!(loopback("example.com", 8883).is_err());
    }

    #[test]
    fn summary_is_median() {
        let runs: Vec<RunResult> = [3.0, 1.0, 2.0]
            .iter()
            .map(|&r| RunResult {
                rate: r,
                errors: 1,
                ..Default::default()
            })
            .collect();
        let s = Summary::of(&runs);
        assert_eq!(s.rate, 2.0);
        assert_eq!(s.errors, 3);
    }
}
