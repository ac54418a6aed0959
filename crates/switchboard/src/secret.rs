//! The HS256 signing secret: configured, or generated once for development and kept on disk so
//! tokens minted with `switchboard token` keep working across restarts.

use std::{
    fs,
    io::{self, Write},
    path::{Path, PathBuf},
};

use base64::Engine;
use rand::RngCore;

use crate::config::Config;

/// Where the secret came from, for the startup log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// `SWITCHBOARD_SECRET`, the config file, or a flag.
    Configured,
    /// Read from the development secret file.
    DevFile(PathBuf),
    /// Just generated into the development secret file.
    Generated(PathBuf),
}

/// The secret's bytes and where they came from.
#[derive(Clone)]
pub struct Secret {
    /// Key material.
    pub bytes: Vec<u8>,
    /// Origin.
    pub source: SecretSource,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("bytes", &"<redacted>")
            .field("source", &self.source)
            .finish()
    }
}

/// The development secret file inside `data_dir`.
pub fn dev_secret_path(data_dir: &Path) -> PathBuf {
    data_dir.join("secret")
}

impl Secret {
    /// The configured secret, or the development one from (or generated into) `data_dir`.
    pub fn load(config: &Config) -> io::Result<Secret> {
        if let Some(s) = config.secret.as_deref().filter(|s| !s.is_empty()) {
            return Ok(Secret {
                bytes: s.as_bytes().to_vec(),
                source: SecretSource::Configured,
            });
        }
        let path = dev_secret_path(&config.data_dir);
        match fs::read_to_string(&path) {
            Ok(text) if !text.trim().is_empty() => {
                return Ok(Secret {
                    bytes: text.trim().as_bytes().to_vec(),
                    source: SecretSource::DevFile(path),
                });
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let mut raw = [0u8; 32];
        rand::rng().fill_bytes(&mut raw);
        let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        fs::create_dir_all(&config.data_dir)?;
        write_private(&path, &text)?;
        Ok(Secret {
            bytes: text.into_bytes(),
            source: SecretSource::Generated(path),
        })
    }
}

fn write_private(path: &Path, text: &str) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_then_reuses() {
        let dir = std::env::temp_dir().join(format!("sb-secret-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let config = Config {
            data_dir: dir.clone(),
            ..Config::default()
        };
        let first = Secret::load(&config).unwrap();
        assert!(matches!(first.source, SecretSource::Generated(_)));
        assert!(first.bytes.len() >= 32);
        let second = Secret::load(&config).unwrap();
        assert!(matches!(second.source, SecretSource::DevFile(_)));
        assert_eq!(first.bytes, second.bytes);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dev_secret_path(&dir))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let configured = Secret::load(&Config {
            secret: Some("s3cret".into()),
            ..config
        })
        .unwrap();
        assert_eq!(configured.source, SecretSource::Configured);
        assert_eq!(configured.bytes, b"s3cret");
        fs::remove_dir_all(&dir).unwrap();
    }
}
