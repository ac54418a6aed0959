//! `switchboard migrate`: apply the store's migrations and exit, for deployments that upgrade the
//! database as a step of their own before starting new servers.

use super::MigrateArgs;
use crate::{config::Config, control};

pub(super) fn run(args: MigrateArgs) -> Result<(), String> {
    let config = Config::load(args.config.as_deref(), &args).map_err(|e| e.to_string())?;
    let location = control::location(&config);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    runtime
        .block_on(switchboard_store::open(&location))
        .map_err(|e| format!("{}: {e}", control::describe(&location)))?;
    println!("{}: migrated", control::describe(&location));
    Ok(())
}
