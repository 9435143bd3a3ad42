//! `onboard serve`: binds every listener, then reports ready.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tracing_subscriber::EnvFilter;

use crate::config::Config;
use crate::init::{self, DEFAULT_ACCOUNT};

/// Logs go to stderr; the filter comes from `ONBOARD_LOG` (or `RUST_LOG`), else `default`.
pub fn init_logging(format: &str, default: &str) {
    let filter = std::env::var("ONBOARD_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(format!("{default},sqlx=warn")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

fn tls_acceptor(cert_pem: &str, key_pem: &str) -> anyhow::Result<TlsAcceptor> {
    let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .context("the server certificate is not valid PEM")?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .context("the server key is not valid PEM")?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves `app` over TLS on `listener` until `shutdown` fires.
async fn serve_https(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    app: axum::Router,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "HTTPS accept failed");
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(
                std::time::Duration::from_secs(10),
                acceptor.accept(tcp),
            )
            .await
            {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => return tracing::debug!(%peer, error = %e, "HTTPS handshake failed"),
                Err(_) => return tracing::debug!(%peer, "HTTPS handshake timed out"),
            };
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            if let Err(e) = builder.serve_connection(TokioIo::new(tls), service).await {
                tracing::debug!(%peer, error = %e, "HTTPS connection ended with an error");
            }
        });
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

pub async fn serve(config: Config) -> anyhow::Result<()> {
    let materials = init::prepare(&config).await?;
    let mut registry = prometheus_client::registry::Registry::default();
    let api_metrics = api::ApiMetrics::register(&mut registry);
    let gateway = gateway::Gateway::start(
        gateway::GatewayConfig {
            mqtt_listen: config.mqtt_listen,
            alpn_listen: config.mqtt_alpn_listen,
            domain: config.domain.clone(),
            server_names: init::server_names(&config),
        },
        materials.store.clone(),
        materials.root_ca.clone(),
        &mut registry,
    )
    .await
    .context("cannot start the device gateway")?;

    let ready = Arc::new(AtomicBool::new(false));
    let state = api::AppState {
        store: materials.store.clone(),
        device_ca: materials.device_ca.clone(),
        config: Arc::new(api::ApiConfig {
            dev_mode: config.dev,
            domain: config.domain.clone(),
            max_body_bytes: 1 << 20,
            device_key_algorithm: config.device_key_algorithm()?,
        }),
        keys: Arc::default(),
        metrics: Arc::new(api_metrics),
        registry: Arc::new(registry),
        ready: ready.clone(),
    };
    let app = api::router(state);

    let http = TcpListener::bind(config.api_listen)
        .await
        .with_context(|| format!("cannot listen on {} (api_listen)", config.api_listen))?;
    let https = match config.api_tls_listen {
        Some(addr) => Some((
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (api_tls_listen)"))?,
            tls_acceptor(&materials.server_cert_pem, &materials.server_key_pem)?,
        )),
        None => None,
    };

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    {
        let mut stop = stop_rx.clone();
        let app = app.clone();
        tasks.spawn(async move {
            let shutdown = async move {
                let _ = stop.changed().await;
            };
            if let Err(e) = axum::serve(http, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(error = %e, "the HTTP listener failed");
            }
        });
    }
    if let Some((listener, acceptor)) = https {
        tasks.spawn(serve_https(
            listener,
            acceptor,
            app.clone(),
            stop_rx.clone(),
        ));
    }

    ready.store(true, Ordering::Release);
    print_banner(&config, &materials).await?;

    shutdown_signal().await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    gateway.shutdown().await;
    while tasks.join_next().await.is_some() {}
    materials.store.close().await;
    Ok(())
}

async fn print_banner(config: &Config, materials: &init::Materials) -> anyhow::Result<()> {
    let dir = std::fs::canonicalize(&config.data_dir).unwrap_or_else(|_| config.data_dir.clone());
    let accounts = materials.store.list_accounts().await?;
    let default = accounts.iter().find(|a| a.name == DEFAULT_ACCOUNT);
    let mut out = format!("Onboard {} is serving.\n", env!("CARGO_PKG_VERSION"));
    out += &format!(
        "  control plane  {} (AWS IoT API, SigV4)\n",
        config.api_url()
    );
    if let Some(addr) = config.api_tls_listen {
        out += &format!("  control (TLS)  https://{addr}\n");
    }
    out += &format!("  MQTT (mTLS)    {}\n", config.mqtt_listen);
    if let Some(addr) = config.mqtt_alpn_listen {
        out += &format!("  MQTT (ALPN)    {addr} (x-amzn-mqtt-ca)\n");
    }
    out += &format!(
        "  trust anchor   {}\n",
        dir.join("ca/root-ca.pem").display()
    );
    if let Some(a) = default {
        out += &format!(
            "  account        {} (default), device endpoint {}\n",
            a.account_id,
            config.endpoint_address(&a.endpoint_prefix)
        );
    }
    if let Some(c) = &materials.created_account {
        out += &format!(
            "  created        account {} with access key {}\n",
            c.account_id, c.access_key_id
        );
    }
    out += "Use the AWS CLI or any AWS SDK with:\n";
    out += &format!(
        "  export AWS_SHARED_CREDENTIALS_FILE={} AWS_CONFIG_FILE={}\n  aws iot list-things\n",
        dir.join("credentials").display(),
        dir.join("aws-config").display()
    );
    print!("{out}");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    Ok(())
}
