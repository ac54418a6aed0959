//! The Redis of cluster-mode tests: where it is, whether it answers, and a key prefix of a
//! test's own so tests and runs never see each other's keys.

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
