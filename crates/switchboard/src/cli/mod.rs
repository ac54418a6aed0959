//! The `switchboard` command line: `serve`, `migrate`, `admin`, `token` and `client`.

mod admin;
mod client;
mod migrate;
mod serve;
mod token;

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use switchboard_protocol::Role;

use crate::config::LogFormat;

/// WebRTC signaling server.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Create or upgrade the database (`serve` does it too, at start).
    Migrate(StoreArgs),
    /// Give an account the admin grant (every room), or take it away.
    Admin(AdminArgs),
    /// Print a token signed with the server's secret.
    Token(TokenArgs),
    /// An interactive client for trying and debugging a server.
    Client(ClientArgs),
}

/// `switchboard serve`.
#[derive(Debug, clap::Args, serde::Serialize)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<SocketAddr>,
    /// TOML settings file (environment variables SWITCHBOARD_* and flags override it).
    #[arg(long, env = "SWITCHBOARD_CONFIG")]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long, value_parser = parse_log_format)]
    #[serde(skip_serializing_if = "Option::is_none")]
    log_format: Option<LogFormat>,
}

fn parse_log_format(s: &str) -> Result<LogFormat, String> {
    match s {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err("expected `text` or `json`".into()),
    }
}

/// Where `migrate` and `admin` find the database.
#[derive(Debug, clap::Args, serde::Serialize)]
pub struct StoreArgs {
    /// TOML settings file, to find `database_url` and `data_dir` (the environment and flags
    /// override it).
    #[arg(long, env = "SWITCHBOARD_CONFIG")]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// The database to migrate [default: the settings' `database_url`, or the SQLite file in
    /// `data_dir`].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    database_url: Option<String>,
}

/// `switchboard admin`.
#[derive(Debug, clap::Args)]
pub struct AdminArgs {
    /// The account's username.
    username: String,
    /// Take the grant away instead.
    #[arg(long)]
    revoke: bool,
    #[command(flatten)]
    store: StoreArgs,
}

/// `switchboard token`.
#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// Room id, or a prefix ending in `*`.
    #[arg(long)]
    room: String,
    /// User id (the token's `sub`).
    #[arg(long)]
    user: String,
    /// Role in the room.
    #[arg(long, default_value = "guest", value_parser = parse_role)]
    role: Role,
    /// Lifetime, such as 30m, 1h or 7d.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    ttl: std::time::Duration,
    /// Display name.
    #[arg(long)]
    name: Option<String>,
    /// Settings file, to find the secret the server uses.
    #[arg(long, env = "SWITCHBOARD_CONFIG")]
    config: Option<PathBuf>,
}

fn parse_role(s: &str) -> Result<Role, String> {
    match s {
        "host" => Ok(Role::Host),
        "guest" => Ok(Role::Guest),
        _ => Err("expected `host` or `guest`".into()),
    }
}

/// `switchboard client`.
#[derive(Debug, clap::Args)]
pub struct ClientArgs {
    /// WebSocket URL of the server.
    #[arg(long, default_value = "ws://127.0.0.1:8080/v1/ws")]
    url: String,
    /// Token (from `switchboard token`).
    #[arg(long, env = "SWITCHBOARD_TOKEN")]
    token: String,
}

impl Cli {
    /// Runs the chosen subcommand.
    pub fn run(self) -> ExitCode {
        let result = match self.command {
            Command::Serve(args) => serve::run(args),
            Command::Migrate(args) => migrate::run(args),
            Command::Admin(args) => admin::run(args),
            Command::Token(args) => token::run(args),
            Command::Client(args) => client::run(args),
        };
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("switchboard: {message}");
                ExitCode::FAILURE
            }
        }
    }
}
