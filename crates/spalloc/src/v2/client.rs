//! [`Client`]: the v2 service as blocking methods — machines, where-is, the
//! job list, creating jobs and taking over existing ones.

use super::create::CreateJob;
use super::credentials::Credentials;
use super::job::Job;
use super::session::{Answer, Body, ServiceDescription, Session};
use super::shapes::{self, job_id_of, JobPage, JobStatus, MachineInfo, MachineList};
use crate::error::{Error, Result};
use spalloc_protocol::WhereIsRecord;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The most job-list pages followed (200 jobs each): a bound against a
/// server whose `next` links go round in a circle.
pub const MAX_JOB_PAGES: usize = 10_000;

/// Which board or chip a machine-level where-is asks about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BoardLookup {
    /// A board by triad coordinates.
    Logical {
        /// x.
        x: u32,
        /// y.
        y: u32,
        /// z.
        z: u32,
    },
    /// A board by physical location.
    Physical {
        /// Cabinet.
        cabinet: u32,
        /// Frame.
        frame: u32,
        /// Board.
        board: u32,
    },
    /// A chip by machine-global coordinates.
    Chip {
        /// x.
        x: u32,
        /// y.
        y: u32,
    },
    /// A board by IP address.
    Address(String),
}

impl BoardLookup {
    fn path_and_query(&self) -> String {
        match self {
            BoardLookup::Logical { x, y, z } => format!("logical-board?x={x}&y={y}&z={z}"),
            BoardLookup::Physical {
                cabinet,
                frame,
                board,
            } => format!("physical-board?cabinet={cabinet}&frame={frame}&board={board}"),
            BoardLookup::Chip { x, y } => format!("chip?x={x}&y={y}"),
            BoardLookup::Address(a) => format!("board-ip?address={}", encode(a)),
        }
    }
}

/// Builds a [`Client`]: the URL, then optionally credentials, a CA file,
/// a timeout.
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    url: String,
    credentials: Option<Credentials>,
    ca_cert: Option<PathBuf>,
    timeout: Duration,
}

impl ClientBuilder {
    /// Uses these credentials (default: none).
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// Also trusts the certificates in this PEM file (for a private server).
    pub fn ca_cert(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_cert = Some(path.into());
        self
    }

    /// Also trusts the certificates in this PEM file, if any.
    pub fn ca_cert_opt(mut self, path: Option<PathBuf>) -> Self {
        self.ca_cert = path;
        self
    }

    /// How long to wait for an ordinary answer (default 10 s; long-polls
    /// wait longer).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Checks the URL and the CA file; sends nothing yet.
    pub fn build(self) -> Result<Client> {
        let service_url = super::url::service_url(&self.url)?;
        let credentials = match self.credentials {
            Some(c) => c,
            None => match super::url::user_info(&self.url) {
                Some((user, password)) => Credentials::password(user, password),
                None => Credentials::Anonymous,
            },
        };
        let https = service_url.starts_with("https:");
        let tls = super::tls::client_config_for(https, self.ca_cert.as_deref())?;
        Ok(Client {
            session: Arc::new(Session::new(service_url, credentials, tls, self.timeout)),
        })
    }
}

/// A v2 (REST) spalloc service, as one user.
#[derive(Debug, Clone)]
pub struct Client {
    session: Arc<Session>,
}

impl Client {
    /// Starts building a client for `url` (`https://host/spalloc/`).
    pub fn builder(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            url: url.into(),
            credentials: None,
            ca_cert: None,
            timeout: Duration::from_secs(10),
        }
    }

    /// The session (for log-in details and raw requests).
    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }

    /// The service description; also checks that the credentials work.
    pub fn service(&self) -> Result<ServiceDescription> {
        self.session.service()
    }

    /// The service description if it is needed or already known. A bearer
    /// token needs no session (so no CSRF token from the description), and
    /// the API's paths are fixed (`…/srv/spalloc/jobs`, `…/machines`, in
    /// allocserv as here): skipping the description saves a short tool run
    /// one round trip of its few. A bad token is still refused by name, by
    /// the first real request.
    fn known_service(&self) -> Result<Option<ServiceDescription>> {
        match self.session.credentials() {
            Credentials::Token(_) => Ok(self.session.cached_service()),
            _ => self.service().map(Some),
        }
    }

    fn jobs_url(&self) -> Result<String> {
        Ok(self
            .known_service()?
            .and_then(|s| s.jobs_ref)
            .unwrap_or_else(|| format!("{}jobs", self.session.api_url())))
    }

    fn machines_url(&self) -> Result<String> {
        Ok(self
            .known_service()?
            .and_then(|s| s.machines_ref)
            .unwrap_or_else(|| format!("{}machines", self.session.api_url())))
    }

    /// Every machine.
    pub fn machines(&self) -> Result<Vec<MachineInfo>> {
        let answer = self.session.get(&self.machines_url()?)?;
        Ok(answer.json::<MachineList>("the machine list")?.machines)
    }

    /// One machine; with `wait`, after it next changes (or 30 s).
    pub fn machine(&self, name: &str, wait: bool) -> Result<MachineInfo> {
        let url = format!("{}/{}", self.machines_url()?, encode(name));
        let answer = if wait {
            self.session.get_long_poll(&format!("{url}?wait=true"))?
        } else {
            self.session.get(&url)?
        };
        answer.json("the machine")
    }

    /// Waits (a long-poll: up to 30 s) until the list of jobs this user may
    /// see changes, for watching it.
    pub fn wait_for_jobs_change(&self) -> Result<()> {
        let url = format!("{}?wait=true", self.jobs_url()?);
        self.session.get_long_poll(&url).map(|_| ())
    }

    /// Where a board or chip of a machine is, and which job holds it;
    /// `None` if there is no such board.
    pub fn where_is(&self, machine: &str, lookup: &BoardLookup) -> Result<Option<WhereIsRecord>> {
        let url = format!(
            "{}/{}/{}",
            self.machines_url()?,
            encode(machine),
            lookup.path_and_query()
        );
        match self.session.get(&url) {
            Ok(a) if a.status == 204 || a.body.trim().is_empty() => Ok(None),
            Ok(a) => shapes::where_is_record(&a.body).map(Some),
            Err(Error::Http { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET usage` (an extension of this project's server): the logged-in
    /// user's usage, or with `user` (administrators only) that user's, as
    /// the server's JSON (see its OpenAPI description); one page of at most
    /// 1000 jobs, newest first.
    pub fn usage(&self, user: Option<&str>) -> Result<serde_json::Value> {
        let mut url = format!("{}usage?limit=1000", self.session.api_url());
        if let Some(user) = user {
            url.push_str(&format!("&user={}", encode(user)));
        }
        self.session.get(&url)?.json("the usage report")
    }

    /// The URLs of the jobs this user may see (with `deleted`, destroyed
    /// ones too), following `next` links to the end.
    pub fn job_urls(&self, deleted: bool) -> Result<Vec<String>> {
        self.job_urls_paged(deleted, 200)
    }

    /// [`Client::job_urls`], asking for pages of `limit` jobs (allocserv
    /// allows 1 to 200).
    pub fn job_urls_paged(&self, deleted: bool, limit: u32) -> Result<Vec<String>> {
        let mut url = format!("{}?deleted={deleted}&limit={limit}", self.jobs_url()?);
        let mut urls = Vec::new();
        for _ in 0..MAX_JOB_PAGES {
            let page: JobPage = self.session.get(&url)?.json("the job list")?;
            urls.extend(page.jobs);
            match page.next {
                Some(next) if next != url => url = next,
                _ => return Ok(urls),
            }
        }
        Err(Error::ProtocolError(format!(
            "the job list did not end after {MAX_JOB_PAGES} pages"
        )))
    }

    /// The jobs this user may see, with their states; jobs that vanish
    /// while the list is read are left out.
    pub fn jobs(&self, deleted: bool) -> Result<Vec<(u64, JobStatus)>> {
        let mut jobs = Vec::new();
        for url in self.job_urls(deleted)? {
            let Some(id) = job_id_of(&url) else { continue };
            match self.session.get(&url) {
                Ok(a) => jobs.push((id, a.json("a job's state")?)),
                Err(Error::Http {
                    status: 404 | 410, ..
                }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(jobs)
    }

    /// Creates a job and starts keeping it alive. Does not wait for it to
    /// be ready: see [`Job::wait_until_ready`].
    pub fn create_job(&self, request: &CreateJob) -> Result<Job> {
        let jobs = self.jobs_url()?;
        let answer: Answer = self.session.request(
            "POST",
            &jobs,
            &Body::Json(request.to_json()),
            Duration::from_secs(30),
        )?;
        let created: Option<shapes::Created> = serde_json::from_str(&answer.body).ok();
        let url = answer
            .location
            .clone()
            .or_else(|| created.as_ref().and_then(|c| c.job_ref.clone()))
            .or_else(|| {
                created
                    .as_ref()
                    .and_then(|c| c.job_id)
                    .map(|id| format!("{jobs}/{id}"))
            })
            .ok_or_else(|| {
                Error::ProtocolError("the server created a job but did not say where".into())
            })?;
        let url = absolute(&jobs, &url);
        let id = job_id_of(&url).ok_or_else(|| {
            Error::ProtocolError(format!("the new job's URL {url} does not end in its ID"))
        })?;
        Ok(Job::start(
            self.session.clone(),
            id,
            url,
            Some(request.keepalive),
        ))
    }

    /// Takes over an existing job: checks that it is alive and keeps it
    /// alive at `keepalive` (None: leave that to someone else).
    pub fn resume_job(&self, id: u64, keepalive: Option<Duration>) -> Result<Job> {
        let url = format!("{}/{id}", self.jobs_url()?);
        let status: JobStatus = match self.session.get(&url) {
            Ok(a) => a.json("the job's state")?,
            Err(Error::Http {
                status: 404 | 410,
                message,
                ..
            }) => {
                return Err(Error::JobDestroyed {
                    job_id: id,
                    reason: Some(format!("job does not exist: {message}")),
                })
            }
            Err(e) => return Err(e),
        };
        if matches!(
            status.job_state(),
            spalloc_protocol::JobState::Destroyed | spalloc_protocol::JobState::Unknown
        ) {
            return Err(Error::JobDestroyed {
                job_id: id,
                reason: status.reason,
            });
        }
        Ok(Job::start(self.session.clone(), id, url, keepalive))
    }

    /// A handle on a job by ID that neither keeps it alive nor destroys it
    /// when dropped (for `spalloc-job`'s queries and destroy).
    pub fn job(&self, id: u64) -> Result<Job> {
        let url = format!("{}/{id}", self.jobs_url()?);
        Ok(Job::detached(self.session.clone(), id, url))
    }
}

/// A URL from a `Location` header, made absolute against `base`.
fn absolute(base: &str, location: &str) -> String {
    match url::Url::parse(base).and_then(|b| b.join(location)) {
        Ok(u) => u.to_string(),
        Err(_) => location.to_owned(),
    }
}

/// What [`encode`] escapes: controls, space, and the characters that would
/// end or split a path segment or query value. Unreserved characters such
/// as `-` stay as they are (not every server decodes `%2D`).
const COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'+')
    .add(b'/')
    .add(b'<')
    .add(b'=')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// Percent-encodes a path segment or query value.
pub(crate) fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, COMPONENT).to_string()
}
