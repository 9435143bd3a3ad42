#![forbid(unsafe_code)]
//! `onboard`: the server binary. It composes the crates (store, pki, api) and owns configuration, the data
//! directory, listeners and the CLI. Exit codes: 0 success, 2 usage error, 1 anything else (one line on stderr).

mod config;
mod init;
mod serve;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use crate::config::Config;

#[derive(Parser)]
#[command(
    name = "onboard",
    version,
    about = "Self-hosted device identity and provisioning, compatible with AWS IoT Core"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Initialise the data directory if needed, then serve the control plane and the device gateway.
    Serve(ServeArgs),
    /// Manage accounts (works whether or not a server is running on the data directory).
    #[command(subcommand)]
    Account(AccountCommand),
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Settings shared by every subcommand. Each also reads `ONBOARD_<NAME>` and the config file's `<name>` key.
#[derive(Args, Serialize, Default)]
struct CommonFlags {
    /// TOML configuration file [env: ONBOARD_CONFIG]
    #[arg(long, env = "ONBOARD_CONFIG")]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// Data directory (default ./onboard-data) [env: ONBOARD_DATA_DIR]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    data_dir: Option<PathBuf>,
    /// Region of the default account's files and of printed endpoints (default us-east-1) [env: ONBOARD_REGION]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<String>,
    /// Domain of device endpoints, <prefix>-ats.iot.<region>.<domain> (default localhost) [env: ONBOARD_DOMAIN]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    domain: Option<String>,
}

#[derive(Args, Serialize)]
struct ServeArgs {
    #[command(flatten)]
    #[serde(flatten)]
    common: CommonFlags,
    /// Control plane (HTTP) listen address (default 127.0.0.1:8080) [env: ONBOARD_API_LISTEN]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    api_listen: Option<SocketAddr>,
    /// Control plane over HTTPS, same server certificate (off by default) [env: ONBOARD_API_TLS_LISTEN]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    api_tls_listen: Option<SocketAddr>,
    /// MQTT over mutual TLS (default 0.0.0.0:8883) [env: ONBOARD_MQTT_LISTEN]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    mqtt_listen: Option<SocketAddr>,
    /// MQTT over mutual TLS with ALPN x-amzn-mqtt-ca, AWS's port 443 (off by default) [env: ONBOARD_MQTT_ALPN_LISTEN]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    mqtt_alpn_listen: Option<SocketAddr>,
    /// Development mode: enables POST /_onboard/reset [env: ONBOARD_DEV]
    #[arg(long)]
    #[serde(skip_serializing_if = "is_false")]
    dev: bool,
    /// Log format: human or json (default human) [env: ONBOARD_LOG_FORMAT]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    log_format: Option<String>,
}

#[derive(Subcommand)]
enum AccountCommand {
    /// Create an account with its first access key.
    Create(AccountCreateArgs),
    /// List accounts and their access key ids.
    List(AccountListArgs),
}

#[derive(Args)]
struct AccountCreateArgs {
    #[command(flatten)]
    common: CommonFlags,
    /// Account name (unique)
    #[arg(long)]
    name: String,
    /// Use this 12-digit account id instead of a random one
    #[arg(long)]
    account_id: Option<String>,
    /// Use this access key id (with --secret-access-key), e.g. to import existing credentials
    #[arg(long, requires = "secret_access_key")]
    access_key_id: Option<String>,
    /// Use this secret access key (with --access-key-id)
    #[arg(long, requires = "access_key_id")]
    secret_access_key: Option<String>,
    /// Print one JSON object instead of text
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct AccountListArgs {
    #[command(flatten)]
    common: CommonFlags,
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("onboard: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("onboard: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let config = Config::load(args.common.config.as_deref(), &args)?;
            serve::init_logging(&config.log_format, "info");
            serve::serve(config).await
        }
        Command::Account(AccountCommand::Create(args)) => {
            let config = Config::load(args.common.config.as_deref(), &args.common)?;
            serve::init_logging("human", "warn");
            account_create(&config, args).await
        }
        Command::Account(AccountCommand::List(args)) => {
            let config = Config::load(args.common.config.as_deref(), &args.common)?;
            serve::init_logging("human", "warn");
            account_list(&config, args.json).await
        }
    }
}

async fn account_create(config: &Config, args: AccountCreateArgs) -> anyhow::Result<()> {
    let mut new = init::generate_account(&args.name);
    anyhow::ensure!(
        !args.name.trim().is_empty() && args.name.len() <= 128,
        "--name must be 1 to 128 characters"
    );
    if let Some(id) = args.account_id {
        anyhow::ensure!(
            id.len() == 12 && id.chars().all(|c| c.is_ascii_digit()),
            "--account-id must be 12 digits"
        );
        new.account_id = id;
    }
    if let (Some(key), Some(secret)) = (args.access_key_id, args.secret_access_key) {
        anyhow::ensure!(
            (16..=128).contains(&key.len()) && key.chars().all(|c| c.is_ascii_alphanumeric()),
            "--access-key-id must be 16 to 128 letters and digits"
        );
        anyhow::ensure!(
            secret.len() >= 16 && !secret.contains(char::is_whitespace),
            "--secret-access-key is too short"
        );
        new.access_key_id = key;
        new.secret_access_key = secret;
    }
    let store = init::open_store(config).await?;
    let result = store
        .create_account(&new)
        .await
        .context("cannot create the account");
    store.close().await;
    let account = result?;
    let endpoint = config.endpoint_address(&account.endpoint_prefix);
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "accountId": account.account_id,
                "accessKeyId": new.access_key_id,
                "secretAccessKey": new.secret_access_key,
                "endpointAddress": endpoint,
            })
        );
    } else {
        println!("account id:        {}", account.account_id);
        println!("access key id:     {}", new.access_key_id);
        println!("secret access key: {}", new.secret_access_key);
        println!("device endpoint:   {endpoint}");
    }
    Ok(())
}

async fn account_list(config: &Config, json: bool) -> anyhow::Result<()> {
    let store = init::open_store(config).await?;
    let accounts = store.list_accounts().await;
    store.close().await;
    let accounts = accounts?;
    if json {
        let list: Vec<_> = accounts
            .iter()
            .map(|a| {
                serde_json::json!({
                    "accountId": a.account_id,
                    "name": a.name,
                    "accessKeyIds": a.access_key_ids,
                    "endpointAddress": config.endpoint_address(&a.endpoint_prefix),
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(list));
    } else {
        for a in &accounts {
            println!(
                "{}  {:<20} {}  {}",
                a.account_id,
                a.name,
                config.endpoint_address(&a.endpoint_prefix),
                a.access_key_ids.join(",")
            );
        }
    }
    Ok(())
}
