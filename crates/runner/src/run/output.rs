//! Output: Ansible-shaped terminal lines, the JSON-lines event stream, and progress bars.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::Path;

use airlock_base::progress::ProgressFactory;
use console::Style;
use indexmap::IndexMap;
use serde_json::{Map, Value as Json, json};

/// Per-host counts for `PLAY RECAP`.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub ok: u64,
    pub changed: u64,
    pub unreachable: u64,
    pub failed: u64,
    pub skipped: u64,
    pub rescued: u64,
    pub ignored: u64,
}

/// How a task ended on a host (or for one loop item).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Changed,
    Skipped,
    Failed,
    Unreachable,
}

/// Python's `json.dumps(v, sort_keys=True, indent=indent, ensure_ascii=False)`, as Ansible's
/// callbacks print results.
pub fn py_json(v: &Json, indent: Option<usize>) -> String {
    airlock_base::pyfmt::json_dumps(v, indent, true, false)
}

/// The output as the executor holds it: hosts that run in parallel (`forks`) share it, and
/// each call takes the lock, so one result's lines are never interleaved with another's.
#[derive(Clone)]
pub struct SharedOutput(std::sync::Arc<std::sync::Mutex<Output>>);

impl SharedOutput {
    pub fn new(out: Output) -> SharedOutput {
        SharedOutput(std::sync::Arc::new(std::sync::Mutex::new(out)))
    }

    /// The output, locked. A thread that panicked while printing leaves it usable.
    pub fn lock(&self) -> std::sync::MutexGuard<'_, Output> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The progress bar factory, for modules.
    pub fn progress(&self) -> ProgressFactory {
        self.lock().progress.clone()
    }
}

/// Where results go: the terminal, in Ansible's words, and optionally a JSON-lines file.
pub struct Output {
    out: BufWriter<std::io::Stdout>,
    json: Option<BufWriter<File>>,
    pub verbosity: u8,
    pub diff: bool,
    color: bool,
    width: usize,
    pub progress: ProgressFactory,
    /// What must never be printed or written to the event stream (see [`crate::secrets`]).
    pub secrets: crate::secrets::Secrets,
}

impl Output {
    /// Terminal output plus the event stream at `json_events` when given.
    pub fn new(verbosity: u8, diff: bool, json_events: Option<&Path>) -> std::io::Result<Output> {
        let tty = std::io::stdout().is_terminal();
        let json = match json_events {
            Some(p) => Some(BufWriter::new(File::create(p)?)),
            None => None,
        };
        let color = tty && std::env::var_os("NO_COLOR").is_none() && std::env::var("ANSIBLE_NOCOLOR").map(|v| v.is_empty() || v == "0").unwrap_or(true);
        let width = if tty { console::Term::stdout().size_checked().map(|(_, w)| w as usize).unwrap_or(80).max(40) } else { 80 };
        Ok(Output {
            out: BufWriter::new(std::io::stdout()),
            json,
            verbosity,
            diff,
            color,
            width,
            progress: ProgressFactory { visible: tty },
            secrets: Default::default(),
        })
    }

    fn style(&self, s: &str, style: Style) -> String {
        if self.color { style.apply_to(s).to_string() } else { s.to_string() }
    }

    /// A heading filled with stars, as Ansible's `PLAY [...]` and `TASK [...]` lines.
    pub fn banner(&mut self, msg: &str) {
        let msg = self.secrets.scrub(msg).into_owned();
        // Ansible fills the line to the terminal width (80 when piped).
        let stars = self.width.saturating_sub(msg.chars().count() + 1).max(3);
        let _ = writeln!(self.out, "\n{} {}", msg, "*".repeat(stars));
    }

    /// Writes one event to the JSON-lines stream.
    pub fn event(&mut self, event: &str, mut data: Map<String, Json>) {
        if let Some(j) = &mut self.json {
            if !self.secrets.is_empty() {
                let mut v = Json::Object(data);
                self.secrets.scrub_json(&mut v);
                let Json::Object(m) = v else { unreachable!() };
                data = m;
            }
            data.insert("event".into(), Json::String(event.to_string()));
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
            data.insert("time".into(), json!(now));
            let _ = serde_json::to_writer(&mut *j, &Json::Object(data));
            let _ = j.write_all(b"\n");
        }
    }

    pub fn playbook_start(&mut self, path: &Path) {
        self.event("playbook_start", obj(&[("playbook", json!(path.display().to_string()))]));
    }

    pub fn play_start(&mut self, name: &str) {
        let msg = if name.is_empty() { "PLAY".to_string() } else { format!("PLAY [{name}]") };
        self.banner(&msg);
        self.event("play_start", obj(&[("play", json!(name))]));
    }

    pub fn task_start(&mut self, name: &str, handler: bool, path: &str) {
        let kind = if handler { "RUNNING HANDLER" } else { "TASK" };
        self.banner(&format!("{kind} [{name}]"));
        if self.verbosity >= 2 {
            let _ = writeln!(self.out, "task path: {path}");
        }
        self.event(if handler { "handler_task_start" } else { "task_start" }, obj(&[("task", json!(name)), ("path", json!(path))]));
    }

    /// A host's (or a loop item's) result line.
    ///
    /// `verbose_always` is set for `debug`, whose results always print and print only what
    /// the task asked to show (as Ansible's callback cleans them).
    #[allow(clippy::too_many_arguments)] // the parts of one result line, all needed to print it
    pub fn result(&mut self, host: &str, task: &str, outcome: Outcome, result: &Json, item_label: Option<&str>, verbose_always: bool, ignored: bool) {
        let scrubbed;
        let (result, item_label) = if self.secrets.is_empty() {
            (result, item_label)
        } else {
            let mut r = result.clone();
            self.secrets.scrub_json(&mut r);
            scrubbed = (r, item_label.map(|l| self.secrets.scrub(l).into_owned()));
            (&scrubbed.0, scrubbed.1.as_deref())
        };
        let delegated = result.pointer("/_ansible_delegated_vars/ansible_delegated_host").and_then(Json::as_str).map(|d| format!("{host} -> {d}"));
        let event_host = host;
        let host = delegated.as_deref().unwrap_or(host);
        let mut shown = clean_result(result);
        if verbose_always && let Json::Object(m) = &mut shown {
            if m.contains_key("msg") {
                m.retain(|k, _| matches!(k.as_str(), "msg" | "exception" | "warnings" | "deprecations"));
            } else {
                for k in ["changed", "failed", "skipped", "invocation", "skip_reason"] {
                    m.remove(k);
                }
            }
        }
        if self.diff {
            self.show_diff(result);
        }
        let item = item_label.map(|l| format!(" (item={l})")).unwrap_or_default();
        let line = match outcome {
            Outcome::Ok | Outcome::Changed => {
                let word = if outcome == Outcome::Changed { "changed" } else { "ok" };
                let mut s = format!("{word}: [{host}]");
                if item_label.is_some() {
                    s.push_str(&format!(" =>{item}"));
                }
                if verbose_always || self.verbosity > 0 {
                    let indent = if verbose_always || self.verbosity > 2 { Some(4) } else { None };
                    s.push_str(&format!(" => {}", py_json(&shown, indent)));
                }
                self.style(&s, if outcome == Outcome::Changed { Style::new().yellow() } else { Style::new().green() })
            }
            Outcome::Skipped => {
                let mut s = format!("skipping: [{host}]");
                if item_label.is_some() {
                    // Ansible's callback leaves a space after the item here.
                    s.push_str(&format!(" =>{item} "));
                }
                if self.verbosity > 0 {
                    s.push_str(&format!(" => {}", py_json(&shown, None)));
                }
                self.style(&s, Style::new().cyan())
            }
            Outcome::Failed => {
                let indent = if self.verbosity > 2 { Some(4) } else { None };
                let s = if item_label.is_some() {
                    format!("failed: [{host}]{item} => {}", py_json(&shown, indent))
                } else {
                    format!("fatal: [{host}]: FAILED! => {}", py_json(&shown, indent))
                };
                self.style(&s, Style::new().red())
            }
            Outcome::Unreachable => self.style(&format!("fatal: [{host}]: UNREACHABLE! => {}", py_json(&shown, None)), Style::new().red()),
        };
        let _ = writeln!(self.out, "{line}");
        if ignored {
            let _ = writeln!(self.out, "{}", self.style("...ignoring", Style::new().cyan()));
        }
        let ev = match (outcome, item_label.is_some()) {
            (Outcome::Ok | Outcome::Changed, false) => "runner_on_ok",
            (Outcome::Ok | Outcome::Changed, true) => "runner_item_on_ok",
            (Outcome::Skipped, false) => "runner_on_skipped",
            (Outcome::Skipped, true) => "runner_item_on_skipped",
            (Outcome::Failed, false) => "runner_on_failed",
            (Outcome::Failed, true) => "runner_item_on_failed",
            (Outcome::Unreachable, _) => "runner_on_unreachable",
        };
        let mut data = obj(&[("host", json!(event_host)), ("task", json!(task)), ("result", result.clone())]);
        if let Some(l) = item_label {
            data.insert("item".into(), json!(l));
        }
        if ignored {
            data.insert("ignore_errors".into(), json!(true));
        }
        self.event(ev, data);
    }

    /// Prints `--diff` output of a result, as Ansible's callback does.
    fn show_diff(&mut self, result: &Json) {
        let Some(diffs) = result.get("diff") else { return };
        let list: Vec<&Json> = match diffs {
            Json::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        for d in list {
            let get = |k: &str| d.get(k).and_then(|v| v.as_str()).unwrap_or("");
            let (before, after) = (get("before"), get("after"));
            if before == after && d.get("before").is_some() {
                continue;
            }
            let bh = d.get("before_header").and_then(|v| v.as_str()).unwrap_or("");
            let ah = d.get("after_header").and_then(|v| v.as_str()).unwrap_or("");
            let text = similar::TextDiff::from_lines(before, after);
            let udiff = text.unified_diff().context_radius(3).header(&format!("before: {bh}"), &format!("after: {ah}")).to_string();
            for line in udiff.lines() {
                let styled = if line.starts_with('+') && !line.starts_with("+++") {
                    self.style(line, Style::new().green())
                } else if line.starts_with('-') && !line.starts_with("---") {
                    self.style(line, Style::new().red())
                } else if line.starts_with("@@") {
                    self.style(line, Style::new().cyan())
                } else {
                    line.to_string()
                };
                let _ = writeln!(self.out, "{styled}");
            }
            if !udiff.is_empty() {
                let _ = writeln!(self.out);
            }
        }
    }

    pub fn warning(&mut self, msg: &str) {
        let msg = self.secrets.scrub(msg).into_owned();
        let msg = msg.as_str();
        let s = self.style(&format!("[WARNING]: {msg}"), Style::new().magenta());
        let _ = self.out.flush();
        eprintln!("{s}");
        self.event("warning", obj(&[("msg", json!(msg))]));
    }

    pub fn line(&mut self, msg: &str) {
        let _ = writeln!(self.out, "{}", self.secrets.scrub(msg));
    }

    /// `PLAY RECAP` with Ansible's column layout.
    pub fn recap(&mut self, stats: &IndexMap<String, Stats>) {
        self.banner("PLAY RECAP");
        let mut ev = Map::new();
        for (host, s) in stats {
            let col = |lead: &str, n: u64, style: Style, me: &Self| {
                let text = format!("{lead}={n:<4}");
                if n > 0 { me.style(&text, style) } else { text }
            };
            let host_style = if s.failed > 0 || s.unreachable > 0 {
                Style::new().red()
            } else if s.changed > 0 {
                Style::new().yellow()
            } else {
                Style::new().green()
            };
            let h = self.style(&format!("{host:<26}"), host_style);
            let line = format!(
                "{h} : {} {} {} {} {} {} {}",
                col("ok", s.ok, Style::new().green(), self),
                col("changed", s.changed, Style::new().yellow(), self),
                col("unreachable", s.unreachable, Style::new().red(), self),
                col("failed", s.failed, Style::new().red(), self),
                col("skipped", s.skipped, Style::new().cyan(), self),
                col("rescued", s.rescued, Style::new().magenta(), self),
                col("ignored", s.ignored, Style::new().magenta(), self),
            );
            let _ = writeln!(self.out, "{line}");
            ev.insert(
                host.clone(),
                json!({"ok": s.ok, "changed": s.changed, "unreachable": s.unreachable, "failed": s.failed, "skipped": s.skipped, "rescued": s.rescued, "ignored": s.ignored}),
            );
        }
        let _ = writeln!(self.out);
        self.event("stats", obj(&[("stats", Json::Object(ev))]));
    }

    pub fn flush(&mut self) {
        let _ = self.out.flush();
        if let Some(j) = &mut self.json {
            let _ = j.flush();
        }
    }
}

fn obj(pairs: &[(&str, Json)]) -> Map<String, Json> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

/// The result as the callback prints it: internal keys and the diff removed.
fn clean_result(result: &Json) -> Json {
    match result {
        Json::Object(m) => Json::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with("_ansible") && !matches!(k.as_str(), "diff" | "invocation" | "failed"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_json_layout() {
        let v = json!({"b": [1, "x"], "a": {"k": true}, "f": 1.0, "e": []});
        assert_eq!(py_json(&v, None), r#"{"a": {"k": true}, "b": [1, "x"], "e": [], "f": 1.0}"#);
        assert_eq!(py_json(&json!({"msg": "hi"}), Some(4)), "{\n    \"msg\": \"hi\"\n}");
    }
}
