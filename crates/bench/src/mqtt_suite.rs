//! `run-mqtt-suite`: Onboard and mosquitto side by side, same client, same key types,
//! alternating runs; writes the MQTT section of BENCHMARKS.md.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use mqtt_proto::QoS;

use crate::creds::{self, Credentials};
use crate::mqtt::{
    self, Identity, IdleSpec, Pattern, PublishSpec, RunResult, StormSpec, Summary, Target,
};
use crate::suite::{self, Environment, fmt_rps, free_port, health_ok, tail};

pub const BEGIN: &str = "<!-- mqtt:begin -->";
pub const END: &str = "<!-- mqtt:end -->";
/// Goals of issue #3.
pub const GOAL_CONN_RATIO: f64 = 1.5;
pub const GOAL_MSG_RATIO: f64 = 1.0;
pub const GOAL_KIB_PER_CONN: f64 = 16.0;
/// Device identities per broker, used round-robin by the client.
const DEVICES: usize = 8;
/// The topic space every device may use, on both brokers.
const TOPIC_ROOT: &str = "bench";

pub struct Options {
    pub onboard: PathBuf,
    pub mosquitto: PathBuf,
    pub out: PathBuf,
    pub runs: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub storm_connections: usize,
    pub idle_connections: usize,
    pub width: usize,
    pub payload: usize,
    pub threads: usize,
    pub mosquitto_only: bool,
    pub keep_data: bool,
}

pub fn format_run(r: &RunResult) -> String {
    if r.held > 0 || r.kib_per_conn > 0.0 {
        format!(
            "{} connections held, {:.2} KiB broker RSS per connection, {} failed",
            r.held, r.kib_per_conn, r.errors
        )
    } else {
        format!(
            "{:.0}/s, p50 {:.2} ms, p99 {:.2} ms, {} errors, broker CPU {:.3}",
            r.rate, r.p50_ms, r.p99_ms, r.errors, r.broker_cpu
        )
    }
}

pub fn format_summary(s: &Summary) -> String {
    format_run(&RunResult {
        rate: s.rate,
        p50_ms: s.p50_ms,
        p99_ms: s.p99_ms,
        errors: s.errors,
        broker_cpu: s.broker_cpu,
        kib_per_conn: s.kib_per_conn,
        held: s.held,
    })
}

// ---------------------------------------------------------------- text generation

/// The IoT policy document Onboard gets: connect with any client id, publish, receive and
/// subscribe under `bench/`.
pub fn policy_document() -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": "arn:aws:iot:*:*:client/*"},
            {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
             "Resource": format!("arn:aws:iot:*:*:topic/{TOPIC_ROOT}/*")},
            {"Effect": "Allow", "Action": "iot:Subscribe",
             "Resource": format!("arn:aws:iot:*:*:topicfilter/{TOPIC_ROOT}/*")}
        ]
    })
    .to_string()
}

/// The mosquitto ACL equivalent to [`policy_document`]: every client reads and writes `bench/#`.
pub fn mosquitto_acl() -> String {
    format!(
        "# pattern lines apply to every client (topic lines before any user line only to anonymous ones)\npattern readwrite {TOPIC_ROOT}/#\n"
    )
}

/// mosquitto.conf for the benchmark.
pub fn mosquitto_conf(port: u16, dir: &Path) -> String {
    let p = |f: &str| dir.join(f).display().to_string();
    format!(
        "per_listener_settings false\n\
         listener {port} 127.0.0.1\n\
         cafile {ca}\n\
         certfile {cert}\n\
         keyfile {key}\n\
         require_certificate true\n\
         use_identity_as_username true\n\
         acl_file {acl}\n\
         persistence false\n\
         log_dest file {log}\n\
         log_type error\n\
         log_type warning\n\
         connection_messages false\n\
         user root\n\
         max_connections -1\n\
         max_inflight_messages 100\n\
         max_queued_messages 10000\n\
         max_keepalive 1200\n\
         set_tcp_nodelay true\n",
        ca = p("device-ca.pem"),
        cert = p("server.pem"),
        key = p("server.key"),
        acl = p("acl"),
        log = p("mosquitto.log"),
    )
}

// ---------------------------------------------------------------- PKI for mosquitto

fn openssl(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .context("cannot run openssl")?;
    if !out.status.success() {
        bail!(
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// root CA (P-256) → server cert (P-256, localhost + 127.0.0.1); device CA (P-256) → DEVICES
/// client certs with RSA-2048 keys, as Onboard's CreateKeysAndCertificate issues.
fn make_mosquitto_pki(dir: &Path) -> anyhow::Result<Vec<Identity>> {
    fs::create_dir_all(dir.join("devices"))?;
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let ca = |name: &str, cn: &str| -> anyhow::Result<()> {
        let mut a = vec!["req", "-x509"];
        a.extend(ec);
        let (k, c, s) = (
            format!("{name}.key"),
            format!("{name}.pem"),
            format!("/CN={cn}"),
        );
        a.extend([
            "-keyout",
            &k,
            "-out",
            &c,
            "-days",
            "30",
            "-subj",
            &s,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        openssl(dir, &a)
    };
    ca("root-ca", "Bench Root CA")?;
    ca("device-ca", "Bench Device CA")?;
    let mut a = vec!["req"];
    a.extend(ec);
    a.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    openssl(dir, &a)?;
    fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )?;
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "root-ca.pem",
            "-CAkey",
            "root-ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "30",
            "-extfile",
            "server.ext",
        ],
    )?;
    fs::write(
        dir.join("client.ext"),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
         extendedKeyUsage=clientAuth\n",
    )?;
    let mut ids = Vec::new();
    for i in 0..DEVICES {
        let (k, csr, c) = (
            format!("devices/d{i}.key"),
            format!("devices/d{i}.csr"),
            format!("devices/d{i}.pem"),
        );
        let subj = format!("/CN=bench-device-{i}");
        openssl(
            dir,
            &[
                "req", "-newkey", "rsa:2048", "-nodes", "-keyout", &k, "-out", &csr, "-subj", &subj,
            ],
        )?;
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "device-ca.pem",
                "-CAkey",
                "device-ca.key",
                "-CAcreateserial",
                "-out",
                &c,
                "-days",
                "30",
                "-extfile",
                "client.ext",
            ],
        )?;
        ids.push(Identity {
            cert: dir.join(&c),
            key: dir.join(&k),
        });
    }
    fs::write(dir.join("acl"), mosquitto_acl())?;
    Ok(ids)
}

// ---------------------------------------------------------------- brokers

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Onboard,
    Mosquitto,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Onboard => "Onboard",
            Kind::Mosquitto => "mosquitto",
        }
    }
}

/// A broker process we started (killed by pid when dropped).
struct Broker {
    kind: Kind,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    log: PathBuf,
    mqtt_port: u16,
    api_addr: Option<String>,
    child: Option<Child>,
}

/// Runs `program args` under bash with the open-file limit raised (65536, else the hard limit).
fn spawn_with_nofile(
    program: &Path,
    args: &[String],
    env: &[(String, String)],
    log: &Path,
) -> anyhow::Result<Child> {
    let out = fs::OpenOptions::new().create(true).append(true).open(log)?;
    Command::new("bash")
        .arg("-c")
        .arg(r#"ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@""#)
        .arg("bash")
        .arg(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()
        .with_context(|| format!("cannot start {}", program.display()))
}

async fn port_open(port: u16) -> bool {
    tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_ok()
}

impl Broker {
    fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    async fn start(&mut self) -> anyhow::Result<()> {
        let child = spawn_with_nofile(&self.program, &self.args, &self.env, &self.log)?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(c) = self.child.as_mut()
                && let Some(status) = c.try_wait()?
            {
                bail!(
                    "{} exited ({status}):\n{}",
                    self.kind.name(),
                    tail(&self.log, 20)
                );
            }
            let api_ok = match &self.api_addr {
                Some(a) => health_ok(a).await,
                None => true,
            };
            if api_ok && port_open(self.mqtt_port).await {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} not ready after 60 s:\n{}",
                    self.kind.name(),
                    tail(&self.log, 20)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(c) = self.child.as_mut()
            && let Some(status) = c.try_wait()?
        {
            bail!(
                "{} exited during the suite ({status}):\n{}",
                self.kind.name(),
                tail(&self.log, 20)
            );
        }
        Ok(())
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------- Onboard control plane

/// One SigV4-signed JSON request to the control plane; returns status and parsed body.
async fn call(
    addr: &str,
    creds: &Credentials,
    method: &str,
    path: &str,
    query: &str,
    body: &str,
) -> anyhow::Result<(u16, serde_json::Value)> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let mut headers = vec![("host", addr)];
    if !body.is_empty() {
        headers.push(("content-type", "application/json"));
    }
    let signed = sigv4::Signer {
        access_key_id: &creds.access_key_id,
        secret: &creds.secret_access_key,
        region: "us-east-1",
        service: "iot",
    }
    .sign(
        &sigv4::Request {
            method,
            path,
            query,
            headers: &headers,
            payload: sigv4::Payload::Bytes(body.as_bytes()),
        },
        now,
    )
    .map_err(|e| anyhow::anyhow!("signing: {e}"))?;
    let uri = if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    };
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", addr)
        .header("x-amz-date", signed.x_amz_date)
        .header("authorization", signed.authorization);
    if !body.is_empty() {
        req = req.header("content-type", "application/json");
    }
    let req = req.body(Full::new(Bytes::from(body.to_owned())))?;
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let conn = tokio::spawn(conn);
    let resp = tokio::time::timeout(Duration::from_secs(30), sender.send_request(req))
        .await
        .context("control plane timed out")??;
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await?.to_bytes();
    conn.abort();
    let v = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    Ok((status, v))
}

/// CreateKeysAndCertificate ×DEVICES (active), CreatePolicy, AttachPolicy; writes the PEMs.
async fn provision_onboard(
    api: &str,
    data_dir: &Path,
    dir: &Path,
) -> anyhow::Result<Vec<Identity>> {
    let creds = creds::load(&data_dir.join("credentials"), "default")?;
    let doc = serde_json::json!({ "policyDocument": policy_document() }).to_string();
    let (st, v) = call(api, &creds, "POST", "/policies/bench-policy", "", &doc).await?;
    if st != 200 && st != 409 {
        bail!("CreatePolicy: HTTP {st} {v}");
    }
    fs::create_dir_all(dir)?;
    let mut ids = Vec::new();
    for i in 0..DEVICES {
        let (st, v) = call(
            api,
            &creds,
            "POST",
            "/keys-and-certificate",
            "setAsActive=true",
            "",
        )
        .await?;
        if st != 200 {
            bail!("CreateKeysAndCertificate: HTTP {st} {v}");
        }
        let arn = v["certificateArn"].as_str().context("no certificateArn")?;
        let pem = v["certificatePem"].as_str().context("no certificatePem")?;
        let key = v["keyPair"]["PrivateKey"]
            .as_str()
            .context("no PrivateKey")?;
        let body = serde_json::json!({ "target": arn }).to_string();
        let (st, v) = call(
            api,
            &creds,
            "PUT",
            "/target-policies/bench-policy",
            "",
            &body,
        )
        .await?;
        if st != 200 {
            bail!("AttachPolicy: HTTP {st} {v}");
        }
        let id = Identity {
            cert: dir.join(format!("d{i}.pem")),
            key: dir.join(format!("d{i}.key")),
        };
        fs::write(&id.cert, pem)?;
        fs::write(&id.key, key)?;
        ids.push(id);
    }
    Ok(ids)
}

// ---------------------------------------------------------------- scenarios

#[derive(Clone, Debug)]
enum Scenario {
    Storm,
    Publish(Pattern, QoS),
    Idle,
}

impl Scenario {
    fn label(&self, o: &Options) -> String {
        match self {
            Scenario::Storm => format!("connect-storm, {} workers", o.storm_connections),
            Scenario::Publish(p, q) => {
                let shape = match p {
                    Pattern::FanIn => format!("{}→1", o.width),
                    Pattern::FanOut => format!("1→{}", o.width),
                };
                format!("QoS {} {} {shape}", *q as u8, p.name())
            }
            Scenario::Idle => format!("idle, {} connections", fmt_rps(o.idle_connections as f64)),
        }
    }
}

struct Side {
    broker: Broker,
    target: Arc<Target>,
}

async fn run_one(side: &mut Side, sc: &Scenario, o: &Options) -> anyhow::Result<RunResult> {
    let pid = side.broker.pid();
    let r = match sc {
        Scenario::Storm => {
            let spec = StormSpec {
                concurrency: o.storm_connections,
                duration: o.duration,
                warmup: o.warmup,
            };
            mqtt::connect_storm(&side.target, &spec, Some(pid)).await?
        }
        Scenario::Publish(pattern, qos) => {
            let spec = PublishSpec {
                pattern: *pattern,
                width: o.width,
                qos: *qos,
                payload: o.payload,
                inflight: 32,
                window: 32,
                duration: o.duration,
                warmup: o.warmup,
            };
            mqtt::publish(&side.target, &spec, Some(pid)).await?
        }
        Scenario::Idle => {
            // A fresh process for each memory measurement.
            side.broker.stop();
            side.broker.start().await?;
            let spec = IdleSpec {
                connections: o.idle_connections,
                parallel: 64,
                settle: Duration::from_secs(2),
            };
            mqtt::idle(&side.target, &spec, side.broker.pid()).await?
        }
    };
    side.broker.check_alive()?;
    Ok(r)
}

pub struct Row {
    label: String,
    kind: String,
    onboard: Option<Summary>,
    mosquitto: Summary,
}

pub async fn run(o: Options) -> anyhow::Result<()> {
    anyhow::ensure!(o.runs >= 1, "--runs must be at least 1");
    let nofile = mqtt::raise_nofile(o.idle_connections as u64 + 1024);
    eprintln!("onboard-bench: open-file limit {nofile}");
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let tmp =
        std::env::temp_dir().join(format!("onboard-mqtt-bench-{}-{stamp}", std::process::id()));
    fs::create_dir_all(&tmp)?;
    let result = run_in(&o, &tmp).await;
    if o.keep_data {
        eprintln!("onboard-bench: kept {}", tmp.display());
    } else {
        let _ = fs::remove_dir_all(&tmp);
    }
    result
}

async fn run_in(o: &Options, tmp: &Path) -> anyhow::Result<()> {
    // mosquitto
    let mdir = tmp.join("mosquitto");
    fs::create_dir_all(&mdir)?;
    let mids = make_mosquitto_pki(&mdir)?;
    let mport = free_port()?;
    fs::write(mdir.join("mosquitto.conf"), mosquitto_conf(mport, &mdir))?;
    let mversion = Command::new(&o.mosquitto)
        .arg("-h")
        .output()
        .ok()
        .and_then(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .next()
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let mut mosq = Broker {
        kind: Kind::Mosquitto,
        program: o.mosquitto.clone(),
        args: vec![
            "-c".into(),
            mdir.join("mosquitto.conf").display().to_string(),
        ],
        env: vec![],
        log: mdir.join("stdout.log"),
        mqtt_port: mport,
        api_addr: None,
        child: None,
    };
    mosq.start().await?;
    eprintln!(
        "onboard-bench: mosquitto pid {} on 127.0.0.1:{mport}",
        mosq.pid()
    );
    let maddr = mqtt::loopback("127.0.0.1", mport)?;
    let mut mside = Side {
        target: Arc::new(Target::new(
            maddr,
            Some("localhost"),
            &mdir.join("root-ca.pem"),
            &mids,
        )?),
        broker: mosq,
    };

    // Onboard
    let mut oside = None;
    let mut oversion = String::new();
    if !o.mosquitto_only {
        let odir = tmp.join("onboard");
        let data = odir.join("data");
        fs::create_dir_all(&data)?;
        oversion = Command::new(&o.onboard)
            .arg("--version")
            .output()
            .ok()
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
            .unwrap_or_default();
        let api = format!("127.0.0.1:{}", free_port()?);
        let oport = free_port()?;
        let mut broker = Broker {
            kind: Kind::Onboard,
            program: o.onboard.clone(),
            args: vec![
                "serve".into(),
                "--data-dir".into(),
                data.display().to_string(),
                "--api-listen".into(),
                api.clone(),
                "--mqtt-listen".into(),
                format!("127.0.0.1:{oport}"),
            ],
            env: vec![("ONBOARD_LOG".into(), "warn".into())],
            log: odir.join("server.log"),
            mqtt_port: oport,
            api_addr: Some(api.clone()),
            child: None,
        };
        broker.start().await?;
        eprintln!(
            "onboard-bench: onboard pid {} on 127.0.0.1:{oport}",
            broker.pid()
        );
        let ids = provision_onboard(&api, &data, &odir.join("devices")).await?;
        let addr = mqtt::loopback("127.0.0.1", oport)?;
        let target = Target::new(addr, Some("localhost"), &data.join("ca/root-ca.pem"), &ids)?;
        oside = Some(Side {
            target: Arc::new(target),
            broker,
        });
    }

    // Both accept a connection before measuring.
    for side in std::iter::once(&mut mside).chain(oside.as_mut()) {
        let c = side
            .target
            .open(0, "bench-check", 60)
            .await
            .with_context(|| format!("first connection to {}", side.broker.kind.name()))?;
        c.close().await;
    }

    let scenarios = [
        Scenario::Storm,
        Scenario::Publish(Pattern::FanIn, QoS::AtMostOnce),
        Scenario::Publish(Pattern::FanIn, QoS::AtLeastOnce),
        Scenario::Publish(Pattern::FanOut, QoS::AtMostOnce),
        Scenario::Publish(Pattern::FanOut, QoS::AtLeastOnce),
        Scenario::Idle,
    ];
    let mut rows = Vec::new();
    for sc in &scenarios {
        let label = sc.label(o);
        let (mut on, mut mo) = (Vec::new(), Vec::new());
        for i in 0..o.runs {
            if let Some(side) = oside.as_mut() {
                let r = run_one(side, sc, o).await?;
                eprintln!("{label}: Onboard run {}: {}", i + 1, format_run(&r));
                on.push(r);
            }
            let r = run_one(&mut mside, sc, o).await?;
            eprintln!("{label}: mosquitto run {}: {}", i + 1, format_run(&r));
            mo.push(r);
        }
        rows.push(Row {
            label,
            kind: match sc {
                Scenario::Storm => "storm",
                Scenario::Publish(..) => "publish",
                Scenario::Idle => "idle",
            }
            .to_owned(),
            onboard: (!on.is_empty()).then(|| Summary::of(&on)),
            mosquitto: Summary::of(&mo),
        });
    }
    let env = Environment::detect(&oversion);
    let section = render(o, &rows, &env, &mversion);
    let previous = fs::read_to_string(&o.out).ok();
    let text = suite::splice_between(previous.as_deref(), &section, BEGIN, END);
    fs::write(&o.out, text).with_context(|| format!("cannot write {}", o.out.display()))?;
    eprintln!("onboard-bench: wrote {}", o.out.display());
    print!("{section}");
    Ok(())
}

// ---------------------------------------------------------------- report

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}×", a / b)
    } else {
        "–".to_owned()
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "**met**" } else { "**not met**" }
}

pub fn render(o: &Options, rows: &[Row], env: &Environment, mversion: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{BEGIN}");
    s.push_str("## MQTT device gateway vs mosquitto\n\n");
    s.push_str(
        "| Scenario | Metric | Onboard | mosquitto | Onboard / mosquitto | Goal (issue #3) |\n\
         |---|---|---:|---:|---:|---|\n",
    );
    let na = "–".to_owned();
    for r in rows {
        let m = &r.mosquitto;
        let ob = r.onboard.as_ref();
        match r.kind.as_str() {
            "storm" | "publish" => {
                let (unit, goal, cpu_unit) = if r.kind == "storm" {
                    (
                        "new connections/s",
                        GOAL_CONN_RATIO,
                        "broker CPU ms per connection",
                    )
                } else {
                    (
                        "messages delivered/s",
                        GOAL_MSG_RATIO,
                        "broker CPU µs per message",
                    )
                };
                let g = match ob {
                    Some(b) => format!(
                        "≥ {goal}× mosquitto: {}",
                        verdict(m.rate > 0.0 && b.rate / m.rate >= goal)
                    ),
                    None => format!("≥ {goal}× mosquitto"),
                };
                let _ = writeln!(
                    s,
                    "| {} | {unit} | {} | {} | {} | {g} |",
                    r.label,
                    ob.map_or(na.clone(), |b| fmt_rps(b.rate)),
                    fmt_rps(m.rate),
                    ob.map_or(na.clone(), |b| ratio(b.rate, m.rate)),
                );
                let lat = if r.kind == "storm" {
                    "handshake+CONNACK p50 / p99 (ms)"
                } else {
                    "end-to-end latency p50 / p99 (ms)"
                };
                let _ = writeln!(
                    s,
                    "| | {lat} | {} | {:.2} / {:.2} | | |",
                    ob.map_or(na.clone(), |b| format!("{:.2} / {:.2}", b.p50_ms, b.p99_ms)),
                    m.p50_ms,
                    m.p99_ms
                );
                let prec = if r.kind == "storm" { 3 } else { 2 };
                let _ = writeln!(
                    s,
                    "| | {cpu_unit} | {} | {:.prec$} | {} | |",
                    ob.map_or(na.clone(), |b| format!("{:.prec$}", b.broker_cpu)),
                    m.broker_cpu,
                    ob.map_or(na.clone(), |b| ratio(b.broker_cpu, m.broker_cpu)),
                );
                if m.errors > 0 || ob.is_some_and(|b| b.errors > 0) {
                    let _ = writeln!(
                        s,
                        "| | errors (all runs) | {} | {} | | |",
                        ob.map_or(na.clone(), |b| b.errors.to_string()),
                        m.errors
                    );
                }
            }
            _ => {
                let g = match ob {
                    Some(b) => format!(
                        "≤ {GOAL_KIB_PER_CONN} KiB: {}",
                        verdict(b.held > 0 && b.kib_per_conn <= GOAL_KIB_PER_CONN)
                    ),
                    None => format!("≤ {GOAL_KIB_PER_CONN} KiB"),
                };
                let _ = writeln!(
                    s,
                    "| {} | broker RSS growth per connection (KiB) | {} | {:.1} | {} | {g} |",
                    r.label,
                    ob.map_or(na.clone(), |b| format!("{:.1}", b.kib_per_conn)),
                    m.kib_per_conn,
                    ob.map_or(na.clone(), |b| ratio(b.kib_per_conn, m.kib_per_conn)),
                );
                let _ = writeln!(
                    s,
                    "| | connections held (median) / failed (all runs) | {} | {} / {} | | |",
                    ob.map_or(na.clone(), |b| format!("{} / {}", b.held, b.errors)),
                    m.held,
                    m.errors
                );
            }
        }
    }
    for r in rows {
        let Some(b) = r.onboard.as_ref() else {
            continue;
        };
        let m = &r.mosquitto;
        let note = match r.kind.as_str() {
            "idle" if b.kib_per_conn > GOAL_KIB_PER_CONN => format!(
                "{}: Onboard's resident memory grows {:.1} KiB per idle connection, over the {GOAL_KIB_PER_CONN} KiB goal \
                 (mosquitto {:.1} KiB). This tool does not profile; see \"Where idle memory goes\" below for the \
                 last heap analysis.",
                r.label, b.kib_per_conn, m.kib_per_conn
            ),
            "storm" if m.rate > 0.0 && b.rate / m.rate < GOAL_CONN_RATIO => format!(
                "{}: {:.2}× mosquitto's connection rate, under the {GOAL_CONN_RATIO}× goal; broker CPU per \
                 connection {:.3} ms vs {:.3} ms (the client's RSA-2048 signature in every handshake shares the 2 cores).",
                r.label,
                b.rate / m.rate,
                b.broker_cpu,
                m.broker_cpu
            ),
            "publish" if m.rate > 0.0 && b.rate / m.rate < GOAL_MSG_RATIO => format!(
                "{}: {:.2}× mosquitto's message rate, under the goal; broker CPU per message {:.2} µs vs {:.2} µs.",
                r.label,
                b.rate / m.rate,
                b.broker_cpu,
                m.broker_cpu
            ),
            _ => continue,
        };
        let _ = writeln!(s, "\n**Not met** — {note}");
    }
    let _ = write!(
        s,
        "\nMedians over {runs} runs per scenario and broker, the runs alternating Onboard, mosquitto, Onboard, …\n\n\
         - **Date**: {date}\n\
         - **Machine**: {cpus} logical CPU(s), {model}; both brokers and the load generator share them \
         (only the broker under test is busy at any time)\n\
         - **Onboard**: commit `{commit}`{version}; `onboard serve` on a fresh data directory, `ONBOARD_LOG=warn`\n\
         - **mosquitto**: {mver} (Debian), `require_certificate true`, `use_identity_as_username true`, \
         `acl_file` with `pattern readwrite bench/#` (the Onboard policy allows `iot:Connect` on `client/*` and \
         `iot:Publish`/`iot:Receive`/`iot:Subscribe` on `bench/*`), `persistence false`, `log_dest file`, \
         `max_inflight_messages 100`, `max_queued_messages 10000`, `set_tcp_nodelay true` (without it Nagle's algorithm \
         adds ~40 ms to every handshake)\n\
         - **PKI**: server certificates ECDSA P-256 on both; device certificates with RSA-2048 keys on both \
         (Onboard's from CreateKeysAndCertificate with a policy attached through the control plane; mosquitto's \
         from openssl, signed by a P-256 device CA); {devices} device identities per broker, used round-robin. \
         TLS by rustls (aws-lc-rs) in the client, TLS 1.3 negotiated, no session resumption (every handshake is full)\n\
         - **Client**: `onboard-bench` on {threads} thread(s), MQTT 3.1.1, clean session, one process, loopback\n\
         - **connect-storm**: {c} workers, each a loop of TCP connect → mutual-TLS handshake → CONNECT → CONNACK \
         → DISCONNECT → close; {warm} s warm-up then {dur} s measured; rate = CONNACKs in the window / {dur} s; \
         latency from TCP connect to CONNACK. Broker CPU from /proc/PID/stat (utime+stime) over the window \
         divided by the connections made. The client signs with RSA-2048 in every handshake, so on 2 cores the \
         client takes a large share of the CPU: the broker CPU per connection is the clean comparison\n\
         - **publish**: topic `bench/<unique>/<pattern>`, {payload}-byte payload carrying publisher index, sequence \
         and send time (same process, monotonic clock); subscribers subscribe at the publishing QoS and PUBACK each \
         QoS 1 delivery. A publisher keeps at most 32 messages sent but not yet delivered to every subscriber \
         (and at QoS 1 at most 32 unacknowledged PUBLISHes); that window bounds latency and loss, so the rate is \
         what the broker sustains. Fan-in: {w} publishers → 1 subscriber; fan-out: 1 publisher → {w} subscribers, \
         the rate counting each delivery. {warm} s warm-up, {dur} s measured; rate = deliveries in the window / {dur} s\n\
         - **idle**: each run restarts the broker, waits 2 s, reads VmRSS of /proc/PID/status, opens {n} connections \
         (64 handshakes at a time, keep-alive 1200 s, nothing else sent), waits 2 s, reads VmRSS again; \
         figure = growth / connections held. Both brokers run under `ulimit -n 65536` (or the hard limit); the \
         tool raises its own soft RLIMIT_NOFILE to the hard limit (it needs about {n} + 100 descriptors)\n\n",
        runs = o.runs,
        date = env.date,
        cpus = env.cpus,
        model = env.cpu_model,
        commit = env.commit,
        version = if env.version.is_empty() {
            String::new()
        } else {
            format!(" (`{}`)", env.version)
        },
        mver = if mversion.is_empty() {
            "mosquitto"
        } else {
            mversion
        },
        devices = DEVICES,
        threads = o.threads,
        c = o.storm_connections,
        warm = o.warmup.as_secs_f64(),
        dur = o.duration.as_secs_f64(),
        payload = o.payload,
        w = o.width,
        n = fmt_rps(o.idle_connections as f64),
    );
    let mut cmd = format!(
        "target/release/onboard-bench run-mqtt-suite --onboard target/release/onboard --out {}",
        o.out.display()
    );
    for (name, v, d) in [
        ("runs", o.runs, 5),
        ("storm-connections", o.storm_connections, 32),
        ("idle-connections", o.idle_connections, 10_000),
        ("width", o.width, 4),
        ("payload", o.payload, 64),
        ("threads", o.threads, 2),
    ] {
        if v != d {
            let _ = write!(cmd, " --{name} {v}");
        }
    }
    if o.duration != Duration::from_secs(5) {
        let _ = write!(cmd, " --duration {}", o.duration.as_secs_f64());
    }
    if o.warmup != Duration::from_secs(1) {
        let _ = write!(cmd, " --warmup {}", o.warmup.as_secs_f64());
    }
    let _ = write!(
        s,
        "Rerun (as root, or with keys readable by mosquitto; needs `apt-get install -y mosquitto openssl`):\n\n\
         ```sh\ncargo build --release -p onboard -p bench\n{cmd}\n```\n\n\
         Against any MQTT-over-TLS broker with client certificates: `target/release/onboard-bench mqtt --host 127.0.0.1 \
         --port 8883 --cafile root.pem --cert device.pem --key device.key --scenario connect-storm|publish|idle \
         [--pattern fan-in|fan-out --qos 0|1 --payload 64] [--broker-pid PID] --runs 5` (`--certs-dir DIR` for \
         several NAME.pem/NAME.key identities).\n"
    );
    let _ = writeln!(s, "{END}");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_and_acl_grant_the_same_topics() {
        let v: serde_json::Value = serde_json::from_str(&policy_document()).expect("json");
        let st = v["Statement"].as_array().expect("statements");
        assert_eq!(st.len(), 3);
        assert!(st.iter().all(|s| s["Effect"] == "Allow"));
        assert_eq!(st[1]["Resource"], "arn:aws:iot:*:*:topic/bench/*");
        assert_eq!(st[2]["Resource"], "arn:aws:iot:*:*:topicfilter/bench/*");
        assert!(mosquitto_acl().contains("\npattern readwrite bench/#\n"));
        // No user/pattern lines: the rule applies to every client.
        assert!(!mosquitto_acl().lines().any(|l| l.starts_with("user ")));
    }

    #[test]
    fn mosquitto_conf_has_the_essentials() {
        let c = mosquitto_conf(18883, Path::new("/tmp/x"));
        for line in [
            "listener 18883 127.0.0.1",
            "require_certificate true",
            "use_identity_as_username true",
            "acl_file /tmp/x/acl",
            "cafile /tmp/x/device-ca.pem",
            "persistence false",
            "log_dest file /tmp/x/mosquitto.log",
            "user root",
        ] {
            assert!(c.lines().any(|l| l == line), "missing {line}");
        }
    }

    #[test]
    fn splice_keeps_the_control_plane_section() {
        let old = format!(
            "# B\n\n{}\ncp\n{}\n\n{BEGIN}\nold\n{END}\n",
            suite::BEGIN,
            suite::END
        );
        let new = format!("{BEGIN}\nnew\n{END}\n");
        let out = suite::splice_between(Some(&old), &new, BEGIN, END);
        assert!(out.contains("\ncp\n"));
        assert!(out.contains("\nnew\n") && !out.contains("\nold\n"));
        let appended = suite::splice_between(Some("# B\n"), &new, BEGIN, END);
        assert!(appended.ends_with(&new));
    }

    #[test]
    fn ratios() {
        assert_eq!(ratio(3.0, 2.0), "1.50×");
        assert_eq!(ratio(1.0, 0.0), "–");
    }
}
