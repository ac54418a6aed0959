//! The migrations of each backend, embedded in the binary. sqlx's `migrate!` macro would embed
//! them too, but it needs sqlx's proc-macros, which compile SQLite's C source a second time.

use std::borrow::Cow;

use sqlx::{
    SqlSafeStr,
    migrate::{Migration, MigrationType, Migrator},
};

/// One migration: its version, description and SQL for SQLite and for PostgreSQL.
struct Step {
    version: i64,
    description: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

/// Every migration, oldest first. A migration is never edited once released: add a new one.
const STEPS: &[Step] = &[
    Step {
        version: 1,
        description: "control",
        sqlite: include_str!("../migrations/sqlite/0001_control.sql"),
        postgres: include_str!("../migrations/postgres/0001_control.sql"),
    },
    Step {
        version: 2,
        description: "journal",
        sqlite: include_str!("../migrations/sqlite/0002_journal.sql"),
        postgres: include_str!("../migrations/postgres/0002_journal.sql"),
    },
    Step {
        version: 3,
        description: "expiry",
        sqlite: include_str!("../migrations/sqlite/0003_expiry.sql"),
        postgres: include_str!("../migrations/postgres/0003_expiry.sql"),
    },
    Step {
        version: 4,
        description: "webhook leases",
        sqlite: include_str!("../migrations/sqlite/0004_webhook_leases.sql"),
        postgres: include_str!("../migrations/postgres/0004_webhook_leases.sql"),
    },
];

fn migrator(sql: impl Fn(&Step) -> &'static str) -> Migrator {
    Migrator::with_migrations(
        STEPS
            .iter()
            .map(|step| {
                Migration::new(
                    step.version,
                    Cow::Borrowed(step.description),
                    MigrationType::Simple,
                    sql(step).into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

/// SQLite's migrations.
pub(crate) fn sqlite() -> Migrator {
    migrator(|step| step.sqlite)
}

/// PostgreSQL's migrations.
pub(crate) fn postgres() -> Migrator {
    migrator(|step| step.postgres)
}
