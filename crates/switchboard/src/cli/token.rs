//! `switchboard token`: mint a token with the same secret `serve` uses.

use std::collections::HashMap;

use super::TokenArgs;
use crate::{auth::Signer, config::Config, secret::Secret};

pub(super) fn run(args: TokenArgs) -> Result<(), String> {
    let no_flags: HashMap<String, String> = HashMap::new();
    let config = Config::load(args.config.as_deref(), &no_flags).map_err(|e| e.to_string())?;
    let secret = Secret::load(&config).map_err(|e| format!("secret: {e}"))?;
    let token = Signer::new(&secret.bytes)
        .mint(&args.user, &args.room, args.role, args.name, args.ttl)
        .map_err(|e| e.to_string())?;
    println!("{token}");
    Ok(())
}
