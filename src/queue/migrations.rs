//! Numbered schema migrations (`migrations/NNNN_*.sql`), applied in one transaction each and recorded in
//! `PRAGMA user_version`. Runs on the queue thread at open.

use rusqlite::Connection;

/// The migrations in order; `user_version` is the number applied.
pub const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_init", include_str!("migrations/0001_init.sql")),
    ("0002_sealed_contact", include_str!("migrations/0002_sealed_contact.sql")),
];

/// Why the schema could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    /// The database was written by a newer version of this program.
    #[error("the queue database has schema version {found}, newer than this program's {known}")]
    TooNew {
        /// The database's version.
        found: i64,
        /// The newest this program knows.
        known: i64,
    },
    /// SQLite refused a statement.
    #[error("migration {name} failed: {source}")]
    Sql {
        /// The migration.
        name: &'static str,
        /// The cause.
        source: rusqlite::Error,
    },
}

/// Applies every migration newer than the database's `user_version`; returns the resulting version.
pub fn migrate(conn: &mut Connection) -> Result<i64, MigrationError> {
    let sql = |name| move |source| MigrationError::Sql { name, source };
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(sql("user_version"))?;
    let known = MIGRATIONS.len() as i64;
    if current > known {
        return Err(MigrationError::TooNew { found: current, known });
    }
    for (i, (name, text)) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction().map_err(sql(name))?;
        tx.execute_batch(text).map_err(sql(name))?;
        tx.pragma_update(None, "user_version", (i + 1) as i64).map_err(sql(name))?;
        tx.commit().map_err(sql(name))?;
        log::info!("queue database migrated to {name}");
    }
    Ok(known)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_to_memory_and_are_idempotent() {
        let mut c = Connection::open_in_memory().unwrap();
        assert_eq!(migrate(&mut c).unwrap(), MIGRATIONS.len() as i64);
        assert_eq!(migrate(&mut c).unwrap(), MIGRATIONS.len() as i64);
        let v: i64 = c.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(v, MIGRATIONS.len() as i64);
        // States are checked.
        c.execute("INSERT INTO enrollment (reference, email, phone, created_at_ms, updated_at_ms) VALUES ('A', 'e', 'p', 0, 0)", [])
            .unwrap();
        let bad = c.execute("UPDATE enrollment SET state = 'lost'", []);
        assert!(bad.is_err(), "an unknown state is refused");
    }

    #[test]
    fn a_newer_database_is_refused() {
        let mut c = Connection::open_in_memory().unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
        assert!(matches!(migrate(&mut c), Err(MigrationError::TooNew { found: 99, .. })));
    }
}
