//! The real `switchboard serve` binary on an ephemeral port, for what only a process shows: its
//! log on stderr from startup to exit, its open-files limit, its CPU time.

use std::{
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use parking_lot::Mutex;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::{DEADLINE, tokens};

/// The environment that turns off the per-address budgets, as
/// [`no_address_budgets`](crate::server::no_address_budgets) does in-process.
pub const NO_ADDRESS_BUDGETS: [(&str, &str); 2] = [
    ("SWITCHBOARD_RATE_LIMITS__SESSIONS_PER_SEC_PER_ADDRESS", "0"),
    ("SWITCHBOARD_RATE_LIMITS__JOINS_PER_SEC_PER_ADDRESS", "0"),
];

/// A running `switchboard serve`, logging JSON; its stderr is collected line by line (and so
/// never fills up and blocks the server).
pub struct Process {
    child: tokio::process::Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: tokio::task::JoinHandle<()>,
    /// `host:port` it listens on, as it logged it.
    pub addr: String,
}

impl Process {
    /// Starts `binary` (a test's `env!("CARGO_BIN_EXE_switchboard")`) with `env` on top of the
    /// test secret. With `open_files`, it runs under that open-files limit (soft and hard, set
    /// by the shell's `ulimit -n` before `exec`).
    pub async fn start(binary: &str, env: &[(&str, &str)], open_files: Option<u64>) -> Process {
        static STARTED: AtomicU64 = AtomicU64::new(0);
        let data_dir = std::env::temp_dir().join(format!(
            "sb-process-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        ));
        let serve = ["serve", "--listen", "127.0.0.1:0", "--log-format", "json"];
        let mut command = match open_files {
            None => tokio::process::Command::new(binary),
            Some(n) => {
                let mut sh = tokio::process::Command::new("sh");
                sh.args([
                    "-c",
                    &format!("ulimit -n {n} && exec \"$0\" \"$@\""),
                    binary,
                ]);
                sh
            }
        };
        let mut child = command
            .args(serve)
            .env("SWITCHBOARD_SECRET", tokens::SECRET)
            .env("SWITCHBOARD_DATA_DIR", &data_dir)
            .env_remove("SWITCHBOARD_CONFIG")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("switchboard binary starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
        let collected = lines.clone();
        let reader = tokio::spawn(async move {
            let mut addr_tx = Some(addr_tx);
            let mut stderr = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = stderr.next_line().await {
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && v["event"] == "server.listening"
                    && let Some(tx) = addr_tx.take()
                {
                    let _ = tx.send(v["addr"].as_str().unwrap_or_default().to_owned());
                }
                collected.lock().push(line);
            }
        });
        let addr = tokio::time::timeout(DEADLINE, addr_rx)
            .await
            .expect("the server logs its address in time")
            .expect("a server.listening line");
        Process {
            child,
            lines,
            reader,
            addr,
        }
    }

    /// The server's process id (the shell `exec`s it, so it keeps the child's id).
    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().expect("wait status").is_none()
    }

    /// The JSON log lines so far whose `event` is `event`.
    pub fn events(&self, event: &str) -> Vec<Value> {
        events(&self.lines.lock(), event)
    }

    /// SIGKILL, as a machine dying would: nothing of the process runs after it.
    pub async fn kill(mut self) {
        self.child.start_kill().expect("SIGKILL is sent");
        tokio::time::timeout(DEADLINE, self.child.wait())
            .await
            .expect("the process dies in time")
            .expect("an exit status");
    }

    /// SIGTERM, then every line the process wrote until it exited, which it must do cleanly.
    pub async fn stop(mut self) -> Vec<String> {
        let pid = self.pid().to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let exit = tokio::time::timeout(DEADLINE, self.child.wait())
            .await
            .expect("graceful exit in time")
            .expect("an exit status");
        assert!(exit.success(), "{exit:?}");
        tokio::time::timeout(DEADLINE, self.reader)
            .await
            .expect("stderr closes")
            .expect("the reader ends");
        std::mem::take(&mut *self.lines.lock())
    }
}

/// The JSON lines of `lines` whose `event` is `event`.
pub fn events(lines: &[String], event: &str) -> Vec<Value> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"] == event)
        .collect()
}
