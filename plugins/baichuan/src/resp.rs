//! A minimal Redis client over a plain TCP stream (RESP2): enough to authenticate, select a
//! database and run one `MULTI … EXEC` transaction. Each request is written in one go and
//! every reply is read before the next request.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

/// One RESP reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+…`
    Status(String),
    /// `-…`
    Error(String),
    /// `:…`
    Integer(i64),
    /// `$…` (None for the null bulk string)
    Bulk(Option<Vec<u8>>),
    /// `*…` (None for the null array, e.g. an aborted transaction)
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// `Ok` unless Redis answered with an error.
    pub fn ok(self) -> Result<Reply, String> {
        match self {
            Reply::Error(e) => Err(format!("redis: {e}")),
            r => Ok(r),
        }
    }
}

/// One connection to Redis.
pub struct Connection {
    reader: BufReader<TcpStream>,
}

/// Largest reply element we accept (the replies we read are tiny).
const MAX_BULK: usize = 1 << 20;

fn io(addr: &str) -> impl Fn(std::io::Error) -> String + '_ {
    move |e| format!("redis at {addr}: {e}")
}

impl Connection {
    /// Connects to `addr` (`host:port`).
    pub fn open(addr: &str) -> Result<Self, String> {
        let stream = TcpStream::connect(addr).map_err(io(addr))?;
        Ok(Self { reader: BufReader::new(stream) })
    }

    /// The local address's IP, as the publisher `ip` of a message.
    pub fn local_ip(&self) -> String {
        self.reader.get_ref().local_addr().map(|a| a.ip().to_string()).unwrap_or_else(|_| "127.0.0.1".into())
    }

    fn encode(out: &mut Vec<u8>, args: &[&str]) {
        out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.reader.get_mut().write_all(bytes).map_err(|e| format!("redis write: {e}"))
    }

    /// Sends one command and reads its reply.
    pub fn call(&mut self, args: &[&str]) -> Result<Reply, String> {
        let mut buf = Vec::new();
        Self::encode(&mut buf, args);
        self.send(&buf)?;
        self.read()
    }

    /// Runs `commands` in one `MULTI … EXEC` (sent as one write) and returns EXEC's replies.
    pub fn transaction(&mut self, commands: &[Vec<&str>]) -> Result<Vec<Reply>, String> {
        let mut buf = Vec::new();
        Self::encode(&mut buf, &["MULTI"]);
        for c in commands {
            Self::encode(&mut buf, c);
        }
        Self::encode(&mut buf, &["EXEC"]);
        self.send(&buf)?;
        self.read()?.ok()?;
        for _ in commands {
            self.read()?.ok()?;
        }
        match self.read()?.ok()? {
            Reply::Array(Some(replies)) => {
                if let Some(Reply::Error(e)) = replies.iter().find(|r| matches!(r, Reply::Error(_))) {
                    return Err(format!("redis: {e}"));
                }
                Ok(replies)
            }
            other => Err(format!("redis aborted the transaction: {other:?}")),
        }
    }

    fn line(&mut self) -> Result<String, String> {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).map_err(|e| format!("redis read: {e}"))?;
        if n == 0 {
            return Err("redis closed the connection".into());
        }
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }

    /// Reads one reply.
    pub fn read(&mut self) -> Result<Reply, String> {
        let line = self.line()?;
        let (kind, rest) = line.split_at_checked(1).ok_or("redis sent an empty line")?;
        let int = |s: &str| s.parse::<i64>().map_err(|_| format!("redis sent a bad length {s:?}"));
        Ok(match kind {
            "+" => Reply::Status(rest.to_owned()),
            "-" => Reply::Error(rest.to_owned()),
            ":" => Reply::Integer(int(rest)?),
            "$" => match int(rest)? {
                n if n < 0 => Reply::Bulk(None),
                n if n as usize > MAX_BULK => return Err("redis reply too large".into()),
                n => {
                    let mut data = vec![0; n as usize + 2];
                    self.reader.read_exact(&mut data).map_err(|e| format!("redis read: {e}"))?;
                    data.truncate(n as usize);
                    Reply::Bulk(Some(data))
                }
            },
            "*" => match int(rest)? {
                n if n < 0 => Reply::Array(None),
                n => Reply::Array(Some((0..n).map(|_| self.read()).collect::<Result<_, _>>()?)),
            },
            other => return Err(format!("redis sent an unknown reply type {other:?}")),
        })
    }
}
