//! One thin function per SQL file in `queries/`; nothing else in the crate writes SQL.

use rusqlite::{OptionalExtension, Transaction, named_params};

macro_rules! sql {
    ($path:literal) => {
        include_str!(concat!("../queries/", $path))
    };
}

/// A message taken off a queue: row id, envelope, times delivered.
pub(crate) type Claimed = (i64, Vec<u8>, u32);

pub(crate) struct NewMessage<'a> {
    pub(crate) queue: &'a str,
    pub(crate) priority: u8,
    pub(crate) visible_at: i64,
    pub(crate) task_id: &'a str,
    pub(crate) envelope: &'a [u8],
    /// Its fair group ('' for none).
    pub(crate) group: &'a str,
}

pub(crate) fn insert_message(tx: &Transaction<'_>, m: &NewMessage<'_>) -> rusqlite::Result<()> {
    tx.prepare_cached(sql!("message/insert.sql"))?.execute(named_params! {
        ":queue": m.queue, ":priority": m.priority, ":visible_at": m.visible_at,
        ":task_id": m.task_id, ":envelope": m.envelope, ":grp": m.group,
    })?;
    if !m.group.is_empty() {
        tx.prepare_cached(sql!("fair/join.sql"))?.execute(named_params! { ":queue": m.queue, ":grp": m.group })?;
    }
    Ok(())
}

/// A claim's lease: until when, for which holder, at most how many, at what time (ms;
/// `now_us` marks the groups served).
pub(crate) struct Lease<'a> {
    pub(crate) now: i64,
    pub(crate) now_us: i64,
    pub(crate) until: i64,
    pub(crate) token: &'a str,
    pub(crate) limit: usize,
}

/// One fair claim in this many also drops the groups with nothing left.
const FORGET_EVERY: u32 = 16;

/// Leases the next messages of `queue`: oldest first within a priority, or, where the
/// queue has groups, a share of each group's, the groups served longest ago first.
pub(crate) fn claim(tx: &Transaction<'_>, queue: &str, lease: &Lease<'_>) -> rusqlite::Result<Vec<Claimed>> {
    let groups =
        tx.prepare_cached(sql!("fair/groups.sql"))?.query_row(named_params! { ":queue": queue }, |r| count(r, 0))?;
    let limit = i64::try_from(lease.limit).unwrap_or(i64::MAX);
    let base = named_params! { ":queue": queue, ":now": lease.now, ":lease_until": lease.until, ":token": lease.token, ":limit": limit };
    let read =
        |row: &rusqlite::Row<'_>| Ok(((row.get(0)?, envelope(row.get_ref(1)?), row.get(2)?), row.get::<_, String>(3)?));
    let rows: Vec<(Claimed, String)> = if groups == 0 {
        tx.prepare_cached(sql!("message/claim.sql"))?.query_map(base, read)?.collect::<Result<_, _>>()?
    } else {
        let per_group = i64::try_from(lease.limit.div_ceil(usize::try_from(groups).unwrap_or(1))).unwrap_or(1).max(1);
        let mut params = base.to_vec();
        params.push((":per_group", &per_group));
        let rows: Vec<(Claimed, String)> =
            tx.prepare_cached(sql!("fair/claim.sql"))?.query_map(params.as_slice(), read)?.collect::<Result<_, _>>()?;
        let served: std::collections::BTreeSet<&str> = rows.iter().map(|(_, group)| group.as_str()).collect();
        for group in served {
            tx.prepare_cached(sql!("fair/served.sql"))?
                .execute(named_params! { ":queue": queue, ":grp": group, ":now_us": lease.now_us })?;
        }
        if fastrand::u32(..FORGET_EVERY) == 0 {
            tx.prepare_cached(sql!("fair/forget.sql"))?.execute(named_params! { ":queue": queue })?;
        }
        rows
    };
    let mut claimed: Vec<Claimed> = rows.into_iter().map(|(claimed, _)| claimed).collect();
    // RETURNING gives rows in no promised order; deliver in the order the claim chose.
    claimed.sort_by_key(|(id, ..)| *id);
    Ok(claimed)
}

/// An envelope column as bytes, whatever another program stored there: a TEXT envelope
/// (what Python's `sqlite3` writes for a `str`) is the same JSON; anything else becomes
/// bytes that fail to decode, so the message is dead-lettered with the reason rather than
/// failing the claim (and with it every worker, forever).
fn envelope(value: rusqlite::types::ValueRef<'_>) -> Vec<u8> {
    use rusqlite::types::ValueRef;
    match value {
        ValueRef::Blob(bytes) | ValueRef::Text(bytes) => bytes.to_vec(),
        ValueRef::Null => Vec::new(),
        ValueRef::Integer(n) => n.to_string().into_bytes(),
        ValueRef::Real(x) => x.to_string().into_bytes(),
    }
}

pub(crate) fn next_visible(tx: &Transaction<'_>, queue: &str) -> rusqlite::Result<Option<i64>> {
    tx.prepare_cached(sql!("message/next_visible.sql"))?.query_row(named_params! { ":queue": queue }, |row| row.get(0))
}

pub(crate) fn ack(tx: &Transaction<'_>, id: i64, token: &str) -> rusqlite::Result<bool> {
    Ok(tx.prepare_cached(sql!("message/ack.sql"))?.execute(named_params! { ":id": id, ":token": token })? == 1)
}

pub(crate) fn release(tx: &Transaction<'_>, id: i64, token: &str, now: i64) -> rusqlite::Result<()> {
    tx.prepare_cached(sql!("message/release.sql"))?
        .execute(named_params! { ":id": id, ":token": token, ":now": now })?;
    Ok(())
}

pub(crate) fn extend(tx: &Transaction<'_>, token: &str, lease_until: i64) -> rusqlite::Result<usize> {
    tx.prepare_cached(sql!("message/extend.sql"))?
        .execute(named_params! { ":token": token, ":lease_until": lease_until })
}

/// SQLite counts are signed; they are never negative.
fn count(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<u64> {
    Ok(u64::try_from(row.get::<_, Option<i64>>(index)?.unwrap_or(0)).unwrap_or(0))
}

pub(crate) fn count_ready(tx: &Transaction<'_>, queue: &str, now: i64) -> rusqlite::Result<u64> {
    tx.prepare_cached(sql!("message/count_ready.sql"))?
        .query_row(named_params! { ":queue": queue, ":now": now }, |row| count(row, 0))
}

pub(crate) fn pending(tx: &Transaction<'_>, queue: &str, limit: u64) -> rusqlite::Result<u64> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    tx.prepare_cached(sql!("message/pending.sql"))?
        .query_row(named_params! { ":queue": queue, ":limit": limit }, |row| count(row, 0))
}

/// Per queue: (queue, ready, delayed, leased).
pub(crate) fn count_by_queue(tx: &Transaction<'_>, now: i64) -> rusqlite::Result<Vec<(String, u64, u64, u64)>> {
    let mut stmt = tx.prepare_cached(sql!("message/count_by_queue.sql"))?;
    let rows =
        stmt.query_map(named_params! { ":now": now }, |r| Ok((r.get(0)?, count(r, 1)?, count(r, 2)?, count(r, 3)?)))?;
    rows.collect()
}

pub(crate) fn purge(tx: &Transaction<'_>, queue: &str, now: i64) -> rusqlite::Result<usize> {
    tx.prepare_cached(sql!("message/purge.sql"))?.execute(named_params! { ":queue": queue, ":now": now })
}

pub(crate) fn bury(tx: &Transaction<'_>, id: i64, token: &str, reason: &str, now: i64) -> rusqlite::Result<bool> {
    let moved = tx
        .prepare_cached(sql!("dead/insert_from_message.sql"))?
        .execute(named_params! { ":id": id, ":token": token, ":reason": reason, ":now": now })?;
    ack(tx, id, token)?;
    Ok(moved == 1)
}

/// A failure to record with its message's ack.
pub(crate) struct Failure<'a> {
    pub(crate) id: i64,
    pub(crate) token: &'a str,
    pub(crate) task: &'a str,
    pub(crate) failed_at: i64,
    pub(crate) entry: &'a str,
    pub(crate) keep: u32,
}

/// Acks a held message and records its task as failed, keeping the queue's newest failures.
pub(crate) fn fail(tx: &Transaction<'_>, f: &Failure<'_>) -> rusqlite::Result<bool> {
    let queue: Option<String> = tx
        .prepare_cached(sql!("failed/record.sql"))?
        .query_row(
            named_params! {
                ":id": f.id, ":token": f.token, ":task": f.task, ":failed_at": f.failed_at, ":entry": f.entry,
            },
            |r| r.get(0),
        )
        .optional()?;
    if let Some(queue) = queue {
        tx.prepare_cached(sql!("failed/trim.sql"))?.execute(named_params! { ":queue": queue, ":keep": f.keep })?;
    }
    ack(tx, f.id, f.token)
}

/// Recorded failures (their JSON entries), newest first.
pub(crate) fn failed_list(
    tx: &Transaction<'_>,
    queue: Option<&str>,
    task: Option<&str>,
    since: Option<i64>,
    limit: usize,
) -> rusqlite::Result<Vec<String>> {
    let mut stmt = tx.prepare_cached(sql!("failed/list.sql"))?;
    let rows = stmt
        .query_map(named_params! { ":queue": queue, ":task": task, ":since": since, ":limit": limit as i64 }, |r| {
            r.get(0)
        })?;
    rows.collect()
}

/// Removes the failures of `ids` (a JSON array; all when `None`): (row id, queue, envelope).
pub(crate) fn failed_take(tx: &Transaction<'_>, ids: Option<&str>) -> rusqlite::Result<Vec<(i64, String, Vec<u8>)>> {
    let mut stmt = tx.prepare_cached(sql!("failed/take.sql"))?;
    let rows = stmt.query_map(named_params! { ":ids": ids }, |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    let mut taken: Vec<(i64, String, Vec<u8>)> = rows.collect::<Result<_, _>>()?;
    taken.sort_by_key(|(id, ..)| *id);
    Ok(taken)
}

pub(crate) fn forget_result(tx: &Transaction<'_>, task_id: &str) -> rusqlite::Result<()> {
    tx.prepare_cached(sql!("result/forget.sql"))?.execute(named_params! { ":task_id": task_id })?;
    Ok(())
}

/// A dead message's row: id, queue, task id, reason, died at (ms), deliveries.
pub(crate) type DeadRow = (i64, String, String, String, i64, u32);

pub(crate) fn dead_list(tx: &Transaction<'_>, queue: Option<&str>, limit: usize) -> rusqlite::Result<Vec<DeadRow>> {
    let mut stmt = tx.prepare_cached(sql!("dead/list.sql"))?;
    let rows = stmt.query_map(named_params! { ":queue": queue, ":limit": limit as i64 }, |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
    })?;
    rows.collect()
}

pub(crate) fn dead_retry(tx: &Transaction<'_>, queue: Option<&str>, now: i64) -> rusqlite::Result<usize> {
    tx.prepare_cached(sql!("result/forget_dead.sql"))?.execute(named_params! { ":queue": queue })?;
    let moved = tx.prepare_cached(sql!("dead/retry.sql"))?.execute(named_params! { ":queue": queue, ":now": now })?;
    dead_purge(tx, queue)?;
    Ok(moved)
}

pub(crate) fn dead_purge(tx: &Transaction<'_>, queue: Option<&str>) -> rusqlite::Result<usize> {
    tx.prepare_cached(sql!("dead/purge.sql"))?.execute(named_params! { ":queue": queue })
}

pub(crate) fn dead_by_queue(tx: &Transaction<'_>) -> rusqlite::Result<Vec<(String, u64)>> {
    let mut stmt = tx.prepare_cached(sql!("dead/count_by_queue.sql"))?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, count(r, 1)?)))?;
    rows.collect()
}

pub(crate) fn result_get(tx: &Transaction<'_>, task_id: &str, now: i64) -> rusqlite::Result<Option<Vec<u8>>> {
    tx.prepare_cached(sql!("result/get.sql"))?
        .query_row(named_params! { ":task_id": task_id, ":now": now }, |row| row.get(0))
        .optional()
}

pub(crate) struct NewResult<'a> {
    pub(crate) task_id: &'a str,
    pub(crate) state: &'a str,
    pub(crate) result: &'a [u8],
    pub(crate) expires_at: Option<i64>,
    pub(crate) now: i64,
}

pub(crate) fn result_store(tx: &Transaction<'_>, r: &NewResult<'_>) -> rusqlite::Result<bool> {
    let written = tx.prepare_cached(sql!("result/store.sql"))?.execute(named_params! {
        ":task_id": r.task_id, ":state": r.state, ":result": r.result, ":expires_at": r.expires_at, ":now": r.now,
    })?;
    Ok(written == 1)
}

pub(crate) fn result_sweep(tx: &Transaction<'_>, now: i64, limit: usize) -> rusqlite::Result<usize> {
    tx.prepare_cached(sql!("result/sweep.sql"))?.execute(named_params! { ":now": now, ":limit": limit as i64 })
}

pub(crate) struct ChordPart<'a> {
    pub(crate) group_id: &'a str,
    pub(crate) index: u32,
    pub(crate) result: &'a [u8],
    pub(crate) expires_at: Option<i64>,
}

/// Records a member; returns every member's result, in order, when `size` are in.
pub(crate) fn chord_part(
    tx: &Transaction<'_>,
    part: &ChordPart<'_>,
    size: u32,
) -> rusqlite::Result<Option<Vec<Vec<u8>>>> {
    tx.prepare_cached(sql!("chord/record.sql"))?.execute(named_params! {
        ":group_id": part.group_id, ":idx": part.index, ":result": part.result, ":expires_at": part.expires_at,
    })?;
    let recorded = tx
        .prepare_cached(sql!("chord/count.sql"))?
        .query_row(named_params! { ":group_id": part.group_id }, |row| count(row, 0))?;
    if recorded < u64::from(size) {
        return Ok(None);
    }
    let mut stmt = tx.prepare_cached(sql!("chord/parts.sql"))?;
    let rows = stmt.query_map(named_params! { ":group_id": part.group_id }, |row| row.get(0))?;
    rows.collect::<Result<_, _>>().map(Some)
}

pub(crate) fn revoke(tx: &Transaction<'_>, task_id: &str, terminate: bool, expires_at: i64) -> rusqlite::Result<()> {
    tx.prepare_cached(sql!("revoke/insert.sql"))?.execute(named_params! {
        ":task_id": task_id, ":terminate": terminate, ":expires_at": expires_at,
    })?;
    Ok(())
}

/// A revocation row: seq, task id, terminate, expires at (ms).
pub(crate) type RevocationRow = (i64, String, bool, i64);

pub(crate) fn revocations(
    tx: &Transaction<'_>,
    cursor: i64,
    now: i64,
    limit: usize,
) -> rusqlite::Result<Vec<RevocationRow>> {
    let mut stmt = tx.prepare_cached(sql!("revoke/since.sql"))?;
    let rows = stmt.query_map(named_params! { ":cursor": cursor, ":now": now, ":limit": limit as i64 }, |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
    })?;
    rows.collect()
}

/// Deletes expired chord members and revocations (results have their own sweep).
pub(crate) fn control_sweep(tx: &Transaction<'_>, now: i64) -> rusqlite::Result<()> {
    tx.prepare_cached(sql!("chord/sweep.sql"))?.execute(named_params! { ":now": now })?;
    tx.prepare_cached(sql!("revoke/sweep.sql"))?.execute(named_params! { ":now": now })?;
    Ok(())
}

pub(crate) fn worker_upsert(tx: &Transaction<'_>, name: &str, now: i64, stats: &str) -> rusqlite::Result<()> {
    tx.prepare_cached(sql!("worker/upsert.sql"))?
        .execute(named_params! { ":name": name, ":now": now, ":stats": stats })?;
    Ok(())
}

pub(crate) fn worker_list(tx: &Transaction<'_>) -> rusqlite::Result<Vec<(String, i64, String)>> {
    let mut stmt = tx.prepare_cached(sql!("worker/list.sql"))?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    rows.collect()
}

/// Takes a stop asked of `name`: true when there was one.
pub(crate) fn worker_take_stop(tx: &Transaction<'_>, name: &str) -> rusqlite::Result<bool> {
    let taken: Option<String> = tx
        .prepare_cached(sql!("worker/take_stop.sql"))?
        .query_row(named_params! { ":name": name }, |r| r.get(0))
        .optional()?;
    Ok(taken.is_some())
}

/// Asks `name` to stop: false when no such worker reports.
pub(crate) fn worker_request_stop(tx: &Transaction<'_>, name: &str) -> rusqlite::Result<bool> {
    Ok(tx.prepare_cached(sql!("worker/request_stop.sql"))?.execute(named_params! { ":name": name })? > 0)
}

pub(crate) fn worker_delete(tx: &Transaction<'_>, name: &str) -> rusqlite::Result<()> {
    tx.prepare_cached(sql!("worker/delete.sql"))?.execute(named_params! { ":name": name })?;
    Ok(())
}

pub(crate) fn lock_take(
    tx: &Transaction<'_>,
    key: &str,
    token: &str,
    now: i64,
    expires_at: i64,
) -> rusqlite::Result<Option<u64>> {
    tx.prepare_cached(sql!("lock/take.sql"))?
        .query_row(named_params! { ":key": key, ":token": token, ":now": now, ":expires_at": expires_at }, |r| {
            count(r, 0)
        })
        .optional()
}

pub(crate) fn lock_renew(
    tx: &Transaction<'_>,
    key: &str,
    token: &str,
    now: i64,
    expires_at: i64,
) -> rusqlite::Result<bool> {
    let renewed = tx
        .prepare_cached(sql!("lock/renew.sql"))?
        .execute(named_params! { ":key": key, ":token": token, ":now": now, ":expires_at": expires_at })?;
    Ok(renewed == 1)
}

pub(crate) fn lock_release(tx: &Transaction<'_>, key: &str, token: &str) -> rusqlite::Result<()> {
    tx.prepare_cached(sql!("lock/release.sql"))?.execute(named_params! { ":key": key, ":token": token })?;
    Ok(())
}

pub(crate) fn fenced_advance(tx: &Transaction<'_>, key: &str, fence: u64, value: i64) -> rusqlite::Result<bool> {
    let fence = i64::try_from(fence).unwrap_or(i64::MAX);
    let stored = tx
        .prepare_cached(sql!("fenced/advance.sql"))?
        .execute(named_params! { ":key": key, ":fence": fence, ":value": value })?;
    Ok(stored == 1)
}

pub(crate) fn fenced_read(tx: &Transaction<'_>, key: &str) -> rusqlite::Result<Option<i64>> {
    tx.prepare_cached(sql!("fenced/read.sql"))?.query_row(named_params! { ":key": key }, |r| r.get(0)).optional()
}

/// Claims `key` for `task_id` unless a live claim holds it; the holder's task id.
pub(crate) fn unique_claim(
    tx: &Transaction<'_>,
    key: &str,
    task_id: &str,
    now: i64,
    expires_at: i64,
) -> rusqlite::Result<String> {
    tx.prepare_cached(sql!("unique/claim.sql"))?
        .execute(named_params! { ":key": key, ":task_id": task_id, ":now": now, ":expires_at": expires_at })?;
    tx.prepare_cached(sql!("unique/holder.sql"))?.query_row(named_params! { ":key": key }, |r| r.get(0))
}

pub(crate) fn unique_release(tx: &Transaction<'_>, key: &str, task_id: &str) -> rusqlite::Result<()> {
    tx.prepare_cached(sql!("unique/release.sql"))?.execute(named_params! { ":key": key, ":task_id": task_id })?;
    Ok(())
}

/// A task record's indexed columns and its JSON.
pub(crate) struct HistoryRow<'a> {
    pub(crate) task_id: &'a str,
    pub(crate) state: &'a str,
    pub(crate) task: &'a str,
    pub(crate) queue: &'a str,
    pub(crate) updated: i64,
    pub(crate) record: &'a str,
}

pub(crate) fn history_record(tx: &Transaction<'_>, row: &HistoryRow<'_>) -> rusqlite::Result<()> {
    tx.prepare_cached(sql!("history/record.sql"))?.execute(named_params! {
        ":task_id": row.task_id, ":state": row.state, ":task": row.task, ":queue": row.queue,
        ":updated": row.updated, ":record": row.record,
    })?;
    Ok(())
}

pub(crate) fn history_trim(tx: &Transaction<'_>, kept: u32) -> rusqlite::Result<usize> {
    tx.prepare_cached(sql!("history/trim.sql"))?.execute(named_params! { ":kept": kept })
}

pub(crate) fn history_recent(tx: &Transaction<'_>, filter: &artel_core::TaskFilter) -> rusqlite::Result<Vec<String>> {
    let mut stmt = tx.prepare_cached(sql!("history/recent.sql"))?;
    let rows = stmt.query_map(
        named_params! {
            ":state": filter.state.map(artel_core::State::as_str), ":task": filter.task.as_deref(),
            ":queue": filter.queue.as_deref(), ":since": filter.since_ms, ":limit": filter.limit as i64,
        },
        |r| r.get(0),
    )?;
    rows.collect()
}

pub(crate) fn history_find(tx: &Transaction<'_>, task_id: &str) -> rusqlite::Result<Option<String>> {
    tx.prepare_cached(sql!("history/find.sql"))?
        .query_row(named_params! { ":task_id": task_id }, |r| r.get(0))
        .optional()
}

pub(crate) fn count_minute(tx: &Transaction<'_>, minute: &artel_core::Minute) -> rusqlite::Result<()> {
    tx.prepare_cached(sql!("history/count_minute.sql"))?.execute(named_params! {
        ":at_ms": minute.at_ms, ":succeeded": minute.succeeded as i64, ":failed": minute.failed as i64,
    })?;
    Ok(())
}

pub(crate) fn minutes(tx: &Transaction<'_>, since: i64) -> rusqlite::Result<Vec<artel_core::Minute>> {
    let mut stmt = tx.prepare_cached(sql!("history/minutes.sql"))?;
    let rows = stmt.query_map(named_params! { ":since": since }, |r| {
        Ok(artel_core::Minute {
            at_ms: r.get(0)?,
            succeeded: r.get::<_, i64>(1)? as u64,
            failed: r.get::<_, i64>(2)? as u64,
        })
    })?;
    rows.collect()
}

pub(crate) fn trim_minutes(tx: &Transaction<'_>, before: i64) -> rusqlite::Result<usize> {
    tx.prepare_cached(sql!("history/trim_minutes.sql"))?.execute(named_params! { ":before": before })
}

/// Posts a remote-control request and forgets requests and replies posted before `before`.
pub(crate) fn control_post_request(tx: &Transaction<'_>, body: &[u8], now: i64, before: i64) -> rusqlite::Result<()> {
    tx.prepare_cached(sql!("control/forget_requests.sql"))?.execute(named_params! { ":before": before })?;
    tx.prepare_cached(sql!("control/forget_replies.sql"))?.execute(named_params! { ":before": before })?;
    tx.prepare_cached(sql!("control/post_request.sql"))?.execute(named_params! { ":now": now, ":body": body })?;
    Ok(())
}

/// The remote-control requests after `cursor` (all from the newest when `None`: none),
/// and the cursor to read on from.
pub(crate) fn control_requests_after(
    tx: &Transaction<'_>,
    cursor: Option<i64>,
) -> rusqlite::Result<(i64, Vec<Vec<u8>>)> {
    let Some(cursor) = cursor else {
        return Ok((tx.prepare_cached(sql!("control/last_request.sql"))?.query_row([], |r| r.get(0))?, Vec::new()));
    };
    let mut stmt = tx.prepare_cached(sql!("control/requests_after.sql"))?;
    let rows =
        stmt.query_map(named_params! { ":cursor": cursor }, |r| Ok((r.get::<_, i64>(0)?, envelope(r.get_ref(1)?))))?;
    let rows: Vec<(i64, Vec<u8>)> = rows.collect::<Result<_, _>>()?;
    let next = rows.last().map_or(cursor, |(id, _)| *id);
    Ok((next, rows.into_iter().map(|(_, body)| body).collect()))
}

pub(crate) fn control_post_reply(tx: &Transaction<'_>, ticket: &str, body: &[u8], now: i64) -> rusqlite::Result<()> {
    tx.prepare_cached(sql!("control/post_reply.sql"))?
        .execute(named_params! { ":ticket": ticket, ":now": now, ":body": body })?;
    Ok(())
}

pub(crate) fn control_replies(tx: &Transaction<'_>, ticket: &str) -> rusqlite::Result<Vec<Vec<u8>>> {
    let mut stmt = tx.prepare_cached(sql!("control/replies.sql"))?;
    let rows = stmt.query_map(named_params! { ":ticket": ticket }, |r| Ok(envelope(r.get_ref(0)?)))?;
    rows.collect()
}

/// A cache write: the value, when it expires (unix ms), the clock in µs (the least
/// version it may get), and the time in ms.
pub(crate) struct CacheWrite<'a> {
    pub(crate) key: &'a str,
    pub(crate) value: &'a [u8],
    pub(crate) expires_at: Option<i64>,
    pub(crate) now_us: i64,
    pub(crate) now: i64,
}

pub(crate) fn cache_get(tx: &Transaction<'_>, key: &str, now: i64) -> rusqlite::Result<Option<(Vec<u8>, u64)>> {
    tx.prepare_cached(sql!("cache/get.sql"))?
        .query_row(named_params! { ":key": key, ":now": now }, |r| Ok((r.get(0)?, count(r, 1)?)))
        .optional()
}

/// Writes unconditionally (`expected` None and `only_new` false), only where no value
/// lives (`only_new`), or only over version `expected`; the new version, if written.
pub(crate) fn cache_write(
    tx: &Transaction<'_>,
    write: &CacheWrite<'_>,
    expected: Option<u64>,
    only_new: bool,
) -> rusqlite::Result<Option<u64>> {
    let CacheWrite { key, value, expires_at, now_us, now } = *write;
    let version = match (expected, only_new) {
        (Some(expected), _) => tx.prepare_cached(sql!("cache/replace.sql"))?.query_row(
            named_params! {
                ":key": key, ":value": value, ":expires_at": expires_at, ":now_us": now_us, ":now": now,
                ":expected": i64::try_from(expected).unwrap_or(-1),
            },
            |r| count(r, 0),
        ),
        (None, true) => tx.prepare_cached(sql!("cache/add.sql"))?.query_row(
            named_params! { ":key": key, ":value": value, ":expires_at": expires_at, ":now_us": now_us, ":now": now },
            |r| count(r, 0),
        ),
        (None, false) => tx.prepare_cached(sql!("cache/set.sql"))?.query_row(
            named_params! { ":key": key, ":value": value, ":expires_at": expires_at, ":now_us": now_us },
            |r| count(r, 0),
        ),
    };
    version.optional()
}

/// Deletes `key` (or, `prefix`, every key starting with it); how many live values went.
pub(crate) fn cache_delete(tx: &Transaction<'_>, key: &str, prefix: bool, now: i64) -> rusqlite::Result<u64> {
    let sql = if prefix { sql!("cache/clear.sql") } else { sql!("cache/delete.sql") };
    let key_name = if prefix { ":prefix" } else { ":key" };
    let mut stmt = tx.prepare_cached(sql)?;
    let mut removed = 0;
    for live in stmt.query_map(&[(key_name, &key as &dyn rusqlite::ToSql), (":now", &now)], |r| r.get::<_, bool>(0))? {
        removed += u64::from(live?);
    }
    Ok(removed)
}

pub(crate) fn cache_purge(tx: &Transaction<'_>, now: i64) -> rusqlite::Result<()> {
    tx.prepare_cached(sql!("cache/purge.sql"))?.execute(named_params! { ":now": now })?;
    Ok(())
}

pub(crate) fn rate_read(tx: &Transaction<'_>, key: &str) -> rusqlite::Result<Option<artel_core::rates::RateState>> {
    tx.prepare_cached(sql!("rate/read.sql"))?
        .query_row(named_params! { ":key": key }, |r| {
            Ok(artel_core::rates::RateState { ready: r.get(0)?, booked: r.get(1)? })
        })
        .optional()
}

pub(crate) fn rate_write(tx: &Transaction<'_>, key: &str, state: artel_core::rates::RateState) -> rusqlite::Result<()> {
    tx.prepare_cached(sql!("rate/write.sql"))?
        .execute(named_params! { ":key": key, ":ready": state.ready, ":booked": state.booked })?;
    Ok(())
}

pub(crate) fn rate_purge(tx: &Transaction<'_>, since_us: i64) -> rusqlite::Result<()> {
    tx.prepare_cached(sql!("rate/purge.sql"))?.execute(named_params! { ":since_us": since_us })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The final states the SQL guard keeps must be exactly the ready states.
    #[test]
    fn the_sql_result_guard_lists_exactly_the_ready_states() {
        let guard = sql!("result/store.sql").lines().find(|l| l.contains("NOT IN")).expect("the guard line");
        artel_broker_tests::assert_guard_names_exactly_the_ready_states(guard);
    }
}
