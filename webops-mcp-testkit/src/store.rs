//! The shared state of a running mock and the platform's rules: create, actions, scale,
//! update, delete, and the build lifecycle.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::error::ApiError;
use crate::fault::Control;
use crate::model::{Database, Deployment, Level, LogType, ServiceState, Status, Ts, User, now};
use crate::numbers;
use crate::params::{NewDeployment, Update};

/// Locks a mutex, riding over poisoning (a panicking test thread must not wedge the mock).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Fixed settings of one mock.
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) token: String,
    pub(crate) read_only_token: Option<String>,
    pub(crate) step_delay: Duration,
    /// When the mock started; seeded timestamps are relative to it.
    pub(crate) started: Ts,
    /// When the simulated host booted.
    pub(crate) booted: Ts,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("step_delay", &self.step_delay)
            .field("started", &self.started)
            .finish_non_exhaustive()
    }
}

/// Everything the server, the lifecycle tasks and the handle share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: Config,
    state: Mutex<State>,
    control: Mutex<Control>,
    tasks: Mutex<JoinSet<()>>,
    /// Woken on every change of a deployment's status.
    pub(crate) changed: Notify,
}

impl Shared {
    /// Wraps a seeded state.
    pub(crate) fn new(config: Config, state: State) -> Shared {
        Shared {
            config,
            state: Mutex::new(state),
            control: Mutex::new(Control::default()),
            tasks: Mutex::new(JoinSet::new()),
            changed: Notify::new(),
        }
    }

    /// The platform state.
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Faults, limits and the request log.
    pub(crate) fn control(&self) -> MutexGuard<'_, Control> {
        lock(&self.control)
    }

    /// Runs the build of deployment `id` in the background (from `pending` when `queued`,
    /// else from `building`).
    pub(crate) fn spawn_build(self: &Arc<Self>, id: i64, generation: u64, queued: bool) {
        let shared = Arc::clone(self);
        let mut tasks = lock(&self.tasks);
        while tasks.try_join_next().is_some() {}
        tasks.spawn(async move { shared.build(id, generation, queued).await });
    }

    async fn build(&self, id: i64, generation: u64, queued: bool) {
        let step = self.config.step_delay;
        if queued {
            tokio::time::sleep(step).await;
            if !self.state().begin_build(id, generation, now()) {
                return;
            }
            self.changed.notify_waiters();
        }
        tokio::time::sleep(step).await;
        if self.state().finish_build(id, generation, now()) {
            self.changed.notify_waiters();
        }
    }

    /// Waits until every lifecycle task started so far (and any it leads to) has ended.
    pub(crate) async fn settle(&self) {
        loop {
            let mut tasks = std::mem::take(&mut *lock(&self.tasks));
            if tasks.is_empty() {
                return;
            }
            while tasks.join_next().await.is_some() {}
        }
    }

    /// Stops every lifecycle task.
    pub(crate) fn abort_tasks(&self) {
        lock(&self.tasks).abort_all();
    }
}

/// A stored answer for an `Idempotency-Key`.
#[derive(Debug, Clone)]
pub(crate) struct Replay {
    pub(crate) request: Value,
    pub(crate) status: u16,
    pub(crate) response: Value,
    pub(crate) at: Ts,
}

/// The platform: deployments, databases, services.
#[derive(Debug, Default)]
pub(crate) struct State {
    next_id: i64,
    next_task: u64,
    pub(crate) deployments: BTreeMap<i64, Deployment>,
    pub(crate) databases: Vec<Database>,
    pub(crate) services: BTreeMap<String, ServiceState>,
    pub(crate) idempotency: HashMap<String, Replay>,
    pub(crate) fail_builds: BTreeSet<String>,
}

/// A state change asked through `POST deployments/{id}/<action>/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Start,
    Stop,
    Restart,
    Redeploy,
}

impl Action {
    fn verb(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Restart => "restart",
            Action::Redeploy => "redeploy",
        }
    }
}

/// What an action did; `build` asks the caller to run a build of that generation.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) status: Status,
    pub(crate) message: String,
    pub(crate) build: Option<u64>,
}

/// Whether `url` is an https Git URL a build can clone: `https://host/owner/repo[.git]`.
pub(crate) fn is_https_git_url(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("https://") else {
        return false;
    };
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some((authority, path)) = rest.split_once('/') else {
        return false;
    };
    let host = authority.rsplit('@').next().unwrap_or(authority);
    let host = host.split(':').next().unwrap_or(host);
    let host_ok = !host.is_empty()
        && (host.contains('.') || host == "localhost")
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    let segments = path.trim_end_matches('/').split('/');
    let mut count = 0;
    for segment in segments {
        if segment.is_empty() || segment == "." || segment == ".." {
            return false;
        }
        count += 1;
    }
    host_ok && count >= 2
}

/// Why a build may not even start: the transition is not allowed in `status`.
/// Ends a build as `failed`: `error` in the deployment and error logs, then why.
fn fail_build(d: &mut Deployment, at: Ts, error: String, why: &str) {
    d.log(at, LogType::Deployment, Level::Error, error.clone());
    d.log(at, LogType::Error, Level::Error, error);
    d.log(
        at,
        LogType::Deployment,
        Level::Error,
        format!("Deployment failed: {why}"),
    );
    d.set_status(Status::Failed);
    d.started_at = None;
}

fn busy(id: i64, status: Status, verb: &str) -> ApiError {
    ApiError::conflict(format!(
        "Cannot {verb} deployment {id} while it is {}; wait until the build finishes",
        status.as_str()
    ))
}

impl State {
    /// A state with the platform's standard services.
    pub(crate) fn new() -> State {
        let services = ["nginx", "gunicorn", "celery", "postgresql", "redis"]
            .into_iter()
            .map(|s| (s.to_owned(), ServiceState::Running))
            .collect();
        State {
            next_id: 1,
            next_task: 1,
            services,
            ..State::default()
        }
    }

    /// Adds a seeded deployment (its id is assigned here).
    pub(crate) fn insert_seeded(&mut self, mut deployment: Deployment) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        deployment.id = id;
        deployment.logs.sort_by_key(|l| l.timestamp);
        self.deployments.insert(id, deployment);
        id
    }

    /// Adds a seeded database.
    pub(crate) fn insert_database(&mut self, mut database: Database) {
        database.id = self.databases.len() as i64 + 1;
        self.databases.push(database);
    }

    /// The deployment with `id`, or 404.
    pub(crate) fn get(&self, id: i64) -> Result<&Deployment, ApiError> {
        self.deployments
            .get(&id)
            .ok_or_else(|| ApiError::not_found(format!("Deployment {id} not found")))
    }

    fn get_mut(&mut self, id: i64) -> Result<&mut Deployment, ApiError> {
        self.deployments
            .get_mut(&id)
            .ok_or_else(|| ApiError::not_found(format!("Deployment {id} not found")))
    }

    /// The deployment named `name`.
    pub(crate) fn by_name(&self, name: &str) -> Option<&Deployment> {
        self.deployments.values().find(|d| d.name == name)
    }

    /// `POST deployments/`: a new `pending` deployment. Returns its id, its generation and the
    /// answer's `data`.
    pub(crate) fn create(
        &mut self,
        new: NewDeployment,
        at: Ts,
        step_delay: Duration,
    ) -> Result<(i64, u64, Value), ApiError> {
        if let Some(existing) = self.by_name(&new.name) {
            return Err(ApiError::conflict(format!(
                "A deployment named '{}' already exists (id {})",
                new.name, existing.id
            )));
        }
        let id = self.next_id;
        self.next_id += 1;
        let task = format!("task-{:06}", self.next_task);
        self.next_task += 1;
        let mut deployment = Deployment {
            id,
            name: new.name,
            status: Status::Pending,
            environment: new.environment,
            project_type: new.project_type,
            repo_url: new.repo_url,
            branch: new.branch,
            domain: new.domain,
            ssl_enabled: new.ssl_enabled,
            python_version: new.python_version,
            database_type: new.database_type,
            memory_limit: new.memory_limit,
            instances: 1,
            created_at: at,
            updated_at: at,
            deployed_by: User {
                id: 1,
                username: "admin".to_owned(),
            },
            healthy: true,
            started_at: None,
            env_vars: new.env_vars,
            error_rate: numbers::round(0.001 + 0.009 * numbers::unit(id, 0, 8), 4),
            logs: Vec::new(),
            history: vec![Status::Pending],
            generation: 0,
        };
        deployment.log(
            at,
            LogType::Deployment,
            Level::Info,
            format!("Deployment queued as {task}"),
        );
        let estimated = chrono::Duration::from_std(step_delay.saturating_mul(2))
            .ok()
            .and_then(|build| at.checked_add_signed(build + chrono::Duration::seconds(1)))
            .unwrap_or(at);
        let data = json!({
            "id": id,
            "name": deployment.name,
            "status": Status::Pending,
            "deployment_task_id": task,
            "estimated_completion": estimated,
        });
        self.deployments.insert(id, deployment);
        Ok((id, 0, data))
    }

    /// `pending` → `building`; false when the deployment is gone or took another course.
    pub(crate) fn begin_build(&mut self, id: i64, generation: u64, at: Ts) -> bool {
        let Some(d) = self.deployments.get_mut(&id) else {
            return false;
        };
        if d.generation != generation || d.status != Status::Pending {
            return false;
        }
        d.set_status(Status::Building);
        d.updated_at = at;
        let message = format!(
            "Build started: cloning {} (branch {})",
            d.repo_url, d.branch
        );
        d.log(at, LogType::Deployment, Level::Info, message);
        true
    }

    /// `building` → `running` or `failed`; false when the deployment is gone or took another
    /// course.
    pub(crate) fn finish_build(&mut self, id: i64, generation: u64, at: Ts) -> bool {
        let forced = self
            .deployments
            .get(&id)
            .is_some_and(|d| self.fail_builds.contains(&d.name));
        let Some(d) = self.deployments.get_mut(&id) else {
            return false;
        };
        if d.generation != generation || d.status != Status::Building {
            return false;
        }
        d.updated_at = at;
        if !is_https_git_url(&d.repo_url) {
            let message = format!(
                "fatal: unable to clone '{}': not a valid https Git repository URL",
                d.repo_url
            );
            fail_build(d, at, message, "the repository could not be cloned");
            return true;
        }
        let python = d.python_version.clone().unwrap_or_else(|| "3".to_owned());
        d.log(
            at,
            LogType::Deployment,
            Level::Info,
            format!("Installing dependencies from requirements.txt (Python {python})"),
        );
        if forced {
            let message = "ERROR: pip install exited with status 1: ResolutionImpossible: \
                           could not find a version that satisfies the requirement"
                .to_owned();
            fail_build(d, at, message, "dependency installation failed");
            return true;
        }
        if d.project_type == "django" {
            d.log(
                at,
                LogType::Deployment,
                Level::Info,
                "Running migrations: python manage.py migrate --noinput".to_owned(),
            );
            d.log(
                at,
                LogType::Deployment,
                Level::Info,
                "Collecting static files: python manage.py collectstatic --noinput".to_owned(),
            );
        }
        let (instances, port, url) = (d.instances, d.port(), d.url());
        d.log(
            at,
            LogType::Deployment,
            Level::Info,
            format!("Starting {instances} instance(s) on port {port}"),
        );
        d.log(
            at,
            LogType::Deployment,
            Level::Info,
            format!("Deployment succeeded: {url} is live"),
        );
        d.log(
            at,
            LogType::Application,
            Level::Info,
            format!(
                "Listening at: http://0.0.0.0:{port} ({} workers)",
                instances * 2 + 1
            ),
        );
        d.set_status(Status::Running);
        d.started_at = Some(at);
        true
    }

    /// start / stop / restart / redeploy.
    pub(crate) fn action(&mut self, id: i64, action: Action, at: Ts) -> Result<Outcome, ApiError> {
        let d = self.get_mut(id)?;
        let status = d.status;
        // A redeploy supersedes a build in progress (its task sees the generation move on);
        // every other action waits for the build to finish.
        if matches!(status, Status::Pending | Status::Building) && action != Action::Redeploy {
            return Err(busy(id, status, action.verb()));
        }
        let n = d.instances;
        let outcome = match (action, status) {
            (Action::Start, Status::Stopped) => {
                d.log(
                    at,
                    LogType::Deployment,
                    Level::Info,
                    "Start requested".into(),
                );
                d.log(
                    at,
                    LogType::Deployment,
                    Level::Info,
                    format!("Started {n} instance(s)"),
                );
                d.set_status(Status::Running);
                d.started_at = Some(at);
                Outcome {
                    status: Status::Running,
                    message: format!("Deployment {id} started"),
                    build: None,
                }
            }
            (Action::Start, Status::Failed) | (Action::Redeploy, _) => {
                d.generation += 1;
                let what = match (action, status) {
                    (Action::Start, _) => "Start of a failed deployment requested: rebuilding",
                    (_, Status::Pending | Status::Building) => {
                        "Redeploy requested: the build in progress is superseded"
                    }
                    _ => "Redeploy requested",
                };
                let message = format!("{what}: cloning {} (branch {})", d.repo_url, d.branch);
                d.log(at, LogType::Deployment, Level::Info, message);
                d.set_status(Status::Building);
                d.started_at = None;
                Outcome {
                    status: Status::Building,
                    message: format!("Deployment {id} is being rebuilt"),
                    build: Some(d.generation),
                }
            }
            (Action::Start, _) => {
                return Err(ApiError::conflict(format!(
                    "Deployment {id} is already running"
                )));
            }
            (Action::Stop, Status::Running) => {
                d.log(
                    at,
                    LogType::Deployment,
                    Level::Info,
                    format!("Stopped {n} instance(s)"),
                );
                d.set_status(Status::Stopped);
                d.started_at = None;
                Outcome {
                    status: Status::Stopped,
                    message: format!("Deployment {id} stopped"),
                    build: None,
                }
            }
            (Action::Restart, Status::Running) => {
                d.log(
                    at,
                    LogType::Deployment,
                    Level::Info,
                    "Restart requested".into(),
                );
                d.log(
                    at,
                    LogType::Deployment,
                    Level::Info,
                    format!("Restarted {n} instance(s)"),
                );
                d.started_at = Some(at);
                Outcome {
                    status: Status::Running,
                    message: format!("Deployment {id} restarted"),
                    build: None,
                }
            }
            (Action::Stop | Action::Restart, other) => {
                return Err(ApiError::conflict(format!(
                    "Cannot {} deployment {id}: it is {}, and only a running deployment can be {}",
                    action.verb(),
                    other.as_str(),
                    if action == Action::Stop {
                        "stopped"
                    } else {
                        "restarted"
                    }
                )));
            }
        };
        d.updated_at = at;
        Ok(outcome)
    }

    /// `POST deployments/{id}/scale/`.
    pub(crate) fn scale(&mut self, id: i64, instances: u32, at: Ts) -> Result<Value, ApiError> {
        let d = self.get_mut(id)?;
        if d.status != Status::Running {
            return Err(ApiError::conflict(format!(
                "Cannot scale deployment {id}: it is {}, and only a running deployment can be scaled",
                d.status.as_str()
            )));
        }
        let from = d.instances;
        d.instances = instances;
        d.updated_at = at;
        d.log(
            at,
            LogType::Deployment,
            Level::Info,
            format!("Scaled from {from} to {instances} instance(s)"),
        );
        Ok(json!({"id": id, "instances": instances, "status": d.status}))
    }

    /// `PUT deployments/{id}/`.
    pub(crate) fn update(&mut self, id: i64, update: Update, at: Ts) -> Result<(), ApiError> {
        let d = self.get_mut(id)?;
        let mut changed = Vec::new();
        if let Some(branch) = update.branch {
            d.branch = branch;
            changed.push("branch");
        }
        if let Some(domain) = update.domain {
            d.domain = domain;
            changed.push("domain");
        }
        if let Some(vars) = update.env_vars {
            d.env_vars = vars;
            changed.push("env_vars");
        }
        if !changed.is_empty() {
            d.updated_at = at;
            let message = format!("Settings updated: {}", changed.join(", "));
            d.log(at, LogType::Deployment, Level::Info, message);
        }
        Ok(())
    }

    /// `DELETE deployments/{id}/`: removes it and unlinks its databases.
    pub(crate) fn delete(&mut self, id: i64) -> Result<(), ApiError> {
        self.deployments
            .remove(&id)
            .ok_or_else(|| ApiError::not_found(format!("Deployment {id} not found")))?;
        for db in &mut self.databases {
            if db.deployment_id == Some(id) {
                db.deployment_id = None;
            }
        }
        Ok(())
    }

    /// Forces a status (test hook); cancels any build under way.
    pub(crate) fn force_status(&mut self, id: i64, status: Status, at: Ts) -> bool {
        let Some(d) = self.deployments.get_mut(&id) else {
            return false;
        };
        d.generation += 1;
        d.set_status(status);
        d.updated_at = at;
        d.started_at = (status == Status::Running).then_some(at);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_deployment(name: &str) -> NewDeployment {
        let body = serde_json::json!({"name": name, "repo_url": "https://github.com/a/b.git"});
        let Value::Object(body) = body else {
            unreachable!()
        };
        crate::params::new_deployment(&body).unwrap()
    }

    #[test]
    fn create_survives_an_absurd_step_delay() {
        let mut state = State::new();
        let (id, generation, data) = state
            .create(new_deployment("a"), now(), Duration::MAX)
            .unwrap();
        assert_eq!((id, generation), (1, 0));
        assert!(data["estimated_completion"].is_string());
    }

    #[test]
    fn stale_lifecycle_steps_are_ignored() {
        let mut state = State::new();
        let (id, generation, _) = state
            .create(new_deployment("a"), now(), Duration::ZERO)
            .unwrap();
        assert!(state.begin_build(id, generation, now()));
        assert!(state.force_status(id, Status::Stopped, now()));
        assert!(
            !state.finish_build(id, generation, now()),
            "generation moved on"
        );
        assert_eq!(state.get(id).unwrap().status, Status::Stopped);
        state.delete(id).unwrap();
        assert!(!state.begin_build(id, generation + 1, now()));
    }

    #[test]
    fn https_git_urls() {
        for ok in [
            "https://github.com/acme/shop.git",
            "https://gitlab.example.com/group/sub/repo",
            "https://user:token@github.com/acme/shop.git",
            "https://git.example.com:8443/acme/shop/",
        ] {
            assert!(is_https_git_url(ok), "{ok}");
        }
        for bad in [
            "http://github.com/acme/shop.git",
            "git://github.com/acme/shop.git",
            "git@github.com:acme/shop.git",
            "https://github.com/acme",
            "https:///acme/shop",
            "https://github.com/acme/../shop",
            "https://github com/acme/shop",
            "not a url",
            "",
        ] {
            assert!(!is_https_git_url(bad), "{bad}");
        }
    }
}
