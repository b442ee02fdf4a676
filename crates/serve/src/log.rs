//! The request log: one line per request on stderr, written by a thread of its own.
//!
//! A locked, unbuffered stderr write per request costs a syscall on the path of every answer
//! and serialises the runtime's workers on stderr's lock. Here a request only appends its line
//! to a shared buffer; the writer thread takes the whole buffer and writes it in one go. When
//! the server is idle the writer sleeps until the first line arrives and writes it at once (so
//! `tail -f` and tests see a request as soon as it is done); under load it writes at most
//! once per [`BATCH_PAUSE`], whatever the request rate. [`flush`] writes what is pending; the
//! server calls it when it is stopped by a signal.

use std::io::Write;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// How long the writer lets lines gather after a write before it writes again.
const BATCH_PAUSE: Duration = Duration::from_millis(2);

struct Log {
    state: Mutex<State>,
    wake: Condvar,
}

struct State {
    pending: Vec<u8>,
    writer_waiting: bool,
    /// Until [`start`] runs the writer (and in tests of the handlers), lines go straight out.
    writer_running: bool,
}

static LOG: Log = Log { state: Mutex::new(State { pending: Vec::new(), writer_waiting: false, writer_running: false }), wake: Condvar::new() };

fn state() -> std::sync::MutexGuard<'static, State> {
    LOG.state.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts the writer thread; without it (it cannot start), lines are written one by one.
pub fn start() {
    let mut st = state();
    if st.writer_running {
        return;
    }
    match std::thread::Builder::new().name("airlock-log".into()).spawn(writer) {
        Ok(_) => st.writer_running = true,
        Err(e) => {
            drop(st);
            write_out(format!("airlock serve: cannot start the log writer ({e}); logging unbuffered\n").as_bytes());
        }
    }
}

/// Queues one log line (given without its newline) for stderr; formatted straight into the
/// shared buffer, so a line costs no allocation of its own.
pub fn line(args: std::fmt::Arguments<'_>) {
    let mut st = state();
    if !st.writer_running {
        drop(st);
        write_out(format!("{args}\n").as_bytes());
        return;
    }
    let was_empty = st.pending.is_empty();
    // Writing into a Vec cannot fail.
    let _ = st.pending.write_fmt(args);
    st.pending.push(b'\n');
    // Only an idle writer needs waking: a busy one comes back for the buffer by itself, and
    // sparing the notify spares a futex call per request under load.
    if was_empty && st.writer_waiting {
        drop(st);
        LOG.wake.notify_one();
    }
}

/// Writes every queued line to stderr now.
pub fn flush() {
    // stderr's lock first, as the writer takes it: lines never go out of order.
    let mut err = std::io::stderr().lock();
    let batch = std::mem::take(&mut state().pending);
    let _ = err.write_all(&batch);
}

fn writer() {
    let mut batch = Vec::new();
    loop {
        {
            let mut st = state();
            while st.pending.is_empty() {
                st.writer_waiting = true;
                st = LOG.wake.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            st.writer_waiting = false;
        }
        {
            let mut err = std::io::stderr().lock();
            std::mem::swap(&mut state().pending, &mut batch);
            // Nowhere to report a failed log write; the requests themselves were answered.
            let _ = err.write_all(&batch);
        }
        batch.clear();
        std::thread::sleep(BATCH_PAUSE);
    }
}

fn write_out(bytes: &[u8]) {
    let _ = std::io::stderr().lock().write_all(bytes);
}
