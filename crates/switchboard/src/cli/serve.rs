//! `switchboard serve`: load settings, set up logging, run until SIGTERM or Ctrl-C.

use std::io::IsTerminal;

use tracing_subscriber::{EnvFilter, util::SubscriberInitExt};

use super::ServeArgs;
use crate::{
    config::Config,
    runtime,
    secret::{Secret, SecretSource},
    server,
    telemetry::{self, Telemetry},
};

pub(super) fn run(args: ServeArgs) -> Result<(), String> {
    let config = Config::load(args.config.as_deref(), &args).map_err(|e| e.to_string())?;
    let telemetry = init_logging(&config)?;
    crate::open_files::raise_soft_limit();
    let secret = Secret::load(&config).map_err(|e| format!("secret: {e}"))?;
    let runtime = runtime::build(config.worker_threads).map_err(|e| format!("runtime: {e}"))?;
    let result = runtime.block_on(serve(config, secret));
    drop(runtime);
    // After the runtime: the exporter's last batch goes out on its own thread.
    telemetry.shutdown();
    result
}

/// Colours only for a person at a terminal, and never against `NO_COLOR` (no-color.org).
fn colours() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn init_logging(config: &Config) -> Result<Telemetry, String> {
    let filter =
        EnvFilter::try_from_env("SWITCHBOARD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let (subscriber, telemetry) = telemetry::subscriber(
        config.log_format,
        filter,
        std::io::stderr,
        colours(),
        config.otlp_endpoint.as_deref(),
    )?;
    subscriber.try_init().map_err(|e| format!("logging: {e}"))?;
    if let Some(endpoint) = &config.otlp_endpoint {
        tracing::info!(
            event = "server.tracing",
            endpoint = %telemetry::traces_url(endpoint),
            "exporting traces over OTLP/HTTP"
        );
    }
    Ok(telemetry)
}

async fn serve(config: Config, secret: Secret) -> Result<(), String> {
    match &secret.source {
        SecretSource::Configured => {}
        SecretSource::DevFile(path) => tracing::warn!(
            event = "server.dev_secret",
            path = %path.display(),
            "using the development secret from {}; set SWITCHBOARD_SECRET in production",
            path.display()
        ),
        SecretSource::Generated(path) => tracing::warn!(
            event = "server.dev_secret",
            path = %path.display(),
            "no SWITCHBOARD_SECRET set: generated a development secret in {}; set SWITCHBOARD_SECRET in production",
            path.display()
        ),
    }
    let listen = config.listen;
    let (http, ws) = match config.tls_cert {
        Some(_) => ("https", "wss"),
        None => ("http", "ws"),
    };
    let running = server::start(config, &secret)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    tracing::info!(
        event = "server.listening",
        addr = %running.addr,
        tls = http == "https",
        "switchboard listening on {http}://{}/ (WebSocket: {ws}://{}/v1/ws)",
        running.addr,
        running.addr
    );
    let shutdown = running.shutdown_token();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!(event = "server.signal", "shutdown signal received");
        shutdown.cancel();
    });
    running.wait().await.map_err(|e| e.to_string())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_flags_override_nothing() {
        let args = ServeArgs {
            listen: None,
            config: Some("ignored.toml".into()),
            log_format: None,
        };
        assert_eq!(serde_json::to_value(args).unwrap(), serde_json::json!({}));
    }
}
