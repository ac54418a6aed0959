//! `switchboard serve`: load settings, set up logging, run until SIGTERM or Ctrl-C.

use tracing_subscriber::{EnvFilter, fmt};

use super::ServeArgs;
use crate::{
    config::{Config, LogFormat},
    secret::{Secret, SecretSource},
    server,
};

pub(super) fn run(args: ServeArgs) -> Result<(), String> {
    let config = Config::load(args.config.as_deref(), &args).map_err(|e| e.to_string())?;
    init_logging(config.log_format);
    let secret = Secret::load(&config).map_err(|e| format!("secret: {e}"))?;
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    runtime.block_on(serve(config, secret))
}

fn init_logging(format: LogFormat) {
    let filter =
        EnvFilter::try_from_env("SWITCHBOARD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
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
    let running = server::start(config, &secret)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    tracing::info!(
        event = "server.listening",
        addr = %running.addr,
        "switchboard listening on http://{}/ (WebSocket: ws://{}/v1/ws)",
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
