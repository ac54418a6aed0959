//! `switchboard admin USERNAME [--revoke]`: the admin grant (every room) is given on the server's
//! machine, by whoever can reach its database, never through the API.

use super::{AdminArgs, migrate::with_store};

pub(super) fn run(args: AdminArgs) -> Result<(), String> {
    let username = args.username.trim().to_ascii_lowercase();
    let grant = !args.revoke;
    with_store(&args.store, |store, location| async move {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as i64;
        let found = store
            .set_admin(&username, grant, now)
            .await
            .map_err(|e| format!("{location}: {e}"))?;
        if !found {
            return Err(format!("{location}: no account `{username}`"));
        }
        let what = if grant {
            "now holds"
        } else {
            "no longer holds"
        };
        println!("{location}: `{username}` {what} the admin grant");
        Ok(())
    })
}
