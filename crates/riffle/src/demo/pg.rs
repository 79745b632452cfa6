//! A throwaway PostgreSQL server standing in for the Redshift cluster:
//! `initdb` on a directory of the demo's own, `pg_ctl` to start it on a
//! loopback port with password authentication, and to stop it.
//!
//! initdb refuses to run as root; as root the server's files and processes
//! belong to the `postgres` user (Debian's package creates it), else
//! `nobody`.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

pub const USER: &str = "riffle";
pub const PASSWORD: &str = "riffle-demo";
pub const DATABASE: &str = "clickstream";

/// What to tell someone without PostgreSQL.
pub const INSTALL_HINT: &str = "PostgreSQL is not installed: the demo needs its initdb and pg_ctl \
(looked for on PATH and under /usr/lib/postgresql/*/bin). Install it with:\n\n    \
sudo apt-get install postgresql\n\n(on Debian and Ubuntu; other systems: the PostgreSQL server package).";

/// The directory holding initdb, pg_ctl and postgres: on PATH, or the
/// newest Debian `/usr/lib/postgresql/<version>/bin`.
pub fn find_bin_dir() -> Option<PathBuf> {
    let complete = |d: &Path| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|b| d.join(b).is_file())
    };
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let initdb = dir.join("initdb");
            if initdb.is_file() {
                let real = std::fs::canonicalize(&initdb).unwrap_or(initdb);
                if let Some(d) = real.parent().filter(|d| complete(d)) {
                    return Some(d.to_path_buf());
                }
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, d)| complete(d))
        .collect();
    versions.sort();
    versions.pop().map(|(_, d)| d)
}

/// The user id and group id of `name` in /etc/passwd.
fn passwd_ids(name: &str) -> Option<(u32, u32)> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() > 3 && f[0] == name {
            Some((f[2].parse().ok()?, f[3].parse().ok()?))
        } else {
            None
        }
    })
}

/// A running server.
pub struct Server {
    bin: PathBuf,
    dir: PathBuf,
    pub port: u16,
    /// The (uid, gid) the server runs as, when not the demo's own.
    owner: Option<(u32, u32)>,
    started: bool,
}

impl Server {
    fn command(&self, tool: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(tool));
        cmd.current_dir(&self.dir);
        // Its own process group: a Ctrl-C at the terminal is the demo's to
        // handle, and the server is stopped in order.
        cmd.process_group(0);
        if let Some((uid, gid)) = self.owner {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    fn run(&self, tool: &str, args: &[&str]) -> anyhow::Result<()> {
        let out = self
            .command(tool)
            .args(args)
            .output()
            .with_context(|| format!("running {}", self.bin.join(tool).display()))?;
        if !out.status.success() {
            bail!(
                "{tool} failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Creates a cluster in `dir` (a new, empty directory) and starts it
    /// on `port`. On error the caller still owns `dir` and calls
    /// [`Server::stop`] on what it gets back, if anything.
    pub fn init(bin: PathBuf, dir: PathBuf, port: u16, euid: u32) -> anyhow::Result<Server> {
        let owner = if euid == 0 {
            let ids = passwd_ids("postgres").or_else(|| passwd_ids("nobody"));
            match ids {
                Some(ids) => Some(ids),
                None => bail!("running as root, and neither a `postgres` nor a `nobody` user exists to run PostgreSQL as"),
            }
        } else {
            None
        };
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        let pwfile = dir.join("pw");
        std::fs::write(&pwfile, format!("{PASSWORD}\n"))?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                .with_context(|| format!("giving {} to the PostgreSQL user", dir.display()))?;
            std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid))?;
        }
        let server = Server {
            bin,
            dir,
            port,
            owner,
            started: false,
        };
        let data = server.data();
        let data = data.to_string_lossy();
        server.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                USER,
                &format!("--pwfile={}", pwfile.display()),
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        )?;
        Ok(server)
    }

    pub fn start(&mut self) -> anyhow::Result<()> {
        let data = self.data();
        let log = self.dir.join("server.log");
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port,
            self.dir.display()
        );
        self.started = true;
        let r = self.run(
            "pg_ctl",
            &[
                "-D",
                &data.to_string_lossy(),
                "-o",
                &opts,
                "-l",
                &log.to_string_lossy(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        if let Err(e) = r {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            bail!("{e:#}\nserver log:\n{}", tail_lines(&tail, 20));
        }
        Ok(())
    }

    /// Stops the server (fast shutdown: sessions are ended), if started.
    pub fn stop(&mut self) {
        if !std::mem::take(&mut self.started) {
            return;
        }
        let data = self.data();
        let r = self.run(
            "pg_ctl",
            &[
                "-D",
                &data.to_string_lossy(),
                "-m",
                "fast",
                "-w",
                "-t",
                "30",
                "stop",
            ],
        );
        if let Err(e) = r {
            // Not running (already gone) is fine; anything else is worth
            // a word.
            if data.join("postmaster.pid").exists() {
                let _ = writeln!(std::io::stderr(), "stopping PostgreSQL: {e:#}");
                let _ = self.run(
                    "pg_ctl",
                    &[
                        "-D",
                        &data.to_string_lossy(),
                        "-m",
                        "immediate",
                        "-w",
                        "stop",
                    ],
                );
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The last `n` lines of `text`.
pub fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
