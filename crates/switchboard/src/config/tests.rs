//! Tests of loading: the layering order, environment keys, and the refusals of `check`.

use super::*;
use std::{collections::HashMap, path::Path};

#[test]
fn flags_beat_env_beat_file_beat_defaults() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "sb.toml",
            "max_peers = 7\nresume_ms = 1000\nheartbeat_ms = 500\n[limits]\nmax_sdp_bytes = 999\n",
        )?;
        jail.set_env("SWITCHBOARD_RESUME_MS", "2000");
        jail.set_env("SWITCHBOARD_HEARTBEAT_MS", "600");
        jail.set_env("SWITCHBOARD_LIMITS__MAX_CANDIDATE_BYTES", "333");
        jail.set_env("SWITCHBOARD_URL", "ws://not-a-setting");
        let flags: HashMap<&str, u64> = HashMap::from([("heartbeat_ms", 700)]);
        let c = Config::load(Some(Path::new("sb.toml")), &flags).unwrap();
        assert_eq!(c.max_peers, 7); // file
        assert_eq!(c.resume_ms, 2000); // env over file
        assert_eq!(c.heartbeat_ms, 700); // flag over env
        assert_eq!(c.limits.max_sdp_bytes, 999);
        assert_eq!(c.limits.max_candidate_bytes, 333);
        assert_eq!(c.limits.max_frame_bytes, Limits::default().max_frame_bytes);
        assert_eq!(c.listen, Config::default().listen);
        Ok(())
    });
}

#[test]
fn cluster_settings_come_from_the_environment_and_are_checked() {
    figment::Jail::expect_with(|jail| {
        let none: HashMap<&str, u64> = HashMap::new();
        let single = Config::load(None, &none).unwrap();
        assert_eq!(single.redis_url, None);
        assert_eq!(single.redis_prefix, "switchboard");
        assert!(single.node_id().starts_with("node-"));
        assert_ne!(single.node_id(), single.node_id(), "generated per start");
        jail.set_env("SWITCHBOARD_REDIS_URL", "redis://127.0.0.1:6379/0");
        jail.set_env("SWITCHBOARD_REDIS_PREFIX", "sb-test");
        jail.set_env("SWITCHBOARD_NODE_ID", "node-a");
        let c = Config::load(None, &none).unwrap();
        assert_eq!(c.redis_url.as_deref(), Some("redis://127.0.0.1:6379/0"));
        assert_eq!(c.redis_prefix, "sb-test");
        assert_eq!(c.node_id(), "node-a");
        jail.set_env("SWITCHBOARD_NODE_ID", "a b");
        assert!(Config::load(None, &none).is_err());
        jail.set_env("SWITCHBOARD_NODE_ID", "a");
        jail.set_env("SWITCHBOARD_REDIS_PREFIX", "x:{y}");
        assert!(Config::load(None, &none).is_err());
        Ok(())
    });
}

#[test]
fn max_connections_is_derived_unless_set() {
    figment::Jail::expect_with(|_| {
        let none: HashMap<&str, u64> = HashMap::new();
        assert_eq!(Config::load(None, &none).unwrap().max_connections, None);
        Ok(())
    });
    figment::Jail::expect_with(|jail| {
        jail.set_env("SWITCHBOARD_MAX_CONNECTIONS", "900");
        let none: HashMap<&str, u64> = HashMap::new();
        assert_eq!(
            Config::load(None, &none).unwrap().max_connections,
            Some(900)
        );
        Ok(())
    });
}

#[test]
fn unknown_keys_and_bad_values_are_errors() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("typo.toml", "max_peer = 3\n")?;
        let none: HashMap<&str, u64> = HashMap::new();
        assert!(Config::load(Some(Path::new("typo.toml")), &none).is_err());
        jail.create_file(
            "bad.toml",
            "heartbeat_ms = 100\nheartbeat_timeout_ms = 50\n",
        )?;
        assert!(Config::load(Some(Path::new("bad.toml")), &none).is_err());
        assert!(Config::load(Some(Path::new("missing.toml")), &none).is_err());
        jail.set_env("SWITCHBOARD_WORKER_THREADS", "0");
        assert!(Config::load(None, &none).is_err());
        jail.set_env("SWITCHBOARD_WORKER_THREADS", "1");
        let config = Config::load(None, &none).unwrap();
        assert_eq!(config.worker_threads.map(|n| n.get()), Some(1));
        Ok(())
    });
}

#[test]
fn the_sfu_is_off_by_default_and_sfu_rooms_need_it() {
    figment::Jail::expect_with(|jail| {
        let none: HashMap<&str, u64> = HashMap::new();
        let config = Config::load(None, &none).unwrap();
        assert_eq!(config.sfu.udp_port, None);
        assert_eq!(config.media_mode, MediaMode::Auto);
        jail.set_env("SWITCHBOARD_MEDIA_MODE", "sfu");
        assert!(
            Config::load(None, &none).is_err(),
            "sfu rooms without an SFU"
        );
        jail.set_env("SWITCHBOARD_SFU__UDP_PORT", "3478");
        assert!(
            Config::load(None, &none).is_err(),
            "0.0.0.0 without public_ip"
        );
        jail.set_env("SWITCHBOARD_SFU__PUBLIC_IP", "203.0.113.7");
        let config = Config::load(None, &none).unwrap();
        assert_eq!(
            config.sfu.announced(3478),
            Some("203.0.113.7:3478".parse().unwrap())
        );
        jail.set_env("SWITCHBOARD_SFU__PUBLIC_IP", "0.0.0.0");
        assert!(Config::load(None, &none).is_err());
        jail.set_env("SWITCHBOARD_SFU__PUBLIC_IP", "203.0.113.7");
        // Each SFU room's media lives on one node of a cluster (`cluster/media.rs`).
        jail.set_env("SWITCHBOARD_REDIS_URL", "redis://127.0.0.1:6379/0");
        assert!(Config::load(None, &none).is_ok(), "the SFU in cluster mode");
        Ok(())
    });
}

#[test]
fn sfu_workers_take_consecutive_ports_that_must_exist() {
    figment::Jail::expect_with(|jail| {
        let none: HashMap<&str, u64> = HashMap::new();
        jail.set_env("SWITCHBOARD_SFU__BIND", "127.0.0.1");
        jail.set_env("SWITCHBOARD_SFU__UDP_PORT", "65534");
        assert_eq!(Config::load(None, &none).unwrap().sfu.workers, 1);
        jail.set_env("SWITCHBOARD_SFU__WORKERS", "2");
        assert!(Config::load(None, &none).is_ok(), "65534 and 65535");
        jail.set_env("SWITCHBOARD_SFU__WORKERS", "3");
        let refused = Config::load(None, &none).unwrap_err().to_string();
        assert!(refused.contains("sfu.workers"), "{refused}");
        jail.set_env("SWITCHBOARD_SFU__UDP_PORT", "0");
        assert!(Config::load(None, &none).is_ok(), "ports the system picks");
        jail.set_env("SWITCHBOARD_SFU__TCP_PORT", "65535");
        assert!(Config::load(None, &none).is_err(), "ICE-TCP's range too");
        jail.set_env("SWITCHBOARD_SFU__TCP_PORT", "0");
        jail.set_env("SWITCHBOARD_SFU__WORKERS", "0");
        assert!(Config::load(None, &none).is_err(), "no worker");
        Ok(())
    });
}
