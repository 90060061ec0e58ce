//! A child process whose log lines a test can wait for.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::{Arc, Condvar, Mutex},
    time::{Duration, Instant},
};

/// Lines a process has written to stderr so far.
#[derive(Default)]
struct Log {
    lines: Mutex<Vec<String>>,
    grew: Condvar,
}

/// A running child process (killed when dropped).
pub struct Process {
    child: Child,
    log: Arc<Log>,
}

impl Process {
    /// Starts `command` with stderr captured; each line is also echoed to
    /// the test's stderr behind `[label]`.
    pub fn spawn(mut command: Command, label: &str) -> Process {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {label}: {e}"));
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Log::default());
        let sink = log.clone();
        let label = label.to_string();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[{label}] {line}");
                if let Ok(mut lines) = sink.lines.lock() {
                    lines.push(line);
                }
                sink.grew.notify_all();
            }
        });
        Process { child, log }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits (at most `timeout`) for a log line, after the first `skip`
    /// lines, that `matches`; returns it and its index.
    pub fn wait_for_after(
        &self,
        skip: usize,
        timeout: Duration,
        matches: impl Fn(&str) -> bool,
    ) -> Option<(usize, String)> {
        let deadline = Instant::now() + timeout;
        let mut lines = self.log.lines.lock().ok()?;
        loop {
            if let Some((i, line)) = lines
                .iter()
                .enumerate()
                .skip(skip)
                .find(|(_, l)| matches(l))
            {
                return Some((i, line.clone()));
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            lines = self.log.grew.wait_timeout(lines, left).ok()?.0;
        }
    }

    /// Waits for a log line that `matches`.
    pub fn wait_for(&self, timeout: Duration, matches: impl Fn(&str) -> bool) -> Option<String> {
        self.wait_for_after(0, timeout, matches).map(|(_, l)| l)
    }

    /// How many of the lines logged so far match.
    pub fn count_matching(&self, matches: impl Fn(&str) -> bool) -> usize {
        self.log
            .lines
            .lock()
            .map(|l| l.iter().filter(|l| matches(l)).count())
            .unwrap_or_default()
    }

    /// How many lines were logged so far.
    pub fn line_count(&self) -> usize {
        self.log.lines.lock().map(|l| l.len()).unwrap_or_default()
    }

    /// Sends SIGTERM and waits; panics unless it exits successfully.
    pub fn terminate(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
        let exit = self.child.wait().expect("wait");
        assert!(exit.success(), "process exited with {exit}");
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The part of `line` after `marker` up to the next space.
pub fn word_after<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    line.split(marker).nth(1)?.split_whitespace().next()
}
