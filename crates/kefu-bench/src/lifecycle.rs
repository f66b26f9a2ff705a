//! Killing the server under test and starting it again (`restart`): the kill, the wait until
//! its process is gone, the restart command, and finding the new process.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Runs `command` through `sh -c` and returns its standard output; gives up after `timeout`.
pub async fn shell(command: &str, timeout: Duration) -> anyhow::Result<String> {
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("running sh -c {command:?}"))?;
    let output = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .with_context(|| format!("sh -c {command:?} did not return within {timeout:?}"))??;
    if !output.status.success() {
        bail!("sh -c {command:?} failed: {}", output.status);
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// `kill -9 <pid>`.
pub async fn kill(pid: u32) -> anyhow::Result<()> {
    shell(&format!("kill -9 {pid}"), Duration::from_secs(10)).await?;
    Ok(())
}

/// Whether process `pid` has ended: gone, or a zombie its parent has not reaped yet whose
/// threads have all exited. The first thread of a killed process turns zombie while the others
/// are still exiting, and its sockets (its listening one) close only with the last of them.
pub fn gone(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return true;
    };
    // The fields after the command name's closing parenthesis: state (3rd of /proc/<pid>/stat)
    // first, num_threads (20th) 17 further on.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let threads: Option<u32> = fields.get(17).and_then(|n| n.parse().ok());
    match fields.first() {
        None | Some(&"X") => true,
        Some(&"Z") => threads.is_none_or(|n| n <= 1),
        Some(_) => false,
    }
}

/// Waits until process `pid` has ended; `false` if it still runs after `timeout`.
pub async fn wait_gone(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while !gone(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

/// The last line of `output` that is a process id.
pub fn pid_in(output: &str) -> Option<u32> {
    output
        .lines()
        .rev()
        .find_map(|line| line.trim().parse::<u32>().ok())
        .filter(|&pid| pid > 0)
}

/// The port of a base URL (`http://127.0.0.1:3000` → 3000; 80 without one).
pub fn port_of(url: &str) -> Option<u16> {
    let authority = url.split("://").nth(1)?.split('/').next()?;
    match authority.rsplit_once(':') {
        Some((_, port)) if !port.ends_with(']') => port.parse().ok(),
        _ => Some(80),
    }
}

/// The socket inodes listening on TCP `port`, from `/proc/net/tcp` and `/proc/net/tcp6`.
fn listening_inodes(port: u16) -> Vec<String> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st … uid timeout inode; 0A is LISTEN.
            let local_port = fields
                .get(1)
                .and_then(|a| a.rsplit_once(':'))
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            if local_port == Some(port)
                && fields.get(3) == Some(&"0A")
                && let Some(inode) = fields.get(9)
            {
                inodes.push((*inode).to_owned());
            }
        }
    }
    inodes
}

/// Whether nothing listens on TCP `port` any more.
pub fn port_free(port: u16) -> bool {
    listening_inodes(port).is_empty()
}

/// Waits until nothing listens on TCP `port`; `false` if something still does after `timeout`.
pub async fn wait_port_free(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while !port_free(port) {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

/// The process that listens on TCP `port`, if one of this user's does.
pub fn listener_of(port: u16) -> Option<u32> {
    let wanted: Vec<String> = listening_inodes(port)
        .into_iter()
        .map(|inode| format!("socket:[{inode}]"))
        .collect();
    if wanted.is_empty() {
        return None;
    }
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(link) = std::fs::read_link(fd.path())
                && wanted.iter().any(|w| link.as_os_str() == w.as_str())
            {
                return Some(pid);
            }
        }
    }
    None
}

/// Waits until some process listens on `port`; `None` after `timeout`.
pub async fn wait_listener(port: u16, timeout: Duration) -> Option<u32> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(pid) = listener_of(port) {
            return Some(pid);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_number_printed_is_the_process_id() {
        assert_eq!(pid_in("starting kefu\n4242\n"), Some(4242));
        assert_eq!(pid_in("12\nlistening\n99\n"), Some(99));
        assert_eq!(pid_in("kefu listening on http://127.0.0.1:3000\n"), None);
        assert_eq!(pid_in(""), None);
    }

    #[test]
    fn a_url_names_its_port() {
        assert_eq!(port_of("http://127.0.0.1:3900"), Some(3900));
        assert_eq!(port_of("http://127.0.0.1:3900/"), Some(3900));
        assert_eq!(port_of("http://localhost"), Some(80));
    }

    #[test]
    fn this_process_is_not_gone_and_a_listener_is_found() {
        assert!(!gone(std::process::id()));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert_eq!(listener_of(port), Some(std::process::id()));
        assert!(!port_free(port));
        drop(listener);
        assert!(port_free(port));
    }

    #[test]
    fn a_killed_process_is_gone_once_all_its_threads_are_even_before_it_is_reaped() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        assert!(!gone(pid));
        child.kill().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !gone(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        // Not reaped yet: a zombie.
        assert!(gone(pid));
        assert!(std::fs::metadata(format!("/proc/{pid}")).is_ok());
        child.wait().unwrap();
    }
}
