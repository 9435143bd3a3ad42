//! Configuration: flags win over `ONBOARD_*` environment variables, which win over the TOML file, which wins over
//! the defaults. Each setting is defined once, in [`Config`]; the flags in `main.rs` mirror its fields.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the database, keys and generated client files live.
    pub data_dir: PathBuf,
    /// Control plane over HTTP.
    pub api_listen: SocketAddr,
    /// Control plane over HTTPS (same server certificate); off unless set.
    pub api_tls_listen: Option<SocketAddr>,
    /// MQTT over mutual TLS.
    pub mqtt_listen: SocketAddr,
    /// MQTT over mutual TLS with ALPN `x-amzn-mqtt-ca` (AWS's port 443); off unless set.
    pub mqtt_alpn_listen: Option<SocketAddr>,
    /// The region of the default account's files; requests may use any region.
    pub region: String,
    /// Device endpoints are `<prefix>-ats.iot.<region>.<domain>`.
    pub domain: String,
    /// Development mode: enables `POST /_onboard/reset`.
    pub dev: bool,
    /// Extra names (DNS names or IP literals) for the server certificate, beside `localhost` and `127.0.0.1`.
    pub server_names: Vec<String>,
    /// Key type of CreateKeysAndCertificate (`rsa-2048` like AWS, or `ec-p256`).
    pub device_key_algorithm: String,
    /// `human` or `json`.
    pub log_format: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./onboard-data"),
            api_listen: "127.0.0.1:8080".parse().expect("valid literal"),
            api_tls_listen: None,
            mqtt_listen: "0.0.0.0:8883".parse().expect("valid literal"),
            mqtt_alpn_listen: None,
            region: "us-east-1".into(),
            domain: "localhost".into(),
            dev: false,
            server_names: Vec::new(),
            device_key_algorithm: "rsa-2048".into(),
            log_format: "human".into(),
        }
    }
}

impl Config {
    /// Layers the sources. `flags` holds only the flags that were given.
    pub fn load(file: Option<&Path>, flags: &impl Serialize) -> anyhow::Result<Config> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            anyhow::ensure!(
                path.exists(),
                "the config file {} does not exist",
                path.display()
            );
            figment = figment.merge(Toml::file(path));
        }
        figment = figment
            .merge(
                Env::prefixed("ONBOARD_")
                    .ignore(&["config", "log"])
                    .split("__"),
            )
            .merge(Serialized::globals(flags));
        let config: Config = figment.extract().context("invalid configuration")?;
        config
            .device_key_algorithm()
            .context("device_key_algorithm")?;
        anyhow::ensure!(
            matches!(config.log_format.as_str(), "human" | "json"),
            "log_format must be human or json, not {:?}",
            config.log_format
        );
        Ok(config)
    }

    pub fn device_key_algorithm(&self) -> anyhow::Result<pki::KeyAlgorithm> {
        self.device_key_algorithm
            .parse()
            .map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// The URL clients use for the control plane: a wildcard bind address is reached through loopback.
    pub fn api_url(&self) -> String {
        let mut addr = self.api_listen;
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        format!("http://{addr}")
    }

    /// The account endpoint for `prefix` in the configured region.
    pub fn endpoint_address(&self, prefix: &str) -> String {
        format!("{prefix}-ats.iot.{}.{}", self.region, self.domain)
    }
}
