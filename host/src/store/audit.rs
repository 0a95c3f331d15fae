//! SQL of the audit trail (`ruqi_audit`) and of job versions (`ruqi_job_versions`), shared by
//! both SQL backends (`?` placeholders), and their rows.

use super::StoreError;
use super::rows::epoch_to_ts;
use crate::model::{AuditEntry, JobVersion};

/// The columns of an [`AuditRow`].
pub const AUDIT_COLUMNS: &str = "id, at, node, caller, peer, action, job_id, run_id, detail";
/// Newest first.
pub const AUDIT_ORDER: &str = " ORDER BY id DESC";
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

/// Writes `$entries` (a `&[(AuditEntry, Option<String>)]`) on `$conn` (a `$db` connection): one
/// insert of every entry, then, for the entries that set a definition, one read of their jobs'
/// latest version numbers and one insert of the next versions (numbered in order; two nodes
/// numbering one job at once collide on its key, and the caller tries again).
macro_rules! insert_audits {
    ($conn:expr, $db:ty, $entries:expr) => {{
        use $crate::store::rows::ts_to_epoch;
        let entries: &[($crate::model::AuditEntry, Option<String>)] = $entries;
        if !entries.is_empty() {
            let mut q = sqlx::QueryBuilder::<$db>::new(
                "INSERT INTO ruqi_audit (at, node, caller, peer, action, job_id, run_id, detail) ",
            );
            q.push_values(entries, |mut b, (e, _)| {
                b.push_bind(ts_to_epoch(e.at))
                    .push_bind(e.node.as_str())
                    .push_bind(e.caller.as_str())
                    .push_bind(e.peer.as_str())
                    .push_bind(e.action.as_str())
                    .push_bind(e.job_id.as_deref())
                    .push_bind(e.run_id.as_deref())
                    .push_bind(e.detail.as_str());
            });
            q.build().execute(&mut *$conn).await?;
        }
        let versioned: Vec<(&$crate::model::AuditEntry, &str, &str)> =
            entries.iter().filter_map(|(e, v)| Some((e, e.job_id.as_deref()?, v.as_deref()?))).collect();
        if !versioned.is_empty() {
            let mut q = sqlx::QueryBuilder::<$db>::new(
                "SELECT job_id, CAST(MAX(version) AS SIGNED) FROM ruqi_job_versions WHERE job_id IN (",
            );
            let mut ids = q.separated(", ");
            for (_, id, _) in &versioned {
                ids.push_bind(*id);
            }
            q.push(") GROUP BY job_id");
            let latest: Vec<(String, i64)> = q.build_query_as().fetch_all(&mut *$conn).await?;
            let mut next: std::collections::HashMap<&str, i64> =
                latest.iter().map(|(id, v)| (id.as_str(), *v)).collect();
            let numbered: Vec<_> = versioned
                .iter()
                .map(|(e, id, def)| {
                    let n = next.entry(id).or_insert(0);
                    *n += 1;
                    (*e, *id, *n, *def)
                })
                .collect();
            let mut q = sqlx::QueryBuilder::<$db>::new(
                "INSERT INTO ruqi_job_versions (job_id, version, at, caller, definition) ",
            );
            q.push_values(&numbered, |mut b, (e, id, n, def)| {
                b.push_bind(*id)
                    .push_bind(*n)
                    .push_bind(ts_to_epoch(e.at))
                    .push_bind(e.caller.as_str())
                    .push_bind(*def);
            });
            q.build().execute(&mut *$conn).await?;
        }
    }};
}
pub(crate) use insert_audits;
