//! What a running workshop holds: one [`Lab`] per running topology (what it is, its target
//! behind a lock, the journeys' recorder, the per-second series, the last view of its
//! processes), the event log on the workshop's clock, the load, the self-healing settings,
//! and the channel the ticks go out on.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{Mutex as AsyncMutex, MutexGuard as AsyncMutexGuard, broadcast, watch};

use super::WorkshopArgs;
use super::error::ApiError;
use super::identity::{Identity, color_of};
use domain::Context;
use loadtest_lab::journeys::{Recorder, Shopfront};
use loadtest_platform::{Injection, Target, TargetSettings};
use loadtest_results::component::Component;
use loadtest_results::history::RequestRecord;

/// How many per-second points of each journey the workshop keeps (and a page opened late
/// is sent): a quarter of an hour.
const SERIES_POINTS: usize = 900;
/// How many events the log keeps.
const EVENTS_KEPT: usize = 2_000;
/// How long a control waits for a build that another control is busy with (a deploy holds
/// its build for seconds) before it answers `busy`.
const LOCK_WAIT: Duration = Duration::from_secs(3);

/// The whole workshop; shared by the API handlers and the background loops.
pub(crate) struct Workshop {
    pub epoch: Instant,
    pub settings: TargetSettings,
    pub labs: Vec<Lab>,
    pub load: AsyncMutex<LoadControl>,
    pub load_limit: Duration,
    pub healing: Mutex<Healing>,
    events: Mutex<EventLog>,
    /// Every tick as JSON; each open page holds a receiver.
    pub ticks: broadcast::Sender<Arc<str>>,
    /// Set on shutdown so open event streams end.
    pub closed: watch::Sender<bool>,
}

/// One running topology as the workshop sees it: a slot of the page, whose topology the
/// picker may change (`picker`), keeping its colour and its series.
pub(crate) struct Lab {
    /// What runs in the slot now; replaced whole when the picker starts another topology.
    identity: Mutex<Arc<Identity>>,
    /// The slot's colour on every chart, kept across topology changes so a line goes on.
    pub color: String,
    pub target: AsyncMutex<Target>,
    /// The journeys against this build record here, on the workshop's clock.
    pub recorder: Arc<Recorder>,
    /// What the journeys know about the seeded data (from the last reset).
    pub shop: Mutex<Shopfront>,
    /// Every checkout since the last reset: what the invariant checker needs of the history
    /// (I3, I4 and the maybe-applied resolution read checkouts only). Reads are not kept, so
    /// a long session does not grow by every product page.
    pub checkouts: Mutex<Vec<RequestRecord>>,
    pub series: Mutex<Series>,
    /// The processes as last sampled; also the fallback while a deploy holds the target.
    pub processes: Mutex<Vec<ProcessView>>,
    /// Processes the page paused (SIGSTOP) and has not resumed.
    pub paused: Mutex<BTreeSet<(Component, usize)>>,
    /// Restarts by the self-healing loop or a heal, per process.
    pub restarts: Mutex<HashMap<(Component, usize), u32>>,
    /// The links made ready for network faults (on the local platform: a fault proxy put in
    /// front of the service on first use), and the network faults in force, lifted at heal.
    pub network: Mutex<Network>,
    /// The control that takes seconds (a deploy, a rollback, a scale, a network fault) now
    /// running on this build, if any: a second one is refused with `409 busy` when it asks,
    /// not accepted and dropped later.
    pub long_control: Mutex<Option<String>>,
}

/// The network faults of one build.
#[derive(Default)]
pub(crate) struct Network {
    pub prepared: BTreeSet<Context>,
    pub in_force: Vec<(Context, Injection)>,
}

/// The load as the page sees it.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub(crate) struct LoadStatus {
    pub running: bool,
    pub users_per_build: usize,
    pub started_at_ms: Option<u64>,
}

/// The running attack, if any.
#[derive(Default)]
pub(crate) struct LoadControl {
    pub running: Option<Running>,
}

/// One Goose attack for every build, and how to resize or stop it.
pub(crate) struct Running {
    pub users_per_build: usize,
    pub started_at_ms: u64,
    pub controller_port: u16,
    pub stop_requested: Arc<AtomicBool>,
    pub attack: tokio::task::JoinHandle<()>,
}

impl LoadControl {
    pub fn status(&self) -> LoadStatus {
        match &self.running {
            Some(running) if !running.attack.is_finished() => LoadStatus {
                running: true,
                users_per_build: running.users_per_build,
                started_at_ms: Some(running.started_at_ms),
            },
            _ => LoadStatus::default(),
        }
    }
}

/// The self-healing loop's settings, changed from the page.
#[derive(Clone, Copy, Debug, Serialize)]
pub(crate) struct Healing {
    pub enabled: bool,
    pub delay_ms: u64,
}

/// One journey's numbers over one second of the workshop's clock.
#[derive(Clone, Copy, Debug, Serialize)]
pub(crate) struct Point {
    pub t_ms: u64,
    /// Requests answered (or failed) during the second.
    pub requests: usize,
    /// Of those, answered 2xx: the tile's "req/s", so a dead build's fast refusals never
    /// read as throughput.
    pub ok: usize,
    /// Share answered 2xx; `None` for a second without requests.
    pub success_rate: Option<f64>,
    /// Of the successful requests; `None` for a second without one.
    pub p99_ms: Option<f64>,
}

/// The per-second points of each journey.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Series {
    pub browse: VecDeque<Point>,
    pub buy: VecDeque<Point>,
}

impl Series {
    pub fn push(&mut self, browse: Point, buy: Point) {
        for (points, point) in [(&mut self.browse, browse), (&mut self.buy, buy)] {
            if points.len() == SERIES_POINTS {
                points.pop_front();
            }
            points.push_back(point);
        }
    }
}

/// One process box of the topology.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ProcessView {
    /// The component's name (`catalog`, `gateway`, `monolith`) or the group's (`core`,
    /// `catalog+recommendations`).
    pub component: String,
    /// The contexts the process hosts: one for a service, all seven for the monolith, a
    /// group's for a group, none for the gateway and the front door.
    pub contexts: Vec<Context>,
    pub replica: usize,
    pub pid: u32,
    /// `ready` (answers `/ready`), `not_ready` (answers, but a dependency it needs does
    /// not), `paused` (stopped by the page), `down` (no answer within the probe's timeout).
    pub health: &'static str,
    pub uptime_s: Option<u64>,
    pub restarts: u32,
    pub cpu_percent: Option<f32>,
    pub rss_mib: Option<f64>,
    /// The lab's own front door, not part of the shop.
    pub lab_part: bool,
    #[serde(skip)]
    pub url: String,
}

/// One line of the event log, also drawn as a marker on the charts.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Event {
    pub id: u64,
    pub t_ms: u64,
    /// The lab's name (its topology's: `monolith`, `micro`, `coarse`, a spec); `None` for the
    /// workshop itself (load, checker, heal of every lab).
    pub build: Option<String>,
    /// `fault`, `heal`, `died`, `restarted`, `ready`, `deploy`, `scale`, `load`, `check`,
    /// `topology`, `error`: the page colours markers by it.
    pub kind: &'static str,
    pub message: String,
}

#[derive(Default)]
struct EventLog {
    next_id: u64,
    events: VecDeque<Event>,
    /// Events not yet sent in a tick.
    unsent: Vec<Event>,
}

impl Workshop {
    /// Seeds every target afresh and wraps them up.
    pub async fn new(
        targets: Vec<Target>,
        settings: TargetSettings,
        args: &WorkshopArgs,
    ) -> anyhow::Result<Arc<Workshop>> {
        let epoch = Instant::now();
        let mut labs = Vec::new();
        for (slot, target) in targets.into_iter().enumerate() {
            let reset = target.reset(&settings).await?;
            labs.push(Lab {
                identity: Mutex::new(Arc::new(Identity::of(&target))),
                color: color_of(target.topology(), slot),
                target: AsyncMutex::new(target),
                recorder: Recorder::new(epoch),
                shop: Mutex::new(shopfront(&reset)),
                checkouts: Mutex::new(Vec::new()),
                series: Mutex::new(Series::default()),
                processes: Mutex::new(Vec::new()),
                paused: Mutex::new(BTreeSet::new()),
                restarts: Mutex::new(HashMap::new()),
                network: Mutex::new(Network::default()),
                long_control: Mutex::new(None),
            });
        }
        let (ticks, _) = broadcast::channel(16);
        let (closed, _) = watch::channel(false);
        let workshop = Arc::new(Workshop {
            epoch,
            settings,
            labs,
            load: AsyncMutex::new(LoadControl::default()),
            load_limit: Duration::from_secs(args.load_limit_s.max(1)),
            healing: Mutex::new(Healing {
                enabled: true,
                delay_ms: args.restart_delay_ms,
            }),
            events: Mutex::new(EventLog::default()),
            ticks,
            closed,
        });
        let names: Vec<String> = workshop.labs.iter().map(Lab::name).collect();
        workshop.event(None, "ready", format!("started: {}", names.join(" and ")));
        Ok(workshop)
    }

    /// Milliseconds on the workshop's clock (the recorders' clock too).
    pub fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Each lab's public URL (its front door, or its gateway), to print.
    pub fn public_urls(&self) -> Vec<(String, String)> {
        self.labs
            .iter()
            .filter_map(|lab| {
                let target = lab.target.try_lock().ok()?;
                Some((lab.name(), target.url().to_owned()))
            })
            .collect()
    }

    /// The labs a control path names: one by its name, or every lab for `both` (or `all`).
    pub fn labs_named(&self, name: &str) -> Result<Vec<usize>, ApiError> {
        if name == "both" || name == "all" {
            return Ok((0..self.labs.len()).collect());
        }
        match self.labs.iter().position(|lab| lab.name() == name) {
            Some(index) => Ok(vec![index]),
            None => {
                let names: Vec<String> = self.labs.iter().map(Lab::name).collect();
                Err(ApiError::not_found(format!(
                    "no topology {name:?} runs in this workshop: {} or both",
                    names.join(", ")
                )))
            }
        }
    }

    /// Adds one line to the event log (and logs it to the terminal).
    pub fn event(&self, build: Option<String>, kind: &'static str, message: impl Into<String>) {
        let message = one_line(&message.into());
        match &build {
            Some(build) => eprintln!("[{:>7.1} s] {build}: {message}", self.seconds()),
            None => eprintln!("[{:>7.1} s] {message}", self.seconds()),
        }
        let mut log = lock(&self.events);
        log.next_id += 1;
        let event = Event {
            id: log.next_id,
            t_ms: self.now_ms(),
            build,
            kind,
            message,
        };
        if log.events.len() == EVENTS_KEPT {
            log.events.pop_front();
        }
        log.events.push_back(event.clone());
        log.unsent.push(event);
    }

    fn seconds(&self) -> f64 {
        self.epoch.elapsed().as_secs_f64()
    }

    /// Every event kept, oldest first.
    pub fn events(&self) -> Vec<Event> {
        lock(&self.events).events.iter().cloned().collect()
    }

    /// The events added since the last call: what the next tick carries.
    pub fn take_unsent_events(&self) -> Vec<Event> {
        std::mem::take(&mut lock(&self.events).unsent)
    }

    pub fn healing(&self) -> Healing {
        *lock(&self.healing)
    }

    pub fn close_streams(&self) {
        let _ = self.closed.send(true);
    }

    /// Stops every process of every build (the caller has stopped the load).
    pub async fn shut_down(self: Arc<Workshop>) -> anyhow::Result<()> {
        for lab in &self.labs {
            let paused: Vec<(Component, usize)> = lock(&lab.paused).iter().copied().collect();
            let mut target = lab.target.lock().await;
            // A stopped process does not act on SIGTERM; the stop sends SIGCONT too, but
            // resuming first keeps the drain as short as for any other process.
            for (component, _) in paused {
                let _ = target.pause(component, false).await;
            }
        }
        // A control still running in the background (a deploy) holds the workshop until it
        // ends; it is given the stop deadline of a deploy. Should it not end, the processes
        // still die with this one (`PR_SET_PDEATHSIG`).
        let until = Instant::now() + Duration::from_secs(70);
        let mut workshop = self;
        let workshop = loop {
            match Arc::try_unwrap(workshop) {
                Ok(workshop) => break workshop,
                Err(_) if Instant::now() >= until => {
                    anyhow::bail!("a control was still running when the workshop stopped")
                }
                Err(shared) => {
                    workshop = shared;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        for lab in workshop.labs {
            lab.target.into_inner().stop().await?;
        }
        Ok(())
    }

    /// Holds lab `lab_index` for the long control `what`, or answers `busy` now: when another
    /// long control runs on it, or when a short one holds its target for longer than a short
    /// control takes.
    pub async fn claim(
        self: &Arc<Workshop>,
        lab_index: usize,
        what: &str,
    ) -> Result<Claim, ApiError> {
        let lab = &self.labs[lab_index];
        {
            let mut running = lock(&lab.long_control);
            if let Some(running) = &*running {
                return Err(ApiError::busy(format!(
                    "{} is busy with {running}; try again when it is done (the event log says when)",
                    lab.name()
                )));
            }
            *running = Some(what.to_owned());
        }
        let claim = Claim {
            workshop: self.clone(),
            lab_index,
        };
        drop(lab.target().await?);
        Ok(claim)
    }
}

/// A build held for one long control (`Workshop::claim`); dropping it lets the next one in.
pub(crate) struct Claim {
    workshop: Arc<Workshop>,
    lab_index: usize,
}

impl Drop for Claim {
    fn drop(&mut self) {
        *lock(&self.workshop.labs[self.lab_index].long_control) = None;
    }
}

impl Lab {
    /// What runs in this slot now.
    pub fn identity(&self) -> Arc<Identity> {
        lock(&self.identity).clone()
    }

    /// The running topology's name: how the API and the event log name this lab.
    pub fn name(&self) -> String {
        self.identity().name.clone()
    }

    /// Puts what the picker started in the slot.
    pub fn set_identity(&self, identity: Identity) {
        *lock(&self.identity) = Arc::new(identity);
    }

    /// The target, once no other control holds it; `busy` when one does for too long.
    pub async fn target(&self) -> Result<AsyncMutexGuard<'_, Target>, ApiError> {
        self.target_within(LOCK_WAIT).await
    }

    /// The target, waiting at most `wait` for another control to let go of it.
    pub async fn target_within(
        &self,
        wait: Duration,
    ) -> Result<AsyncMutexGuard<'_, Target>, ApiError> {
        tokio::time::timeout(wait, self.target.lock())
            .await
            .map_err(|_| {
                ApiError::busy(format!(
                    "{} is busy with another control (a deploy, a restart or a topology change); try again when it is done",
                    self.name()
                ))
            })
    }
}

/// The journeys' view of freshly seeded data. Browse and buy get the same weight (the
/// lab's runs use 4:1): in a workshop both charts should be drawn from as many users.
pub(crate) fn shopfront(reset: &domain::admin::ResetSummary) -> Shopfront {
    Shopfront {
        products: reset.products,
        users: reset.users,
        first_user: 0,
        password: reset.user_password.clone(),
        browse_weight: 1,
        buy_weight: 1,
    }
}

/// A std mutex that a panicked holder did not leave unusable: the workshop's data stay
/// readable, at worst one second's numbers are off.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

/// The first line of a message without terminal colour codes: an error that carries a
/// process's last output would otherwise fill the log with it.
fn one_line(message: &str) -> String {
    let first = message.lines().next().unwrap_or_default();
    let mut plain = String::with_capacity(first.len());
    let mut escape = false;
    for character in first.chars() {
        match (escape, character) {
            (false, '\u{1b}') => escape = true,
            (true, 'a'..='z' | 'A'..='Z') => escape = false,
            (true, _) => {}
            (false, character) => plain.push(character),
        }
    }
    plain.trim_end_matches(':').trim_end().to_owned()
}
