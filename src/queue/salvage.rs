//! Salvage from a quarantined database: after a corrupt `queue.db` has been moved aside and a fresh one created,
//! every unfinished application that can still be read from the quarantined copy (its row, its steps, and every
//! image those steps still need, each chunk authenticated) is copied into the fresh queue, so it is still sent.
//! Runs on the queue thread, inside [`Store::open`].
//!
//! The copy is read row by row, each by its own query, so a damaged page costs only the rows stored on it (SQLite's
//! `.recover` approach without its extension). Images are decrypted under their old row id and encrypted again under
//! the new one (the chunk format binds the row id); sealed contacts are bound to the reference, which is kept.

use super::crypto::{self, TAG};
use super::{ImageRole, QueueError, Store, now_ms, write_image};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use std::path::Path;

/// Highest enrollment id probed one by one when the table cannot be listed.
const PROBE_LIMIT: i64 = 100_000;

/// What a salvage recovered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Salvaged {
    /// Unfinished applications copied into the fresh queue.
    pub recovered: u64,
    /// Unfinished applications that could not be read whole (left in the quarantined copy).
    pub lost: u64,
}

/// One step as read from the quarantined copy.
struct OldStep {
    id: i64,
    kind: String,
    seq: i64,
    state: String,
    attempts: i64,
    ambiguous: i64,
    document_id: Option<String>,
    score: Option<f64>,
    reencoded: i64,
}

/// One enrollment as read from the quarantined copy, with the plaintext of the images its unfinished steps need.
struct OldEnrollment {
    reference: String,
    email: String,
    phone: String,
    contact: Option<Vec<u8>>,
    created_at_ms: i64,
    age_ms: i64,
    attempts: i64,
    document_id: Option<String>,
    face_score: Option<f64>,
    document_restarts: i64,
    steps: Vec<OldStep>,
    /// (old step id, role, plaintext), zeroed on drop.
    images: Vec<(i64, String, zeroize::Zeroizing<Vec<u8>>)>,
}

/// Opens the quarantined copy read-only (never changing it): with its WAL when its `-shm` is there (so the last
/// commits are included), else the main file alone as immutable (a cleanly closed database has no WAL content).
fn open_copy(db: &Path) -> Option<Connection> {
    let ro = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if let Ok(c) = Connection::open_with_flags(db, ro)
        && c.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0)).is_ok()
    {
        return Some(c);
    }
    let uri = format!("file:{}?immutable=1", db.display());
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    Connection::open_with_flags(uri, flags).ok()
}

/// The enrollment ids of the copy: listed when the table can be scanned, else probed one by one.
fn enrollment_ids(old: &Connection) -> Vec<i64> {
    let listed = old
        .prepare("SELECT id FROM enrollment ORDER BY id")
        .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect::<Result<Vec<i64>, _>>());
    if let Ok(ids) = listed {
        return ids;
    }
    let max: i64 = old.query_row("SELECT max(id) FROM enrollment", [], |r| r.get(0)).unwrap_or(PROBE_LIMIT);
    (1..=max.min(PROBE_LIMIT))
        .filter(|id| {
            old.query_row("SELECT 1 FROM enrollment WHERE id = ?1", [id], |_| Ok(()))
                .optional()
                .ok()
                .flatten()
                .is_some()
        })
        .collect()
}

/// Reads one unfinished enrollment whole, or `None` (done, or damaged: a row, a step or a needed image unreadable).
fn read_enrollment(old: &Connection, key: &crypto::QueueKey, id: i64) -> Option<OldEnrollment> {
    let row = old
        .query_row(
            "SELECT reference, email, phone, contact, state, created_at_ms, age_ms, attempts, document_id, face_score,
             document_restarts FROM enrollment WHERE id = ?1",
            [id],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<Vec<u8>>>(3)?,
                    r.get::<_, String>(4)?,
                    (r.get::<_, i64>(5)?, r.get::<_, i64>(6)?, r.get::<_, i64>(7)?),
                    r.get::<_, Option<String>>(8)?,
                    r.get::<_, Option<f64>>(9)?,
                    r.get::<_, i64>(10)?,
                ))
            },
        )
        .ok()?;
    let (reference, email, phone, contact, state, (created_at_ms, age_ms, attempts), document_id, face_score, restarts) =
        row;
    if state == "done" {
        return None;
    }
    let mut st = old
        .prepare(
            "SELECT id, kind, seq, state, attempts, ambiguous, document_id, score, reencoded FROM step
             WHERE enrollment_id = ?1 ORDER BY seq",
        )
        .ok()?;
    let steps: Vec<OldStep> = st
        .query_map([id], |r| {
            Ok(OldStep {
                id: r.get(0)?,
                kind: r.get(1)?,
                seq: r.get(2)?,
                state: r.get(3)?,
                attempts: r.get(4)?,
                ambiguous: r.get(5)?,
                document_id: r.get(6)?,
                score: r.get(7)?,
                reencoded: r.get(8)?,
            })
        })
        .ok()?
        .collect::<Result<_, _>>()
        .ok()?;
    if steps.len() != 3 {
        return None;
    }
    // Images are deleted only when the whole enrollment is done: every step of an unfinished one may need them.
    let mut images = Vec::new();
    for s in &steps {
        let mut st = old.prepare("SELECT id, role, plain_len, nonce FROM image WHERE step_id = ?1").ok()?;
        let rows: Vec<(i64, String, i64, Vec<u8>)> = st
            .query_map([s.id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .ok()?
            .collect::<Result<_, _>>()
            .ok()?;
        for (image_id, role, len, nonce) in rows {
            let plain = read_image(old, key, image_id, len.max(0) as u64, &nonce)?;
            images.push((s.id, role, plain));
        }
    }
    let needs = |role: &str| images.iter().any(|(_, r, _)| r == role);
    if !needs("front") || !needs("face") {
        return None;
    }
    Some(OldEnrollment {
        reference,
        email,
        phone,
        contact,
        created_at_ms,
        age_ms,
        attempts,
        document_id,
        face_score,
        document_restarts: restarts,
        steps,
        images,
    })
}

/// Decrypts one image of the copy, every chunk authenticated; `None` if any part is unreadable.
fn read_image(
    old: &Connection,
    key: &crypto::QueueKey,
    image_id: i64,
    total: u64,
    nonce: &[u8],
) -> Option<zeroize::Zeroizing<Vec<u8>>> {
    let prefix: [u8; 8] = nonce.try_into().ok()?;
    let data: Vec<u8> = old.query_row("SELECT data FROM image WHERE id = ?1", [image_id], |r| r.get(0)).ok()?;
    if data.len() as u64 != crypto::sealed_len(total) {
        return None;
    }
    let mut out = zeroize::Zeroizing::new(Vec::with_capacity(total as usize));
    for index in 0..crypto::chunk_count(total) {
        let (_, len) = crypto::chunk_span(total, index);
        let at = crypto::sealed_offset(index) as usize;
        let mut buf = data.get(at..at + len)?.to_vec();
        let tag: [u8; TAG] = data.get(at + len..at + len + TAG)?.try_into().ok()?;
        key.open_chunk(image_id, &prefix, index, total, &mut buf, &tag).ok()?;
        out.extend_from_slice(&buf);
    }
    Some(out)
}

impl Store {
    /// Copies every unfinished application that can be read whole from the quarantined database `db` into this
    /// (fresh) queue. Needs the key: a locked queue salvages nothing (the copy stays in quarantine).
    pub(super) fn salvage(&mut self, db: &Path) -> Result<Salvaged, QueueError> {
        let mut result = Salvaged::default();
        let Some(key) = &self.key else {
            log::error!("the queue is locked: nothing could be salvaged from {}", db.display());
            return Ok(result);
        };
        let Some(old) = open_copy(db) else {
            log::error!("the quarantined database {} cannot be opened at all: nothing salvaged", db.display());
            return Ok(result);
        };
        let now = now_ms();
        for id in enrollment_ids(&old) {
            let Some(e) = read_enrollment(&old, key, id) else {
                let done = old
                    .query_row("SELECT state FROM enrollment WHERE id = ?1", [id], |r| r.get::<_, String>(0))
                    .map(|s| s == "done")
                    .unwrap_or(false);
                if !done {
                    result.lost += 1;
                }
                continue;
            };
            let tx = self.conn.transaction()?;
            let bytes: i64 = e.images.iter().map(|(_, _, p)| p.len() as i64).sum();
            tx.execute(
                "INSERT INTO enrollment (reference, email, phone, contact, state, created_at_ms, updated_at_ms, age_ms,
                 attempts, document_id, face_score, image_bytes, document_restarts)
                 VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![
                    e.reference,
                    e.email,
                    e.phone,
                    e.contact,
                    e.created_at_ms,
                    now,
                    e.age_ms,
                    e.attempts,
                    e.document_id,
                    e.face_score,
                    bytes,
                    e.document_restarts
                ],
            )?;
            let eid = tx.last_insert_rowid();
            let mut new_steps = Vec::new();
            for s in &e.steps {
                // A step in flight when the database broke may have reached the server: count it as unanswered.
                let in_flight = s.state == "in_flight";
                let state = if in_flight { "pending" } else { s.state.as_str() };
                tx.execute(
                    "INSERT INTO step (enrollment_id, kind, seq, state, attempts, ambiguous, next_attempt_ms,
                     document_id, score, reencoded) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    params![
                        eid,
                        s.kind,
                        s.seq,
                        state,
                        s.attempts,
                        s.ambiguous + i64::from(in_flight),
                        now,
                        s.document_id,
                        s.score,
                        s.reencoded
                    ],
                )?;
                new_steps.push((s.id, tx.last_insert_rowid(), state == "pending"));
            }
            for (old_step, role, plain) in &e.images {
                let Some(&(_, new_step, _)) = new_steps.iter().find(|(o, _, _)| o == old_step) else { continue };
                write_image(&tx, key, new_step, ImageRole::parse(role), plain, &mut self.rng)?;
            }
            // An enrollment waiting for a person stays so; otherwise it is sent again.
            let state = e
                .steps
                .iter()
                .find(|s| s.state == "needs_user" || s.state == "failed")
                .map(|s| s.state.clone())
                .unwrap_or_else(|| "pending".into());
            tx.execute("UPDATE enrollment SET state = ?2 WHERE id = ?1", params![eid, state])?;
            tx.commit()?;
            for (_, sid, pending) in new_steps {
                if pending {
                    self.due.insert(sid, std::time::Instant::now());
                }
            }
            result.recovered += 1;
            log::warn!("application {} salvaged from the quarantined database", e.reference);
        }
        self.checkpoint_truncate();
        Ok(result)
    }
}
