//! A MariaDB Galera cluster of real `mariadbd` processes on 127.0.0.1, started by a test in a
//! temporary folder of its own ([`Galera`]): bootstrap, join, SIGKILL of a member, its rejoin (IST,
//! or a full rsync SST), and SQL through the `mariadb` client. Blocking code: async tests call it
//! through `tokio::task::spawn_blocking`.
//!
//! What it needs (`make galera` installs the missing ones): MariaDB's `mariadbd`,
//! `mariadb-install-db`, `mariadb` and `wsrep_sst_rsync`, Debian's `galera-4`
//! (`/usr/lib/galera/libgalera_smm.so`), `rsync`, and the `mysql` user, which every `mariadbd` runs
//! as (the rsync state transfer needs it). Each member reads only the `my.cnf` of its folder
//! (`--defaults-file`, so neither `/etc/mysql` nor the machine's own MariaDB on 3306 is touched),
//! and keeps its data, socket, pid file and logs there (`error.log`; `stderr.log` for what the
//! process printed before the error log was open).
//!
//! Member `i` of a cluster with base port `B` uses: SQL `B+i`, group communication `B+100+i`, IST
//! `B+200+i`, SST (rsync) `B+300+i`, all on 127.0.0.1 only. Two clusters whose base ports differ
//! by at least their size never collide. The cluster is named `ruqi-galera-B`.
//!
//! Every `mariadbd` leads a process group of its own (with the SST scripts and rsync it runs)
//! beside a small watchdog (`sh`) that kills that group when the test process goes away without
//! dropping the [`Galera`] (a test killed or aborted), so no member outlives its test.
//!
//! Set `RUQI_GALERA_KEEP=1` to keep the cluster's folder (data and logs) after the drop.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use crate::wait_until;

/// The server binary.
const MARIADBD: &str = "/usr/sbin/mariadbd";
/// The script that makes a fresh data folder.
const INSTALL_DB: &str = "mariadb-install-db";
/// The command-line client.
const CLIENT: &str = "mariadb";
/// The Galera wsrep provider (Debian's `galera-4`).
pub const PROVIDER: &str = "/usr/lib/galera/libgalera_smm.so";
/// The user every member runs as.
const MYSQL_USER: &str = "mysql";
/// How long a member may take to be ready and synced after its start.
const READY_WITHIN: Duration = Duration::from_secs(120);
/// How long a replicated database may take to show on every live member.
const VISIBLE_WITHIN: Duration = Duration::from_secs(30);
/// How long one `mariadb` client run may take (a write blocks while the cluster evicts a killed
/// member, ~6 s with Galera's default timeouts) before it is killed.
const SQL_TIMEOUT_SECS: u32 = 60;
/// Lines of a member's error log quoted in an error.
const LOG_TAIL_LINES: usize = 40;

/// A MariaDB Galera cluster of `n` members on 127.0.0.1, started by a test, in a folder of its own.
/// Dropping it SIGKILLs every member still running and removes the folder.
pub struct Galera {
    /// The cluster's folder (`m0/`, `m1/`, … one per member), mode 0755 so `mysql` can traverse it.
    dir: tempfile::TempDir,
    /// Member `i` serves SQL on `base_port + i` (see the module header for the other ports).
    base_port: u16,
    /// The members, in order.
    members: Vec<Member>,
}

/// One member: its folder and, while it runs, its process.
struct Member {
    /// `<cluster folder>/m<i>`: `my.cnf`, `data/`, socket, pid file, logs.
    dir: PathBuf,
    /// The running `mariadbd` (None: never started, or killed).
    process: Mutex<Option<Running>>,
}

/// A started `mariadbd` and the watchdog sharing its process group.
struct Running {
    /// The server, leader of its process group.
    server: Child,
    /// `sh` that kills the group once its stdin (held here) closes, i.e. when the test process dies.
    watchdog: Child,
}

impl Running {
    /// SIGKILL the server, reap it, then SIGKILL what is left of its process group (SST script,
    /// rsync, the watchdog) and reap the watchdog.
    fn kill(mut self) {
        let pid = Pid::from_raw(i32::try_from(self.server.id()).expect("pid fits i32"));
        let _ = kill(pid, Signal::SIGKILL);
        let _ = self.server.wait();
        let _ = killpg(pid, Signal::SIGKILL);
        drop(self.watchdog.stdin.take());
        let _ = self.watchdog.wait();
    }

    /// Whether the server process is still alive.
    fn alive(&mut self) -> bool {
        matches!(self.server.try_wait(), Ok(None))
    }
}

/// What `SHOW GLOBAL STATUS` says of a member's wsrep state.
#[derive(Debug, Default)]
struct WsrepStatus {
    /// `wsrep_ready` (`ON` when the member takes queries).
    ready: bool,
    /// `wsrep_local_state_comment` is `Synced`.
    synced: bool,
    /// `wsrep_cluster_size`.
    size: usize,
    /// The raw variables, for error messages.
    raw: HashMap<String, String>,
}

impl Galera {
    /// Starts `n` members; member i serves SQL on `base_port + i` and uses its own Galera ports
    /// (group communication `base_port+100+i`, IST `base_port+200+i`, rsync SST `base_port+300+i`).
    /// Member 0 gets a fresh data folder (`mariadb-install-db`: root without password over TCP)
    /// and bootstraps the cluster (`--wsrep-new-cluster`); the others start empty and join one
    /// after the other through `gcomm://` of every member, each receiving a full rsync SST. Waits
    /// until every member is `wsrep_ready=ON`, `Synced`, with `wsrep_cluster_size=n` (up to 120 s
    /// per member); an error quotes the member's error log tail.
    pub fn start(n: usize, base_port: u16) -> Result<Galera, String> {
        if n == 0 || n > 100 {
            return Err(format!("a cluster has 1 to 100 members, not {n}"));
        }
        if usize::from(base_port) + 300 + n - 1 > usize::from(u16::MAX) {
            return Err(format!("base port {base_port} leaves no room for {n} members' ports (base+300+i)"));
        }
        check_prerequisites()?;
        let g = Galera::prepare(n, base_port)?;
        g.install_db(0)?;
        g.launch(0, &["--wsrep-new-cluster".to_owned()])?;
        g.wait_synced(0, 1)?;
        for i in 1..n {
            g.launch(i, &[])?;
            g.wait_synced(i, i + 1)?;
        }
        Ok(g)
    }

    /// `127.0.0.1:PORT` of member i (its SQL port).
    pub fn addr(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.port(i, 0))
    }

    /// `mysql://root@127.0.0.1:PORT` of member i (no database).
    pub fn server_url(&self, i: usize) -> String {
        format!("mysql://root@{}", self.addr(i))
    }

    /// Number of members (running or not).
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the cluster has no member (never: [`Galera::start`] wants at least one).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Creates database `name` (utf8mb4; letters, digits and `_` only) through member 0, or the
    /// first ready member when member 0 is not, and waits (up to 30 s) until every running member
    /// shows it.
    pub fn create_database(&self, name: &str) -> Result<(), String> {
        if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("database name {name:?}: letters, digits and _ only, 1 to 64 of them"));
        }
        let via = (0..self.len()).find(|&i| self.ready(i)).ok_or("no member is ready")?;
        self.sql(via, &format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))?;
        let query = format!("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{name}'");
        for i in (0..self.len()).filter(|&i| self.running(i)) {
            let mut last = String::new();
            let seen = wait_until(VISIBLE_WITHIN, || match self.sql(i, &query) {
                Ok(out) => out.trim() == name,
                Err(e) => {
                    last = e;
                    false
                }
            });
            if !seen {
                return Err(format!(
                    "database {name} (created through member {via}) not on member {i} after {VISIBLE_WITHIN:?} {last}"
                ));
            }
        }
        Ok(())
    }

    /// SIGKILL member i (kill -9 of its `mariadbd`, then of what is left of its process group: an
    /// SST script or rsync it was running) and waits until it is gone. Nothing when it is not
    /// running. The others evict it after Galera's suspect timeout (~5-6 s, during which writes
    /// on them wait).
    pub fn kill9(&self, i: usize) {
        if let Some(r) = self.lock(i).take() {
            r.kill();
        }
    }

    /// Starts member i again, as a crashed server is restarted: when its `grastate.dat` has no
    /// position (seqno -1 after a kill), `mariadbd --wsrep-recover` finds it in InnoDB and the
    /// member starts with `--wsrep-start-position`, so it rejoins through the others with IST
    /// when their gcache still holds what it missed (a full rsync SST otherwise). When no other
    /// member is running (the whole cluster is down), it bootstraps a new cluster instead: its
    /// `grastate.dat` gets `safe_to_bootstrap: 1` and it starts with `--wsrep-new-cluster`
    /// (restart the most advanced member first). Waits until it is ready and synced and the
    /// cluster size is the number of running members. An error when it is still running.
    pub fn restart(&self, i: usize) -> Result<(), String> {
        {
            let mut process = self.lock(i);
            if process.as_mut().is_some_and(Running::alive) {
                return Err(format!("member {i} is running"));
            }
            // It died on its own: reap it and what is left of its group.
            if let Some(r) = process.take() {
                r.kill();
            }
        }
        let others = (0..self.len()).filter(|&j| j != i && self.running(j)).count();
        let mut extra = Vec::new();
        if others == 0 {
            self.set_safe_to_bootstrap(i)?;
            extra.push("--wsrep-new-cluster".to_owned());
        }
        if let Some(position) = self.recover_position(i)? {
            extra.push(format!("--wsrep-start-position={position}"));
        }
        self.launch(i, &extra)?;
        let running = (0..self.len()).filter(|&j| self.running(j)).count();
        self.wait_synced(i, running)
    }

    /// Whether member i is up and `wsrep_ready`.
    pub fn ready(&self, i: usize) -> bool {
        self.running(i) && self.wsrep_status(i).is_ok_and(|s| s.ready)
    }

    /// Runs SQL (one statement or several, `;`-separated) through the `mariadb` client on member i
    /// as root over TCP, in batch mode without column names (`-N -B`): its stdout, or an error
    /// with its stderr. Killed after 60 s.
    pub fn sql(&self, i: usize, sql: &str) -> Result<String, String> {
        let port = self.port(i, 0).to_string();
        let out = Command::new("timeout")
            .args(["-s", "KILL", &SQL_TIMEOUT_SECS.to_string(), CLIENT, "--no-defaults", "--protocol=TCP"])
            .args(["-uroot", "-h127.0.0.1", "-P", &port, "--connect-timeout=5", "-N", "-B", "-e", sql])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("member {i}: cannot run {CLIENT}: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else if out.status.code() == Some(137) || out.status.code() == Some(124) {
            Err(format!("member {i}: {CLIENT} killed after {SQL_TIMEOUT_SECS} s running {sql:?}"))
        } else {
            Err(format!("member {i}: {} ({}) running {sql:?}", String::from_utf8_lossy(&out.stderr).trim(), out.status))
        }
    }

    /// The whole error log of member i (every start of it), e.g. to see whether it rejoined by IST
    /// (`IST received`) or a full SST; empty when it has none.
    fn error_log(&self, i: usize) -> String {
        String::from_utf8_lossy(&fs::read(self.members[i].dir.join("error.log")).unwrap_or_default()).into_owned()
    }

    /// Port `offset + i` above the base port (0: SQL, 100: group communication, 200: IST, 300: SST).
    fn port(&self, i: usize, offset: u16) -> u16 {
        assert!(i < self.members.len(), "member {i} of a cluster of {}", self.members.len());
        self.base_port + offset + u16::try_from(i).expect("member index fits u16")
    }

    /// The lock on member i's process (a poisoned lock is still usable: the state is an Option).
    fn lock(&self, i: usize) -> MutexGuard<'_, Option<Running>> {
        self.members[i].process.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether member i's `mariadbd` is alive.
    fn running(&self, i: usize) -> bool {
        self.lock(i).as_mut().is_some_and(Running::alive)
    }

    /// Makes the cluster folder and each member's folder (`my.cnf`, empty `data/`, owned by `mysql`)
    /// after checking that none of the ports is taken.
    fn prepare(n: usize, base_port: u16) -> Result<Galera, String> {
        for i in 0..n {
            for (offset, what) in [(0, "SQL"), (100, "group communication"), (200, "IST"), (300, "SST")] {
                let port = base_port + offset + u16::try_from(i).expect("n <= 100");
                if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
                    return Err(format!(
                        "port {port} (member {i}, {what}) is taken: another cluster or a mariadbd left over?"
                    ));
                }
            }
        }
        let user = nix::unistd::User::from_name(MYSQL_USER)
            .map_err(|e| format!("looking up user {MYSQL_USER}: {e}"))?
            .ok_or(format!("no user {MYSQL_USER} (install mariadb-server)"))?;
        let owned = |path: &Path| {
            std::os::unix::fs::chown(path, Some(user.uid.as_raw()), Some(user.gid.as_raw()))
                .map_err(|e| format!("chown {}: {e}", path.display()))
        };
        // In /tmp whatever TMPDIR says: `mysql` must traverse every parent folder, and a socket path
        // must stay under 108 bytes.
        let dir = tempfile::Builder::new()
            .prefix("ruqi-galera-")
            .tempdir_in("/tmp")
            .map_err(|e| format!("tempdir in /tmp: {e}"))?;
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("chmod {}: {e}", dir.path().display()))?;
        let mut g = Galera { dir, base_port, members: Vec::with_capacity(n) };
        for i in 0..n {
            let member = g.dir.path().join(format!("m{i}"));
            let data = member.join("data");
            fs::create_dir_all(&data).map_err(|e| format!("mkdir {}: {e}", data.display()))?;
            fs::set_permissions(&member, fs::Permissions::from_mode(0o755))
                .map_err(|e| format!("chmod {}: {e}", member.display()))?;
            owned(&member)?;
            owned(&data)?;
            g.members.push(Member { dir: member, process: Mutex::new(None) });
        }
        for i in 0..n {
            fs::write(g.members[i].dir.join("my.cnf"), g.cnf(i))
                .map_err(|e| format!("write my.cnf of member {i}: {e}"))?;
        }
        Ok(g)
    }

    /// The `my.cnf` of member i: a small server (64M buffer pool, 16M redo log, no performance
    /// schema) with Galera on, every port and file of its own, on 127.0.0.1 only.
    fn cnf(&self, i: usize) -> String {
        let dir = self.members[i].dir.display();
        let peers: Vec<String> = (0..self.members.len()).map(|j| format!("127.0.0.1:{}", self.port(j, 100))).collect();
        let (sql, gcomm, ist, sst) = (self.port(i, 0), self.port(i, 100), self.port(i, 200), self.port(i, 300));
        format!(
            "[mysqld]
user = {MYSQL_USER}
datadir = {dir}/data
port = {sql}
bind-address = 127.0.0.1
socket = {dir}/mariadbd.sock
pid-file = {dir}/mariadbd.pid
log-error = {dir}/error.log
skip-name-resolve
performance_schema = OFF
character-set-server = utf8mb4
collation-server = utf8mb4_general_ci
innodb_buffer_pool_size = 64M
innodb_log_file_size = 16M
innodb_flush_log_at_trx_commit = 2
binlog_format = ROW
default_storage_engine = InnoDB
innodb_autoinc_lock_mode = 2
wsrep_on = ON
wsrep_provider = {PROVIDER}
wsrep_cluster_name = ruqi-galera-{base}
wsrep_cluster_address = gcomm://{peers}
wsrep_node_name = m{i}
wsrep_node_address = 127.0.0.1
wsrep_provider_options = \"base_port={gcomm};gmcast.listen_addr=tcp://127.0.0.1:{gcomm};ist.recv_addr=127.0.0.1:{ist};gcache.size=32M\"
wsrep_sst_method = rsync
wsrep_sst_receive_address = 127.0.0.1:{sst}
",
            base = self.base_port,
            peers = peers.join(","),
        )
    }

    /// A fresh data folder for member i: system tables, root without password (also over TCP from
    /// 127.0.0.1), no test database.
    fn install_db(&self, i: usize) -> Result<(), String> {
        let dir = &self.members[i].dir;
        let out = Command::new(INSTALL_DB)
            .arg(format!("--defaults-file={}", dir.join("my.cnf").display()))
            .arg(format!("--user={MYSQL_USER}"))
            .arg(format!("--datadir={}", dir.join("data").display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
            .env("PATH", search_path())
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {INSTALL_DB}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{INSTALL_DB} for member {i}: {}\n{}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// Starts member i's `mariadbd` (as root, which drops to `mysql`) with `extra` options, in a
    /// process group of its own with its watchdog.
    fn launch(&self, i: usize, extra: &[String]) -> Result<(), String> {
        let dir = &self.members[i].dir;
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("stderr.log"))
            .map_err(|e| format!("stderr.log of member {i}: {e}"))?;
        let log2 = log.try_clone().map_err(|e| format!("stderr.log of member {i}: {e}"))?;
        let mut server = Command::new(MARIADBD)
            .arg(format!("--defaults-file={}", dir.join("my.cnf").display()))
            .args(extra)
            .env("PATH", search_path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start {MARIADBD} for member {i}: {e}"))?;
        let pgid = server.id();
        let watchdog = Command::new("sh")
            .args(["-c", "read x; kill -KILL -\"$1\" 2>/dev/null", "ruqi-galera-watchdog", &pgid.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(i32::try_from(pgid).expect("pid fits i32"))
            .spawn();
        let watchdog = match watchdog {
            Ok(w) => w,
            Err(e) => {
                let _ = server.kill();
                let _ = server.wait();
                return Err(format!("cannot start the watchdog of member {i}: {e}"));
            }
        };
        *self.lock(i) = Some(Running { server, watchdog });
        Ok(())
    }

    /// `wsrep_ready`, `wsrep_local_state_comment` and `wsrep_cluster_size` of member i.
    fn wsrep_status(&self, i: usize) -> Result<WsrepStatus, String> {
        let out = self.sql(
            i,
            "SHOW GLOBAL STATUS WHERE Variable_name IN \
             ('wsrep_ready', 'wsrep_local_state_comment', 'wsrep_cluster_size', 'wsrep_cluster_status')",
        )?;
        let raw: HashMap<String, String> = out
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        Ok(WsrepStatus {
            ready: raw.get("wsrep_ready").is_some_and(|v| v == "ON"),
            synced: raw.get("wsrep_local_state_comment").is_some_and(|v| v == "Synced"),
            size: raw.get("wsrep_cluster_size").and_then(|v| v.parse().ok()).unwrap_or(0),
            raw,
        })
    }

    /// Waits until member i is ready, synced, in a cluster of `size`; an error (with its error log
    /// tail) when it exits or is not within [`READY_WITHIN`].
    fn wait_synced(&self, i: usize, size: usize) -> Result<(), String> {
        let started = Instant::now();
        loop {
            let exited = self.lock(i).as_mut().map(|r| r.server.try_wait());
            match exited {
                None => return Err(format!("member {i} is not running")),
                Some(Ok(Some(status))) => {
                    return Err(format!("member {i} exited ({status}) while starting\n{}", self.log_tail(i)));
                }
                _ => {}
            }
            let last = match self.wsrep_status(i) {
                Ok(s) if s.ready && s.synced && s.size == size => return Ok(()),
                Ok(s) => format!("{:?}", s.raw),
                Err(e) => e,
            };
            if started.elapsed() > READY_WITHIN {
                return Err(format!(
                    "member {i} not ready and synced in a cluster of {size} after {READY_WITHIN:?} (last: {last})\n{}",
                    self.log_tail(i)
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The position (`uuid:seqno`) to restart member i from when its `grastate.dat` has none
    /// (seqno -1: it was killed), found by `mariadbd --wsrep-recover` (what `galera_recovery`
    /// does before a systemd start); None when the state file has a position or there is nothing
    /// to recover from.
    fn recover_position(&self, i: usize) -> Result<Option<String>, String> {
        let dir = &self.members[i].dir;
        let grastate = fs::read_to_string(dir.join("data/grastate.dat")).unwrap_or_default();
        let seqno = grastate.lines().find_map(|l| l.strip_prefix("seqno:")).map(str::trim);
        if grastate.is_empty() || seqno != Some("-1") {
            return Ok(None);
        }
        let log = dir.join("recover.log");
        let _ = fs::remove_file(&log);
        let out = Command::new("timeout")
            .args(["-s", "KILL", "120", MARIADBD])
            .arg(format!("--defaults-file={}", dir.join("my.cnf").display()))
            .arg("--wsrep-recover")
            .arg(format!("--log-error={}", log.display()))
            .env("PATH", search_path())
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {MARIADBD} --wsrep-recover for member {i}: {e}"))?;
        let text = fs::read_to_string(&log).unwrap_or_default();
        if !out.status.success() {
            return Err(format!(
                "{MARIADBD} --wsrep-recover for member {i}: {}\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr),
                tail(&text, LOG_TAIL_LINES)
            ));
        }
        let position = text
            .lines()
            .filter_map(|l| l.split_once("WSREP: Recovered position: ").map(|(_, p)| p.trim().to_owned()))
            .next_back()
            .filter(|p| !p.ends_with(":-1") && !p.starts_with("00000000-0000-0000-0000-000000000000"));
        Ok(position)
    }

    /// Marks member i's `grastate.dat` safe to bootstrap from (`safe_to_bootstrap: 1`), as one does
    /// by hand after a crash of the whole cluster; nothing when it has none (a fresh member).
    fn set_safe_to_bootstrap(&self, i: usize) -> Result<(), String> {
        let path = self.members[i].dir.join("data/grastate.dat");
        let Ok(text) = fs::read_to_string(&path) else { return Ok(()) };
        let text: String = text
            .lines()
            .map(|l| if l.starts_with("safe_to_bootstrap:") { "safe_to_bootstrap: 1" } else { l })
            .map(|l| format!("{l}\n"))
            .collect();
        fs::write(&path, text).map_err(|e| format!("write {}: {e}", path.display()))
    }

    /// The last lines of member i's error log (and of its stderr, when it has any).
    fn log_tail(&self, i: usize) -> String {
        let dir = &self.members[i].dir;
        let stderr = fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
        let mut out = format!("--- error.log of member {i} (last {LOG_TAIL_LINES} lines):\n");
        out.push_str(&tail(&self.error_log(i), LOG_TAIL_LINES));
        if !stderr.trim().is_empty() {
            out.push_str(&format!("--- stderr of member {i}:\n{}", tail(&stderr, 10)));
        }
        out
    }
}

impl Drop for Galera {
    /// SIGKILLs every member still running and reaps it; then the folder goes (kept with
    /// `RUQI_GALERA_KEEP=1`).
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill9(i);
        }
        if std::env::var_os("RUQI_GALERA_KEEP").is_some_and(|v| !v.is_empty() && v != "0") {
            self.dir.disable_cleanup(true);
        }
    }
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].iter().map(|l| format!("{l}\n")).collect()
}

/// `PATH` for the server and its SST script: the test's, then the system folders (rsync, ss,
/// my_print_defaults, wsrep_sst_rsync).
fn search_path() -> String {
    let inherited = std::env::var("PATH").unwrap_or_default();
    format!("{inherited}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
}

/// An error naming what is missing for a cluster (`make galera` installs Galera and rsync).
fn check_prerequisites() -> Result<(), String> {
    for file in [MARIADBD, PROVIDER] {
        if !Path::new(file).exists() {
            return Err(format!("{file} is missing (`make galera` installs galera-4; mariadb-server has mariadbd)"));
        }
    }
    for tool in [INSTALL_DB, CLIENT, "wsrep_sst_rsync", "rsync", "my_print_defaults", "timeout"] {
        let found = Command::new("sh")
            .args(["-c", "command -v \"$1\" >/dev/null", "sh", tool])
            .env("PATH", search_path())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            return Err(format!("{tool} is not on PATH (`make galera` installs rsync; the rest is mariadb-server)"));
        }
    }
    Ok(())
}
