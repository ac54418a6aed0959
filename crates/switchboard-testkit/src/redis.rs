//! The Redis of cluster-mode tests: where it is, whether it answers, and a key prefix of a
//! test's own so tests and runs never see each other's keys; and a Redis of a test's own.

use crate::eventually;

/// The Redis tests use: `SWITCHBOARD_TEST_REDIS`, or `redis://127.0.0.1:6379/0`.
pub fn url() -> String {
    std::env::var("SWITCHBOARD_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

/// Whether Redis accepts connections. With `CI` set a missing Redis is a failure (CI must
/// provide one: `scripts/test` starts it); without, the caller skips, and this says so.
pub async fn available() -> bool {
    let url = url();
    let addr = url
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let up = tokio::net::TcpStream::connect(&addr).await.is_ok();
    if !up {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but Redis does not answer at {addr}: the cluster tests need it"
        );
        eprintln!("skipped: no Redis at {addr} (set CI to make this a failure)");
    }
    up
}

/// A key prefix no other test or run uses, naming `test`.
pub fn unique_prefix(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is past 1970")
        .as_nanos();
    format!("sbtest-{test}-{}-{nanos}", std::process::id())
}

/// Deletes every key under `prefix` (what in-process servers, which stop without draining, leave).
pub async fn delete_prefix(prefix: &str) {
    let client = ::redis::Client::open(url()).expect("a Redis URL");
    let mut c = client
        .get_multiplexed_async_connection()
        .await
        .expect("Redis answers");
    let keys: Vec<String> = ::redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut c)
        .await
        .expect("KEYS answers");
    if !keys.is_empty() {
        let _: i64 = ::redis::cmd("DEL")
            .arg(&keys)
            .query_async(&mut c)
            .await
            .expect("DEL answers");
    }
}

/// The keys under `prefix` in Redis.
pub async fn keys(prefix: &str) -> Vec<String> {
    let client = ::redis::Client::open(url()).expect("a Redis URL");
    let mut c = client
        .get_multiplexed_async_connection()
        .await
        .expect("Redis answers");
    ::redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut c)
        .await
        .expect("KEYS answers")
}

/// A `redis-server` of the test's own on a free port, for faults that must not touch the shared
/// one; stopped when dropped.
pub struct OwnRedis {
    server: tokio::process::Child,
    port: u16,
    /// Its URL.
    pub url: String,
}

impl OwnRedis {
    /// Starts one, or `None` when there is no `redis-server` (a failure with `CI` set).
    pub async fn start() -> Option<OwnRedis> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = match OwnRedis::spawn(port) {
            Ok(server) => server,
            Err(e) => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "CI is set but redis-server cannot start: {e}"
                );
                eprintln!("skipped: no redis-server ({e})");
                return None;
            }
        };
        let own = OwnRedis {
            server,
            port,
            url: format!("redis://127.0.0.1:{port}/0"),
        };
        own.answers().await;
        Some(own)
    }

    fn spawn(port: u16) -> std::io::Result<tokio::process::Child> {
        tokio::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--loglevel", "warning"])
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
    }

    async fn answers(&self) {
        eventually("the test's redis-server answers", || async {
            let client = ::redis::Client::open(self.url.as_str()).map_err(|e| e.to_string())?;
            let mut c = client
                .get_multiplexed_async_connection()
                .await
                .map_err(|e| e.to_string())?;
            ::redis::cmd("PING")
                .query_async::<String>(&mut c)
                .await
                .map_err(|e| e.to_string())
        })
        .await;
    }

    /// Kills it (SIGKILL): it keeps nothing.
    pub async fn kill(&mut self) {
        self.server.kill().await.expect("redis-server killed");
    }

    /// Starts it again, empty, on the same port.
    pub async fn restart(&mut self) {
        self.server = OwnRedis::spawn(self.port).expect("redis-server starts again");
        self.answers().await;
    }

    /// Runs the command `args` on it.
    pub async fn command(&self, args: &[&str]) -> ::redis::Value {
        let client = ::redis::Client::open(self.url.as_str()).unwrap();
        let mut c = client.get_multiplexed_async_connection().await.unwrap();
        let mut cmd = ::redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query_async(&mut c).await.unwrap()
    }
}
