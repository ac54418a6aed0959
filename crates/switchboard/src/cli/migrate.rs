//! `switchboard migrate`: apply the store's migrations and exit, for deployments that upgrade the
//! database as a step of their own before starting new servers.

use std::sync::Arc;

use switchboard_store::Store;

use super::StoreArgs;
use crate::{config::Config, control};

pub(super) fn run(args: StoreArgs) -> Result<(), String> {
    with_store(&args, |_, location| async move {
        println!("{location}: migrated");
        Ok(())
    })
}

/// Opens (and so migrates) the store `args` name and runs `work` with it and its description.
pub(super) fn with_store<F, Fut>(args: &StoreArgs, work: F) -> Result<(), String>
where
    F: FnOnce(Arc<dyn Store>, String) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let config = Config::load(args.config.as_deref(), args).map_err(|e| e.to_string())?;
    let location = control::location(&config);
    let described = control::describe(&location);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    runtime.block_on(async {
        let store = switchboard_store::open(&location)
            .await
            .map_err(|e| format!("{described}: {e}"))?;
        work(store, described).await
    })
}
