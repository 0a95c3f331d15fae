//! SQL of the audit trail (`ruqi_audit`) and of job versions (`ruqi_job_versions`), shared by
//! both SQL backends (`?` placeholders), and their rows.

use super::StoreError;
use super::rows::epoch_to_ts;
use crate::model::{AuditEntry, JobVersion};

/// Records a change (binds: at, node, caller, peer, action, job_id, run_id, detail).
pub const INSERT_AUDIT: &str = "INSERT INTO ruqi_audit (at, node, caller, peer, action, job_id, run_id, detail)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
/// The columns of an [`AuditRow`].
pub const AUDIT_COLUMNS: &str = "id, at, node, caller, peer, action, job_id, run_id, detail";
/// Newest first.
pub const AUDIT_ORDER: &str = " ORDER BY id DESC";
/// Stores the next version of a job's definition, numbered after its latest in the same
/// statement (binds: job_id, at, caller, definition, job_id).
pub const INSERT_VERSION: &str = "INSERT INTO ruqi_job_versions (job_id, version, at, caller, definition)
     SELECT ?, COALESCE(MAX(version), 0) + 1, ?, ?, ? FROM ruqi_job_versions WHERE job_id = ?";
/// A job's versions, newest first (binds: job_id).
pub const VERSIONS: &str =
    "SELECT job_id, version, at, caller, definition FROM ruqi_job_versions WHERE job_id = ? ORDER BY version DESC";
/// One version (binds: job_id, version).
pub const VERSION: &str =
    "SELECT job_id, version, at, caller, definition FROM ruqi_job_versions WHERE job_id = ? AND version = ?";

/// One `ruqi_audit` row.
#[derive(Debug, sqlx::FromRow)]
pub struct AuditRow {
    /// `id`
    pub id: i64,
    /// `at`
    pub at: f64,
    /// `node`
    pub node: String,
    /// `caller`
    pub caller: String,
    /// `peer`
    pub peer: String,
    /// `action`
    pub action: String,
    /// `job_id`
    pub job_id: Option<String>,
    /// `run_id`
    pub run_id: Option<String>,
    /// `detail`
    pub detail: String,
}

impl From<AuditRow> for AuditEntry {
    fn from(r: AuditRow) -> Self {
        Self {
            id: r.id,
            at: epoch_to_ts(r.at),
            node: r.node,
            caller: r.caller,
            peer: r.peer,
            action: r.action,
            job_id: r.job_id,
            run_id: r.run_id,
            detail: r.detail,
        }
    }
}

/// One `ruqi_job_versions` row.
#[derive(Debug, sqlx::FromRow)]
pub struct VersionRow {
    /// `job_id`
    pub job_id: String,
    /// `version`
    pub version: i64,
    /// `at`
    pub at: f64,
    /// `caller`
    pub caller: String,
    /// `definition`
    pub definition: String,
}

impl VersionRow {
    /// Decodes the row.
    pub fn into_version(self) -> Result<JobVersion, StoreError> {
        let version = u32::try_from(self.version).map_err(|_| StoreError::Corrupt {
            id: self.job_id.clone(),
            reason: format!("version {}", self.version),
        })?;
        Ok(JobVersion {
            job_id: self.job_id,
            version,
            at: epoch_to_ts(self.at),
            caller: self.caller,
            definition: self.definition,
        })
    }
}

/// Appends `WHERE …` for an audit filter.
pub fn push_audit_filter<'a, DB>(q: &mut sqlx::QueryBuilder<'a, DB>, f: &crate::model::AuditFilter)
where
    DB: sqlx::Database,
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB> + 'a,
    f64: sqlx::Encode<'a, DB> + sqlx::Type<DB> + 'a,
{
    let mut sep = " WHERE ";
    if let Some(id) = &f.job_id {
        q.push(sep).push("job_id = ").push_bind(id.clone());
        sep = " AND ";
    }
    if let Some(caller) = &f.caller {
        q.push(sep).push("caller = ").push_bind(caller.clone());
        sep = " AND ";
    }
    if let Some(t) = f.since {
        q.push(sep).push("at >= ").push_bind(super::rows::ts_to_epoch(t));
        sep = " AND ";
    }
    if let Some(t) = f.until {
        q.push(sep).push("at < ").push_bind(super::rows::ts_to_epoch(t));
    }
}

/// Writes `$entry` (an `&AuditEntry`) on `$conn` and, when `$version` (an `Option<&str>`) holds a
/// definition, the next version of the entry's job.
macro_rules! insert_audit {
    ($conn:expr, $entry:expr, $version:expr) => {{
        use $crate::store::audit as sql;
        use $crate::store::rows::ts_to_epoch;
        let entry: &$crate::model::AuditEntry = $entry;
        sqlx::query(sql::INSERT_AUDIT)
            .bind(ts_to_epoch(entry.at))
            .bind(entry.node.as_str())
            .bind(entry.caller.as_str())
            .bind(entry.peer.as_str())
            .bind(entry.action.as_str())
            .bind(entry.job_id.as_deref())
            .bind(entry.run_id.as_deref())
            .bind(entry.detail.as_str())
            .execute(&mut *$conn)
            .await?;
        if let (Some(definition), Some(job_id)) = ($version, entry.job_id.as_deref()) {
            sqlx::query(sql::INSERT_VERSION)
                .bind(job_id)
                .bind(ts_to_epoch(entry.at))
                .bind(entry.caller.as_str())
                .bind(definition)
                .bind(job_id)
                .execute(&mut *$conn)
                .await?;
        }
    }};
}
pub(crate) use insert_audit;
