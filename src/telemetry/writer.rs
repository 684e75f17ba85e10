//! The log writer: lines go into one bounded in-memory buffer and a thread of its own
//! writes that buffer out every [`FLUSH_EVERY`], in as few `write`s as it holds.
//!
//! A request's line costs a lock and a copy: no allocation, no channel message, and no
//! wake-up of another thread per line (a queue whose consumer sleeps until the next
//! line wakes it once per line: measured, that was a tenth of the service's CPU under
//! callback load). When the output cannot keep up (a stalled log collector) and the
//! buffer is full, a new line is **dropped, not waited for**, and counted.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// How long a line waits at most before the writer thread writes it out (unless the
/// output itself is slow): short enough for `kubectl logs -f`, long enough that one
/// wake-up carries hundreds of lines under load.
pub const FLUSH_EVERY: Duration = Duration::from_millis(20);

/// The buffer shared by the lines' writers and the writer thread.
struct Shared {
    pending: Mutex<Vec<u8>>,
    limit: usize,
    dropped: AtomicU64,
    stopping: AtomicBool,
    stop: Condvar,
}

/// Where lines are written: cheap to clone, one per call site (`MakeWriter`).
#[derive(Clone)]
pub struct LineWriter {
    shared: Arc<Shared>,
}

/// Stops the writer thread when dropped, after it has written every buffered line
/// (waiting at most [`STOP_WAIT`] for an output that does not take them).
pub struct Guard {
    shared: Arc<Shared>,
    done: mpsc::Receiver<()>,
}

/// How long stopping waits at most for the last lines to be written.
pub const STOP_WAIT: Duration = Duration::from_secs(1);

/// Starts the writer thread over `out`, buffering at most `limit` bytes of lines.
pub fn spawn<W: Write + Send + 'static>(
    out: W,
    limit: usize,
) -> std::io::Result<(LineWriter, Guard)> {
    let shared = Arc::new(Shared {
        pending: Mutex::new(Vec::with_capacity(64 * 1024)),
        limit,
        dropped: AtomicU64::new(0),
        stopping: AtomicBool::new(false),
        stop: Condvar::new(),
    });
    let (finished, done) = mpsc::channel();
    std::thread::Builder::new()
        .name("paymirror-log".into())
        .spawn({
            let shared = shared.clone();
            move || {
                write_out(&shared, out);
                let _ = finished.send(());
            }
        })?;
    Ok((
        LineWriter {
            shared: shared.clone(),
        },
        Guard { shared, done },
    ))
}

impl LineWriter {
    /// Lines dropped since start because the buffer was full.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

impl Write for LineWriter {
    /// Buffers `line` whole (the formatter writes a line in one call), or drops and
    /// counts it when it does not fit: never blocks on the output.
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let kept = match self.shared.pending.lock() {
            Ok(mut pending) if pending.len() + line.len() <= self.shared.limit => {
                pending.extend_from_slice(line);
                true
            }
            _ => false,
        };
        if !kept {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LineWriter {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// The writer thread: every [`FLUSH_EVERY`] (or at once when stopping), takes what is
/// buffered, leaving an empty buffer of the same capacity, and writes it out.
fn write_out<W: Write>(shared: &Shared, mut out: W) {
    let mut spare = Vec::with_capacity(64 * 1024);
    loop {
        let stopping = {
            let Ok(pending) = shared.pending.lock() else {
                return;
            };
            let (mut pending, _) =
                match shared.stop.wait_timeout_while(pending, FLUSH_EVERY, |_| {
                    !shared.stopping.load(Ordering::Relaxed)
                }) {
                    Ok(woken) => woken,
                    Err(_) => return,
                };
            std::mem::swap(&mut *pending, &mut spare);
            shared.stopping.load(Ordering::Relaxed)
        };
        if !spare.is_empty() {
            // A failed write (stderr closed) loses these lines; there is nowhere to say so.
            let _ = out.write_all(&spare).and_then(|()| out.flush());
            spare.clear();
        }
        if stopping {
            return;
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::Relaxed);
        self.shared.stop.notify_all();
        let _ = self.done.recv_timeout(STOP_WAIT);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stands for stderr: each write waits until the test lets it go (one write per
    /// message, every write once the sender is dropped), then keeps what it was given.
    struct Stalled {
        go: mpsc::Receiver<()>,
        written: Arc<Mutex<Vec<u8>>>,
    }

    /// An output that holds every write until the returned sender is dropped, and
    /// what it has written.
    fn stalled_output() -> (Stalled, mpsc::Sender<()>, Arc<Mutex<Vec<u8>>>) {
        let (release, go) = mpsc::channel();
        let written = Arc::new(Mutex::new(Vec::new()));
        let out = Stalled {
            go,
            written: written.clone(),
        };
        (out, release, written)
    }

    impl Write for Stalled {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let _ = self.go.recv();
            if let Ok(mut written) = self.written.lock() {
                written.extend_from_slice(buf);
            }
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn written_text(written: &Mutex<Vec<u8>>) -> String {
        let bytes = written.lock().map(|w| w.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[test]
    fn lines_beyond_the_buffer_are_dropped_and_counted_without_waiting() -> anyhow::Result<()> {
        let (stalled, release, written) = stalled_output();
        // Room for ten 8-byte lines ("line 00\n").
        let (writer, guard) = spawn(stalled, 80)?;
        for n in 0..100 {
            // Returns at once although nothing is being written.
            writer
                .clone()
                .write_all(format!("line {n:02}\n").as_bytes())?;
        }
        // The writer thread holds at most one buffer's worth, the buffer another.
        assert!(writer.dropped() >= 80, "{} dropped", writer.dropped());
        drop(release);
        drop(guard);
        let text = written_text(&written);
        assert!(text.starts_with("line 00\n"), "{text:?}");
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.windows(2).all(|w| w[0] < w[1]), "in order: {text:?}");
        assert_eq!(
            lines.len() as u64 + writer.dropped(),
            100,
            "every line is either written or counted"
        );
        Ok(())
    }

    #[test]
    fn lines_are_written_within_a_flush_and_all_of_them_at_the_end() -> anyhow::Result<()> {
        let (out, release, written) = stalled_output();
        drop(release);
        let (writer, guard) = spawn(out, 1 << 20)?;
        writer.clone().write_all(b"first\n")?;
        // Written by the thread on its own, with no further line to push it out.
        while !written_text(&written).contains("first\n") {
            std::thread::sleep(FLUSH_EVERY / 4);
        }
        for n in 0..1000 {
            writer.clone().write_all(format!("{n}\n").as_bytes())?;
        }
        drop(guard);
        let text = written_text(&written);
        assert_eq!(text.lines().count(), 1001);
        assert!(text.ends_with("999\n"));
        assert_eq!(writer.dropped(), 0);
        Ok(())
    }
}
