//! SQL text shared by the SQL backends: the `WHERE` clauses of the API's job and history
//! filters and the `LIMIT … OFFSET …` of a page, built with bound parameters for any sqlx
//! database whose placeholders `QueryBuilder` knows (`?` on SQLite and MySQL).

use sqlx::{Database, Encode, QueryBuilder, Type};

use crate::model::{HistoryFilter, JobFilter, Page};

/// Appends `WHERE …` for a job filter (`id`, `job_name`).
pub fn push_job_filter<'a, DB>(q: &mut QueryBuilder<'a, DB>, f: &JobFilter)
where
    DB: Database,
    String: Encode<'a, DB> + Type<DB> + 'a,
{
    q.push(" WHERE 1=1");
    if let Some(id) = &f.job_id {
        q.push(" AND id = ").push_bind(id.clone());
    }
    if let Some(name) = &f.job_name {
        q.push(" AND job_name = ").push_bind(name.clone());
    }
}

/// Appends `WHERE …` for a history filter (`job_id`, `job_name`, success, `scheduler_name`).
pub fn push_history_filter<'a, DB>(q: &mut QueryBuilder<'a, DB>, f: &HistoryFilter)
where
    DB: Database,
    String: Encode<'a, DB> + Type<DB> + 'a,
    bool: Encode<'a, DB> + Type<DB> + 'a,
{
    q.push(" WHERE 1=1");
    if let Some(v) = &f.job_id {
        q.push(" AND job_id = ").push_bind(v.clone());
    }
    if let Some(v) = &f.job_name {
        q.push(" AND job_name = ").push_bind(v.clone());
    }
    if let Some(v) = f.success {
        q.push(" AND cmd_is_success = ").push_bind(v);
    }
    if let Some(v) = &f.scheduler_name {
        q.push(" AND scheduler_name = ").push_bind(v.clone());
    }
}

/// Appends `LIMIT n OFFSET m`; "all rows" is the largest limit both dialects accept.
pub fn push_page<'a, DB>(q: &mut QueryBuilder<'a, DB>, page: Page)
where
    DB: Database,
    i64: Encode<'a, DB> + Type<DB> + 'a,
{
    let limit = page.limit.map_or(i64::MAX, |l| l.min(i64::MAX as u64) as i64);
    q.push(" LIMIT ").push_bind(limit).push(" OFFSET ").push_bind(page.offset.min(i64::MAX as u64) as i64);
}
