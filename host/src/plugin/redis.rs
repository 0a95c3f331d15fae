//! The Redis connections the host keeps for a plugin (`redis-pipeline`, `ruqi:executor@0.3`):
//! one multiplexed connection (redis-rs) per url, opened only to an address the plugin's
//! `sockets` grant names, shared by its runs and closed with the plugin as loaded.

use std::collections::HashMap;
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{ConnectionAddr, IntoConnectionInfo, Value};

use super::bindings::ruqi::executor::host::RedisReply;
use super::grants::Grants;

/// How long opening a connection (TCP, `AUTH`, `SELECT`) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a call's replies may take: past it the call fails and its connection is replaced,
/// so a server that stopped answering does not hold every later run of the plugin until its
/// own time limit.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most replies a call answers (elements of aggregates included): more is refused rather than
/// copied into a guest that could not hold them.
const MAX_REPLIES: usize = 1 << 20;

/// One kept connection.
struct Kept {
    conn: MultiplexedConnection,
    /// Its local address, `ip:port`.
    local: String,
    /// `host:port` it was opened to, for messages.
    addr: String,
    /// Tells this connection from a later one to the same url.
    serial: u64,
    /// The task that drives it; aborted when the pool is dropped.
    driver: tokio::task::AbortHandle,
}

/// The Redis connections of one loaded plugin, by url. It belongs to the plugin as loaded with
/// its grants: a reload or a grant change loads it anew with an empty pool, and dropping the
/// old one (with the old plugin, once its last run ends) closes every connection it held.
#[derive(Default)]
pub struct RedisPool {
    kept: tokio::sync::Mutex<HashMap<String, Kept>>,
    serial: std::sync::atomic::AtomicU64,
}

impl Drop for RedisPool {
    fn drop(&mut self) {
        for kept in self.kept.get_mut().values() {
            kept.driver.abort();
        }
    }
}

impl RedisPool {
    /// The kept connection to `url`'s server (opened first if there is none): the connection,
    /// its local address, the address it was opened to, and its serial.
    async fn get(
        &self,
        plugin: &str,
        grants: &Grants,
        url: &str,
    ) -> Result<(MultiplexedConnection, String, String, u64), String> {
        let mut kept = self.kept.lock().await;
        match kept.get(url) {
            // Its driver ended when the server closed it (a restart, `CLIENT KILL`, an idle
            // timeout): nothing was sent on it since, so a new one is opened before anything is.
            Some(k) if k.driver.is_finished() => {
                tracing::debug!(plugin, addr = %k.addr, "redis connection closed by the server; opening a new one");
                kept.remove(url);
            }
            Some(k) => return Ok((k.conn.clone(), k.local.clone(), k.addr.clone(), k.serial)),
            None => {}
        }
        let serial = self.serial.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let k = connect(plugin, grants, url, serial).await?;
        let out = (k.conn.clone(), k.local.clone(), k.addr.clone(), serial);
        kept.insert(url.to_owned(), k);
        Ok(out)
    }

    /// The local address (`ip:port`) of the kept connection to `url`'s server, opened first
    /// if there is none. `plugin` names the connection (`CLIENT SETNAME ruqi:PLUGIN`) for
    /// operators reading `CLIENT LIST`.
    pub async fn local_address(&self, plugin: &str, grants: &Grants, url: &str) -> Result<String, String> {
        Ok(self.get(plugin, grants, url).await?.1)
    }

    /// Sends `commands` to the Redis server of `url` in one write, over the kept connection
    /// (opened first if there is none), and answers every reply, flattened.
    pub async fn pipeline(
        &self,
        plugin: &str,
        grants: &Grants,
        url: &str,
        commands: Vec<Vec<Vec<u8>>>,
    ) -> Result<Vec<RedisReply>, String> {
        if commands.is_empty() {
            return Err("redis-pipeline needs at least one command".into());
        }
        shareable(&commands)?;
        let (mut conn, _, addr, serial) = self.get(plugin, grants, url).await?;
        let mut pipe = redis::pipe();
        for command in commands {
            let mut cmd = redis::Cmd::new();
            for arg in command {
                cmd.arg(arg);
            }
            pipe.add_command(cmd);
        }
        let count = pipe.len();
        match conn.req_packed_commands(&pipe, 0, count).await {
            Ok(values) => {
                let mut replies = Vec::with_capacity(values.len());
                for value in values {
                    flatten(value, &mut replies)?;
                }
                Ok(replies)
            }
            Err(e) => {
                // Broken or timed out: forget it, so the next call opens a new one.
                let mut kept = self.kept.lock().await;
                if kept.get(url).is_some_and(|k| k.serial == serial)
                    && let Some(k) = kept.remove(url)
                {
                    k.driver.abort();
                }
                Err(format!("redis at {addr}: {e}"))
            }
        }
    }
}

/// Opens a connection to `url`'s server if `grants` allow one of its addresses.
async fn connect(plugin: &str, grants: &Grants, url: &str, serial: u64) -> Result<Kept, String> {
    let info = url.into_connection_info().map_err(|e| format!("invalid redis url {url:?}: {e}"))?;
    let ConnectionAddr::Tcp(host, port) = &info.addr else {
        return Err(format!("invalid redis url {url:?}: only redis://host:port is supported"));
    };
    let addr = format!("{host}:{port}");
    let resolved: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), *port))
        .await
        .map_err(|e| format!("redis at {addr}: cannot resolve {host}: {e}"))?
        .collect();
    let Some(target) = resolved.into_iter().find(|a| grants.allows_socket(a)) else {
        tracing::warn!(plugin, %addr, "redis connection refused: address not granted");
        return Err(format!("redis at {addr}: address not granted to this plugin (grant it in sockets)"));
    };
    let open = async {
        let stream = tokio::net::TcpStream::connect(target).await.map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let local = stream.local_addr().map_err(|e| e.to_string())?.to_string();
        let (mut conn, driver) = MultiplexedConnection::new_with_config(
            &info.redis,
            stream,
            redis::AsyncConnectionConfig::new().set_response_timeout(RESPONSE_TIMEOUT),
        )
        .await
        .map_err(|e| e.to_string())?;
        let driver = tokio::spawn(driver).abort_handle();
        // A name for `CLIENT LIST`; a server that refuses it (an ACL) still serves the plugin.
        let name: String =
            format!("ruqi:{plugin}").chars().map(|c| if c.is_ascii_graphic() { c } else { '-' }).collect();
        let _: Result<(), _> = redis::cmd("CLIENT").arg("SETNAME").arg(name).query_async(&mut conn).await;
        Ok::<_, String>((conn, local, driver))
    };
    let (conn, local, driver) = tokio::time::timeout(CONNECT_TIMEOUT, open)
        .await
        .map_err(|_| format!("redis at {addr}: no connection within {}s", CONNECT_TIMEOUT.as_secs()))?
        .map_err(|e| format!("redis at {addr}: {e}"))?;
    tracing::debug!(plugin, %addr, %local, "redis connection opened");
    Ok(Kept { conn, local, addr, serial, driver })
}

/// Whether `commands` leave a connection shared by the plugin's runs as they found it and
/// never hold it: no command that changes a connection's state, no blocking command, and
/// every `MULTI` and `WATCH` closed within the call (the WIT's `redis-pipeline`).
fn shareable(commands: &[Vec<Vec<u8>>]) -> Result<(), String> {
    const STATEFUL: [&str; 14] = [
        "SELECT",
        "AUTH",
        "HELLO",
        "RESET",
        "QUIT",
        "SUBSCRIBE",
        "PSUBSCRIBE",
        "SSUBSCRIBE",
        "UNSUBSCRIBE",
        "PUNSUBSCRIBE",
        "SUNSUBSCRIBE",
        "MONITOR",
        "READONLY",
        "READWRITE",
    ];
    const BLOCKING: [&str; 10] =
        ["BLPOP", "BRPOP", "BLMOVE", "BRPOPLPUSH", "BLMPOP", "BZPOPMIN", "BZPOPMAX", "BZMPOP", "WAIT", "WAITAOF"];
    const CLIENT_READS: [&str; 4] = ["ID", "INFO", "GETNAME", "LIST"];
    let upper = |b: &[u8]| String::from_utf8_lossy(b).to_ascii_uppercase();
    let (mut multi, mut watch) = (false, false);
    for (i, command) in commands.iter().enumerate() {
        let Some(name) = command.first().map(|n| upper(n)) else {
            return Err(format!("redis-pipeline: command {} is empty (it needs at least its name)", i + 1));
        };
        let refuse = |why: &str| Err(format!("redis-pipeline refuses {name} (command {}): {why}", i + 1));
        let blocks = BLOCKING.contains(&name.as_str())
            || (name == "XREAD" || name == "XREADGROUP") && command[1..].iter().any(|a| upper(a) == "BLOCK");
        let client_write =
            name == "CLIENT" && !command.get(1).is_some_and(|s| CLIENT_READS.contains(&upper(s).as_str()));
        match name.as_str() {
            _ if STATEFUL.contains(&name.as_str()) || client_write => {
                return refuse("it would change the connection the plugin's runs share");
            }
            _ if blocks => return refuse("a blocking command would hold the connection the plugin's runs share"),
            "MULTI" if multi => return refuse("MULTI inside MULTI"),
            "MULTI" => multi = true,
            "WATCH" if multi => return refuse("WATCH inside MULTI"),
            "WATCH" => watch = true,
            "EXEC" | "DISCARD" if !multi => return refuse("without MULTI"),
            "EXEC" | "DISCARD" => (multi, watch) = (false, false),
            "UNWATCH" => watch = false,
            _ => {}
        }
    }
    if multi {
        return Err("redis-pipeline: a MULTI must end with EXEC or DISCARD in the same call".into());
    }
    if watch {
        return Err("redis-pipeline: a WATCH must end with EXEC, DISCARD or UNWATCH in the same call".into());
    }
    Ok(())
}

/// Appends `value` to `out` as the WIT's flat list of replies.
fn flatten(value: Value, out: &mut Vec<RedisReply>) -> Result<(), String> {
    if out.len() >= MAX_REPLIES {
        return Err(format!("redis answered more than {MAX_REPLIES} replies"));
    }
    let aggregate = |out: &mut Vec<RedisReply>, items: Vec<Value>| {
        out.push(RedisReply::Array(u32::try_from(items.len()).unwrap_or(u32::MAX)));
        items.into_iter().try_for_each(|v| flatten(v, out))
    };
    match value {
        Value::Nil => out.push(RedisReply::Nil),
        Value::Int(i) => out.push(RedisReply::Int(i)),
        Value::BulkString(b) => out.push(RedisReply::Data(b)),
        Value::SimpleString(s) => out.push(RedisReply::Status(s)),
        Value::Okay => out.push(RedisReply::Status("OK".into())),
        Value::Double(d) => out.push(RedisReply::Double(d)),
        Value::Boolean(b) => out.push(RedisReply::Boolean(b)),
        Value::VerbatimString { text, .. } => out.push(RedisReply::Data(text.into_bytes())),
        Value::BigNumber(n) => out.push(RedisReply::Data(n.to_string().into_bytes())),
        Value::ServerError(e) => {
            let text = match e.details() {
                Some(details) => format!("{} {details}", e.code()),
                None => e.code().to_owned(),
            };
            out.push(RedisReply::Error(text));
        }
        Value::Array(items) | Value::Set(items) => aggregate(out, items)?,
        Value::Push { data, .. } => aggregate(out, data)?,
        Value::Map(pairs) => aggregate(out, pairs.into_iter().flat_map(|(k, v)| [k, v]).collect())?,
        Value::Attribute { data, .. } => flatten(*data, out)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commands(lines: &[&str]) -> Vec<Vec<Vec<u8>>> {
        lines.iter().map(|l| l.split(' ').map(|w| w.as_bytes().to_vec()).collect()).collect()
    }

    #[test]
    fn only_calls_that_leave_the_shared_connection_as_found_are_sent() {
        for ok in [
            &["MULTI", "SADD s a", "HSET h f v", "RPUSH q x", "EXEC"][..],
            &["GET k", "set k v"],
            &["WATCH k", "MULTI", "INCR k", "EXEC"],
            &["WATCH k", "UNWATCH"],
            &["CLIENT ID", "xread COUNT 1 STREAMS s 0"],
        ] {
            assert_eq!(shareable(&commands(ok)), Ok(()), "{ok:?}");
        }
        let refused = [
            (&["select 2"][..], "refuses SELECT (command 1): it would change the connection"),
            (&["GET k", "CLIENT REPLY OFF"], "refuses CLIENT (command 2)"),
            (&["blpop q 0"], "refuses BLPOP (command 1): a blocking command"),
            (&["XREAD BLOCK 0 STREAMS s $"], "refuses XREAD"),
            (&["MULTI", "SET k v"], "a MULTI must end with EXEC or DISCARD"),
            (&["WATCH k"], "a WATCH must end"),
            (&["EXEC"], "refuses EXEC (command 1): without MULTI"),
            (&["MULTI", "MULTI", "EXEC"], "MULTI inside MULTI"),
            (&["SUBSCRIBE c"], "refuses SUBSCRIBE"),
        ];
        for (lines, want) in refused {
            let err = shareable(&commands(lines)).unwrap_err();
            assert!(err.contains(want), "{lines:?}: {err}");
        }
        assert!(shareable(&[vec![]]).unwrap_err().contains("command 1 is empty"));
    }

    #[test]
    fn aggregates_are_flattened_depth_first() {
        let mut out = Vec::new();
        let value = Value::Array(vec![
            Value::Okay,
            Value::Array(vec![Value::Int(1), Value::Nil]),
            Value::Map(vec![(Value::BulkString(b"k".to_vec()), Value::Int(2))]),
        ]);
        flatten(value, &mut out).unwrap();
        let want = [
            RedisReply::Array(3),
            RedisReply::Status("OK".into()),
            RedisReply::Array(2),
            RedisReply::Int(1),
            RedisReply::Nil,
            RedisReply::Array(2),
            RedisReply::Data(b"k".to_vec()),
            RedisReply::Int(2),
        ];
        assert_eq!(format!("{out:?}"), format!("{want:?}"));
    }
}
