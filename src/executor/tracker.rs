//! One poller for every job of a run: a single `list` query per round however many jobs there
//! are, quick rounds while jobs change state, slower ones (up to `max_poll`) while nothing
//! happens. Each attempt watches its own job's state through a `watch` channel.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, watch};

use super::batch::{BatchScheduler, JobSpec, JobState, ListedJob};

/// The first wait between two rounds after a change.
const MIN_POLL: Duration = Duration::from_millis(250);

pub(crate) struct JobTracker {
    scheduler: Arc<dyn BatchScheduler>,
    jobs: Mutex<HashMap<String, watch::Sender<JobState>>>,
    poke: Notify,
    max_poll: Duration,
}

impl JobTracker {
    /// A tracker polling at most every `max_poll` while nothing changes. Call [`Self::start`].
    pub(crate) fn new(scheduler: Arc<dyn BatchScheduler>, max_poll: Duration) -> Arc<Self> {
        Arc::new(Self {
            scheduler,
            jobs: Mutex::new(HashMap::new()),
            poke: Notify::new(),
            max_poll: max_poll.max(MIN_POLL),
        })
    }

    /// The scheduler's name (`slurm`).
    pub(crate) fn name(&self) -> &'static str {
        self.scheduler.name()
    }

    /// Starts the polling task (on the current tokio runtime). It ends when the tracker is
    /// dropped.
    pub(crate) fn start(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut wait = MIN_POLL;
            loop {
                let Some(me) = weak.upgrade() else { return };
                let idle = me.lock_jobs().is_empty();
                let poke = me.poke_handle();
                drop(me);
                if idle {
                    poke.await;
                    wait = MIN_POLL;
                    continue;
                }
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = poke => wait = MIN_POLL,
                }
                let Some(me) = weak.upgrade() else { return };
                let changed = tokio::task::spawn_blocking({
                    let me = me.clone();
                    move || me.round()
                })
                .await
                .unwrap_or_default();
                wait = if changed {
                    MIN_POLL
                } else {
                    (wait * 2).min(me.max_poll)
                };
            }
        });
    }

    /// A future that completes at the next [`Self::poke`] (owning what it needs).
    fn poke_handle(self: &Arc<Self>) -> impl std::future::Future<Output = ()> + use<> {
        let me = self.clone();
        async move { me.poke.notified().await }
    }

    fn lock_jobs(&self) -> std::sync::MutexGuard<'_, HashMap<String, watch::Sender<JobState>>> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Asks for a round soon (a job was submitted or cancelled, a status file changed).
    pub(crate) fn poke(&self) {
        self.poke.notify_one();
    }

    /// One round: list the jobs, ask how those that left the listing (or failed) ended, tell
    /// their watchers. Returns whether any state changed. Blocking.
    fn round(&self) -> bool {
        let ids: Vec<String> = self.lock_jobs().keys().cloned().collect();
        if ids.is_empty() {
            return false;
        }
        let Ok(listed) = self.scheduler.list() else {
            return false;
        };
        let by_id: HashMap<&str, &ListedJob> = listed.iter().map(|j| (j.id.as_str(), j)).collect();
        let mut changed = false;
        for id in ids {
            let state = match by_id.get(id.as_str()) {
                Some(j) if j.exact => j.state.clone(),
                _ => match self.scheduler.final_state(&id) {
                    Ok(s) => s,
                    Err(_) => continue,
                },
            };
            let mut jobs = self.lock_jobs();
            let Some(tx) = jobs.get(&id) else { continue };
            if *tx.borrow() != state {
                changed = true;
                let over = state.is_over();
                let _ = tx.send(state);
                if over {
                    jobs.remove(&id);
                }
            }
        }
        changed
    }

    /// Submits a job (off the async runtime) and starts tracking it.
    pub(crate) async fn submit(
        self: &Arc<Self>,
        spec: JobSpec,
    ) -> Result<(String, watch::Receiver<JobState>), String> {
        let me = self.clone();
        let id = tokio::task::spawn_blocking(move || me.scheduler.submit(&spec))
            .await
            .map_err(|e| format!("the submission did not finish: {e}"))??;
        let rx = self.track(&id, JobState::Queued);
        Ok((id, rx))
    }

    /// Starts tracking job `id` (submitted now, or found after a restart), believed `state`.
    pub(crate) fn track(&self, id: &str, state: JobState) -> watch::Receiver<JobState> {
        // A receiver made by `subscribe` has the current value marked seen, as a new channel's.
        let rx = self
            .lock_jobs()
            .entry(id.to_string())
            .or_insert_with(|| watch::channel(state).0)
            .subscribe();
        self.poke();
        rx
    }

    /// Asks the scheduler to cancel job `id` (off the async runtime); its watchers see it end.
    pub(crate) async fn cancel(self: &Arc<Self>, id: &str) -> Result<(), String> {
        self.cancel_with(id, |s, ids| s.cancel(ids)).await
    }

    /// Cancels job `id` if it still waits in the queue (off the async runtime).
    pub(crate) async fn cancel_queued(self: &Arc<Self>, id: &str) -> Result<(), String> {
        self.cancel_with(id, |s, ids| s.cancel_queued(ids)).await
    }

    async fn cancel_with(
        self: &Arc<Self>,
        id: &str,
        call: fn(&dyn BatchScheduler, &[String]) -> Result<(), String>,
    ) -> Result<(), String> {
        let me = self.clone();
        let ids = vec![id.to_string()];
        let r = tokio::task::spawn_blocking(move || call(me.scheduler.as_ref(), &ids))
            .await
            .map_err(|e| format!("scancel did not finish: {e}"))?;
        self.poke();
        r
    }

    /// The user's jobs the scheduler lists (off the async runtime).
    pub(crate) async fn list(self: &Arc<Self>) -> Result<Vec<ListedJob>, String> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.scheduler.list())
            .await
            .map_err(|e| format!("the query did not finish: {e}"))?
    }

    /// The processes of job `id` on this machine, by the scheduler's record (off the async
    /// runtime).
    pub(crate) async fn local_pids(self: &Arc<Self>, id: &str) -> Result<Vec<u32>, String> {
        let me = self.clone();
        let id = id.to_owned();
        tokio::task::spawn_blocking(move || me.scheduler.local_pids(&id))
            .await
            .map_err(|e| format!("the query did not finish: {e}"))?
    }
}
