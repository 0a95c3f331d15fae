//! Unpaged listings, sent while they are read: `job_list` and `job_history_list` without a
//! page return every row (as RuQi does), so rows go from a store stream to the response body
//! in chunks, with a bounded channel in between; memory stays flat however many rows there
//! are. A store error in the middle aborts the response (the client sees a broken body, never
//! a short list that looks whole).

use axum::body::{Body, Bytes};
use futures_util::StreamExt;
use serde_json::Value;
use tokio::sync::mpsc;

use super::{pyjson, text};
use crate::store::RowStream;

/// Bytes gathered before a chunk is sent.
const CHUNK: usize = 32 * 1024;
/// Rows that fix the column widths of a text listing.
const TEXT_LAYOUT_ROWS: usize = 1000;

type Chunk = Result<Bytes, std::io::Error>;

/// A body fed by `produce` through a small bounded channel.
fn channel_body<F, Fut>(produce: F) -> Body
where
    F: FnOnce(mpsc::Sender<Chunk>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<Chunk>(4);
    tokio::spawn(produce(tx));
    let chunks = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    Body::from_stream(chunks)
}

fn broken(e: impl std::fmt::Display) -> Chunk {
    tracing::error!(error = %e, "listing aborted by a store error");
    Err(std::io::Error::other(e.to_string()))
}

/// `{"stat": "OK", "data": {"total": N, "list": [item, …]}}`, as `pyjson` prints it.
pub fn json<T, F>(total: u64, mut rows: RowStream<T>, item: F) -> Body
where
    T: Send + 'static,
    F: Fn(&T) -> Value + Send + 'static,
{
    channel_body(move |tx| async move {
        let mut buf = format!("{{\"stat\": \"OK\", \"data\": {{\"total\": {total}, \"list\": [");
        let mut first = true;
        while let Some(row) = rows.next().await {
            match row {
                Ok(row) => {
                    if !first {
                        buf.push_str(", ");
                    }
                    first = false;
                    buf.push_str(&pyjson::to_string(&item(&row)));
                    if buf.len() >= CHUNK && tx.send(Ok(Bytes::from(std::mem::take(&mut buf)))).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.send(broken(e)).await;
                    return;
                }
            }
        }
        buf.push_str("]}}");
        let _ = tx.send(Ok(Bytes::from(buf))).await;
    })
}

/// A `display=text` table; column widths come from the first rows.
pub fn text<T, F>(headers: &'static [&'static str], total: u64, rows: RowStream<T>, cells: F) -> Body
where
    T: Send + 'static,
    F: Fn(&T) -> Vec<String> + Send + 'static,
{
    channel_body(move |tx| async move {
        // fused: the layout loop may have seen the end already
        let mut rows = rows.fuse();
        let mut head = Vec::new();
        while head.len() < TEXT_LAYOUT_ROWS {
            match rows.next().await {
                Some(Ok(row)) => head.push(cells(&row)),
                Some(Err(e)) => {
                    let _ = tx.send(broken(e)).await;
                    return;
                }
                None => break,
            }
        }
        let layout = text::Layout::new(headers, &head);
        let mut buf = layout.head(headers);
        for r in &head {
            buf.push_str(&layout.line(r));
        }
        drop(head);
        loop {
            if buf.len() >= CHUNK && tx.send(Ok(Bytes::from(std::mem::take(&mut buf)))).await.is_err() {
                return;
            }
            match rows.next().await {
                Some(Ok(row)) => buf.push_str(&layout.line(&cells(&row))),
                Some(Err(e)) => {
                    let _ = tx.send(broken(e)).await;
                    return;
                }
                None => break,
            }
        }
        buf.push_str(&text::total_line(total));
        let _ = tx.send(Ok(Bytes::from(buf))).await;
    })
}
