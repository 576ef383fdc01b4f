//! The audit writer: a bounded queue between the request path and the sinks, drained by one
//! task that masks, serializes and appends events in batches. A full queue drops the event
//! and counts it, or makes the request wait (`audit.queue.when_full`); either way nothing
//! is lost silently: dropped and unwritable events are written into the log as a `lost`
//! event with their number, logged, and counted in metrics.

use super::{AuditConfig, Event, Payloads, WhenFull};
use portcullis_guard::Guard;
use portcullis_store::{now_ms, AuditEntry, Store};
use serde_json::{json, Value};
use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot};

/// Where events go: the store's hash chain and/or a JSON Lines file. Nowhere else.
#[derive(Default)]
pub struct Sinks {
    pub store: Option<Store>,
    pub file: Option<PathBuf>,
}

enum Message {
    Event(Box<Event>, Arc<Guard>),
    Flush(oneshot::Sender<()>),
}

/// The request path's end of the audit queue.
pub struct Recorder {
    queue: Option<mpsc::Sender<Message>>,
    /// The store the writer appends to, for reading the log back (admin API).
    store: Option<Store>,
    when_full: WhenFull,
    region: Option<String>,
    instance: Arc<str>,
    /// Events lost since start (queue full, store unavailable).
    lost: Arc<AtomicU64>,
    /// Lost events not yet written into the log as a `lost` event.
    unreported: Arc<AtomicU64>,
}

/// How often retention runs.
const PRUNE_EVERY: Duration = Duration::from_secs(600);
/// How long a batch waits for more events before it is written.
const LINGER: Duration = Duration::from_millis(100);
/// Events the writer prepares before it lets other tasks run.
const YIELD_EVERY: usize = 16;
/// Attempts at writing one batch before its events count as lost.
const ATTEMPTS: u32 = 5;

impl Recorder {
    /// A recorder that records nothing (`audit.enabled: false`, or no sink).
    pub fn off() -> Recorder {
        Recorder {
            queue: None,
            store: None,
            when_full: WhenFull::Drop,
            region: None,
            instance: Arc::from(""),
            lost: Arc::default(),
            unreported: Arc::default(),
        }
    }

    /// Starts the writer task for `sinks`.
    pub fn start(config: &AuditConfig, region: Option<String>, sinks: Sinks) -> Recorder {
        if !config.enabled || (sinks.store.is_none() && sinks.file.is_none()) {
            return Recorder::off();
        }
        let (queue, events) = mpsc::channel(config.queue.capacity.max(1));
        let (lost, unreported) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let instance: Arc<str> = Arc::from(instance_name());
        let store = sinks.store.clone();
        let writer = Writer {
            sinks,
            payloads: config.payloads,
            batch: config.queue.batch.max(1),
            retention: (config.retention.max_age, config.retention.max_size),
            region: region.clone(),
            instance: instance.clone(),
            lost: lost.clone(),
            unreported: unreported.clone(),
        };
        tokio::spawn(writer.run(events));
        Recorder { queue: Some(queue), store, when_full: config.queue.when_full, region, instance, lost, unreported }
    }

    pub fn enabled(&self) -> bool {
        self.queue.is_some()
    }

    /// Queues an event; `guard` masks its arguments in the writer.
    pub async fn record(&self, mut event: Event, guard: &Arc<Guard>) {
        let Some(queue) = &self.queue else { return };
        event.region.clone_from(&self.region);
        event.instance = self.instance.clone();
        let message = Message::Event(Box::new(event), guard.clone());
        let sent = match self.when_full {
            WhenFull::Wait => queue.send(message).await.is_ok(),
            WhenFull::Drop => queue.try_send(message).is_ok(),
        };
        if !sent {
            let lost = self.lost.fetch_add(1, Ordering::Relaxed) + 1;
            self.unreported.fetch_add(1, Ordering::Relaxed);
            if lost.is_power_of_two() {
                tracing::warn!(lost, "the audit queue is full: events are dropped and counted (audit.queue)");
            }
        }
    }

    /// Waits until every event queued so far is written.
    pub async fn flush(&self) {
        let Some(queue) = &self.queue else { return };
        let (done, written) = oneshot::channel();
        if queue.send(Message::Flush(done)).await.is_ok() {
            let _ = written.await;
        }
    }

    /// The store events are appended to, if any.
    pub fn store(&self) -> Option<&Store> {
        self.store.as_ref()
    }

    /// Events lost since start.
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    /// Events waiting in the queue.
    pub fn queue_depth(&self) -> usize {
        self.queue.as_ref().map_or(0, |q| q.max_capacity() - q.capacity())
    }
}

/// `host:pid`, naming the process in each event (and its traces).
pub fn instance_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{host}:{}", std::process::id())
}

struct Writer {
    sinks: Sinks,
    payloads: Payloads,
    batch: usize,
    retention: (Option<Duration>, Option<u64>),
    region: Option<String>,
    instance: Arc<str>,
    lost: Arc<AtomicU64>,
    unreported: Arc<AtomicU64>,
}

impl Writer {
    async fn run(mut self, mut queue: mpsc::Receiver<Message>) {
        let mut file = self.open_file().await;
        let mut prune = tokio::time::interval(PRUNE_EVERY);
        prune.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            let first = tokio::select! {
                message = queue.recv() => match message {
                    Some(message) => message,
                    None => break,
                },
                _ = prune.tick() => {
                    self.prune().await;
                    continue;
                }
            };
            // A batch collects for LINGER: one transaction per event would cost more than the
            // rest of the call, and so would waking this task for each event (it sleeps instead
            // of waiting on the queue). A flush, or a full batch already waiting, goes at once.
            if matches!(first, Message::Event(..)) && queue.len() + 1 < self.batch {
                tokio::time::sleep(LINGER).await;
            }
            let (mut events, mut flushes) = (Vec::new(), Vec::new());
            let mut next = Some(first);
            while let Some(message) = next {
                match message {
                    Message::Event(event, guard) => {
                        events.push(self.entry(*event, &guard));
                        // A batch is milliseconds of masking and encoding at a few thousand
                        // calls a second; handing the worker thread back between slices of it
                        // keeps the calls queued behind this task from waiting that long.
                        if events.len() % YIELD_EVERY == 0 {
                            tokio::task::yield_now().await;
                        }
                    }
                    Message::Flush(done) => flushes.push(done),
                }
                next = if events.len() < self.batch { queue.try_recv().ok() } else { None };
            }
            self.write(events, &mut file).await;
            for done in flushes {
                let _ = done.send(());
            }
        }
    }

    async fn open_file(&mut self) -> Option<tokio::fs::File> {
        let path = self.sinks.file.as_ref()?;
        match tokio::fs::OpenOptions::new().create(true).append(true).open(path).await {
            Ok(file) => Some(file),
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "cannot open the audit file: events go to the store only");
                None
            }
        }
    }

    /// The stored form of an event: arguments masked per `audit.payloads`, serialized.
    fn entry(&self, mut event: Event, guard: &Guard) -> AuditEntry {
        let arguments = event.raw_arguments.take();
        event.arguments = match self.payloads {
            Payloads::None => None,
            Payloads::Raw => arguments.and_then(|a| serde_json::from_str(a.get()).ok()),
            Payloads::Redacted => arguments.and_then(|a| serde_json::from_str(a.get()).ok()).map(|mut value| {
                mask_strings(&mut value, guard);
                value
            }),
        };
        // A resource URI can carry a credential.
        if self.payloads != Payloads::Raw && event.method.starts_with("resources/") {
            if let Some(Cow::Owned(masked)) = event.target.as_deref().map(|t| guard.mask(t)) {
                event.target = Some(masked);
            }
        }
        AuditEntry {
            at: event.at_ms,
            caller: event.caller.clone(),
            user: event.principal.user.clone().unwrap_or_default(),
            tool: event.target.clone().unwrap_or_default(),
            decision: event.decision.to_owned(),
            // An Event of strings, numbers and JSON values always serializes.
            body: serde_json::to_string(&event).unwrap_or_default(),
        }
    }

    /// The `lost` event that reports events dropped or unwritable since the last one.
    fn lost_entry(&self, lost: u64) -> AuditEntry {
        let at = now_ms();
        let time = std::time::UNIX_EPOCH + Duration::from_millis(u64::try_from(at).unwrap_or(0));
        let body = json!({
            "time": humantime::format_rfc3339_millis(time).to_string(),
            "region": self.region,
            "instance": &*self.instance,
            "method": "audit/lost",
            "lost": lost,
            "reason": "the audit queue was full or the store could not be written (see the gateway's log)",
            "decision": "lost",
        });
        AuditEntry {
            at,
            caller: "portcullis".into(),
            user: String::new(),
            tool: String::new(),
            decision: "lost".into(),
            body: body.to_string(),
        }
    }

    async fn write(&self, mut events: Vec<AuditEntry>, file: &mut Option<tokio::fs::File>) {
        let unreported = self.unreported.swap(0, Ordering::Relaxed);
        if unreported > 0 {
            events.insert(0, self.lost_entry(unreported));
        }
        if events.is_empty() {
            return;
        }
        if let Some(file) = file {
            let mut lines = String::new();
            for e in &events {
                lines.push_str(&e.body);
                lines.push('\n');
            }
            if let Err(e) = file.write_all(lines.as_bytes()).await {
                tracing::error!(error = %e, "cannot append to the audit file");
            }
        }
        let Some(store) = &self.sinks.store else { return };
        for attempt in 0..ATTEMPTS {
            match store.append_audit(&events).await {
                Ok(_) => return,
                Err(e) if attempt + 1 < ATTEMPTS => {
                    tracing::warn!(error = %e, attempt, "cannot write audit events yet; retrying");
                    tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                }
                Err(e) => tracing::error!(error = %e, events = events.len(), "audit events could not be written"),
            }
        }
        // Counted, and reported in the log by the next batch that can be written.
        let count = events.len() as u64 - u64::from(unreported > 0);
        self.lost.fetch_add(count, Ordering::Relaxed);
        self.unreported.fetch_add(count + unreported, Ordering::Relaxed);
    }

    async fn prune(&self) {
        let (Some(store), (max_age, max_size)) = (&self.sinks.store, self.retention) else { return };
        if max_age.is_none() && max_size.is_none() {
            return;
        }
        let before = max_age.map(|age| now_ms().saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX)));
        match store.prune_audit(before, max_size).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "audit retention removed old events"),
            Err(e) => tracing::warn!(error = %e, "audit retention could not run"),
        }
    }
}

/// Replaces every credential and personal value in the strings of `value` by its marker.
fn mask_strings(value: &mut Value, guard: &Guard) {
    match value {
        Value::String(s) => {
            if let Cow::Owned(masked) = guard.mask(s) {
                *s = masked;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| mask_strings(v, guard)),
        Value::Object(map) => map.values_mut().for_each(|v| mask_strings(v, guard)),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}
