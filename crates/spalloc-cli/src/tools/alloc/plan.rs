//! `spalloc`'s options turned into what to do, with the reference's
//! defaults from the config file and its validation.

use super::args::AllocArgs;
use crate::command_template::{build_command_line, Substitutions};
use crate::server_args::seconds_to_timeout;
use spalloc::config::DEFAULT_MIN_RATIO;
use spalloc::v2::BoardSelector;
use spalloc::{Allocation, Config, JobOptions, WireNumber};
use std::path::PathBuf;
use std::time::Duration;

/// New job or resumed job.
#[derive(Debug, Clone, PartialEq)]
pub enum JobRequest {
    /// `--resume ID`.
    Resume(u64),
    /// A new job.
    Create {
        /// Which boards.
        allocation: Allocation,
        /// The `create_job` keyword arguments.
        options: JobOptions,
    },
}

/// A v2 (REST) service to speak to instead of a legacy server.
#[derive(Debug, Clone, PartialEq)]
pub struct V2Service {
    /// Its URL (`https://host/spalloc/`).
    pub url: String,
    /// Extra certificates to trust.
    pub ca_cert: Option<PathBuf>,
}

/// Everything `spalloc` needs to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The v2 service, when the address is a URL; then `hostname` and
    /// `port` are unused.
    pub v2: Option<V2Service>,
    /// The server's host.
    pub hostname: String,
    /// Its port.
    pub port: u16,
    /// Timeout of each call.
    pub timeout: Option<Duration>,
    /// Wait before reconnecting.
    pub reconnect_delay: Duration,
    /// Give up waiting after this long without the server; `None`: never.
    pub server_timeout: Option<Duration>,
    /// What to ask for.
    pub request: JobRequest,
    /// `--avoid-board`: boards the job must never be given (for the legacy
    /// protocol, also in the request's options as `[x, y, z]`).
    pub avoid_boards: Vec<BoardSelector>,
    /// The `-c` words, if any.
    pub command: Option<Vec<String>>,
    /// `--no-destroy`.
    pub no_destroy: bool,
    /// `--quiet`.
    pub quiet: bool,
    /// `--debug`.
    pub debug: bool,
}

/// `-1` (any negative) means "no limit".
fn non_negative(value: i64) -> Option<u32> {
    u32::try_from(value).ok()
}

/// Seconds as the reference sends them: an integer when whole (as its
/// `--keepalive`, an `int` option, always was), else a float.
fn wire_seconds(seconds: f64) -> WireNumber {
    if seconds.fract() == 0.0 && seconds < 9.0e15 {
        WireNumber::Int(seconds as i64)
    } else {
        WireNumber::Float(seconds)
    }
}

/// Negative numbers and NaN, refused before any job is made, with the
/// reference server's words where it has them.
fn check_numbers(args: &AllocArgs) -> Result<(), String> {
    if args.what.iter().any(|n| *n < 0) {
        return Err(if args.what.len() == 3 {
            "Board coordinates cannot be negative.".to_owned()
        } else {
            "Cannot get negative- or zero-sized allocations.".to_owned()
        });
    }
    if args.min_ratio.is_some_and(|r| r < 0.0) {
        return Err("Aspect ratio cannot be negative.".to_owned());
    }
    let not_a_number = [
        ("--min-ratio", args.min_ratio),
        ("--keepalive", args.keepalive),
        ("--timeout", args.timeout),
        ("--server-timeout", args.server_timeout),
        ("--reconnect-delay", args.reconnect_delay),
    ]
    .into_iter()
    .find(|(_, value)| value.is_some_and(f64::is_nan));
    if let Some((name, _)) = not_a_number {
        return Err(format!("{name} must be a number"));
    }
    Ok(())
}

/// The options that only the legacy protocol has, refused by name on a v2
/// server rather than silently dropped (from the command line, or set away
/// from their defaults in a config file).
fn refuse_legacy_only(args: &AllocArgs, config: &Config) -> Result<(), String> {
    let given = [
        ("--min-ratio", args.min_ratio.is_some()),
        ("--max-dead-links", args.max_dead_links.is_some()),
        ("--require-torus", args.require_torus),
        (
            "min_ratio (config file)",
            config.min_ratio != DEFAULT_MIN_RATIO && args.min_ratio.is_none(),
        ),
        (
            "max_dead_links (config file)",
            config.max_dead_links.is_some() && args.max_dead_links.is_none(),
        ),
        (
            "require_torus (config file)",
            config.require_torus && !args.no_require_torus,
        ),
    ];
    match given.into_iter().find(|(_, set)| *set) {
        Some((option, _)) => Err(format!(
            "{option} is an option of the legacy spalloc protocol only; the v2 server cannot honour it (leave it out, or give --hostname of a legacy server)"
        )),
        None => Ok(()),
    }
}

impl Plan {
    /// Applies config defaults and checks the options; the error is a usage
    /// message (exit 2).
    pub fn from_args(args: &AllocArgs, config: &Config) -> Result<Plan, String> {
        if args.what.len() > 3 {
            return Err("expected either no arguments, one argument, NUM, two arguments, WIDTH HEIGHT, or three arguments, X Y Z".to_owned());
        }
        check_numbers(args)?;
        // As in the other tools: `--url` wins, then `--hostname`, then the
        // config files' `url`, then their `hostname`.
        let url = match (&args.url, &args.hostname) {
            (Some(url), _) => Some(url.clone()),
            (None, Some(_)) => None,
            (None, None) => config.url.clone(),
        };
        let v2 = url.map(|url| V2Service {
            url,
            ca_cert: args.ca_cert.clone().or_else(|| config.ca_cert.clone()),
        });
        let legacy_avoid = match &v2 {
            Some(_) => {
                refuse_legacy_only(args, config)?;
                Vec::new()
            }
            None => super::avoid::legacy_boards(&args.avoid_board)?,
        };
        let owner = args.owner.clone().or_else(|| config.owner.clone());
        // A v2 server knows who its user is: the owner is the log-in.
        if !owner.as_deref().is_some_and(|o| !o.is_empty()) && args.resume.is_none() && v2.is_none()
        {
            return Err("--owner must be specified (typically your email address)".to_owned());
        }
        let hostname = match (
            &v2,
            args.hostname.clone().or_else(|| config.hostname.clone()),
        ) {
            (_, Some(hostname)) => hostname,
            (Some(_), None) => String::new(),
            (None, None) => {
                return Err("--hostname of spalloc server must be specified".to_owned());
            }
        };
        let reconnect_delay = args.reconnect_delay.unwrap_or(config.reconnect_delay);
        if reconnect_delay.is_nan() || reconnect_delay < 0.0 {
            return Err("--reconnect-delay must be zero or more seconds".to_owned());
        }
        if let Some(words) = args.command.as_deref().filter(|w| !w.is_empty()) {
            build_command_line(words, &Substitutions::example()).map_err(|e| e.to_string())?;
        }
        let request = match args.resume {
            Some(job_id) => JobRequest::Resume(job_id),
            None => {
                let keepalive = match args.keepalive {
                    Some(k) if k >= 0.0 => Some(wire_seconds(k)),
                    Some(_) => None,
                    None => config
                        .keepalive
                        .filter(|k| *k >= 0.0)
                        .map(WireNumber::Float),
                };
                let machine = match &args.machine {
                    None => config.machine.clone(),
                    Some(given) => given.clone(),
                };
                let tags = args.tags.clone().unwrap_or_else(|| {
                    config
                        .tags
                        .clone()
                        .unwrap_or_else(|| vec!["default".to_owned()])
                });
                let require_torus = if args.require_torus {
                    true
                } else if args.no_require_torus {
                    false
                } else {
                    config.require_torus
                };
                let what: Vec<u32> = args
                    .what
                    .iter()
                    .map(|n| u32::try_from(*n).map_err(|_| format!("{n} is too large")))
                    .collect::<Result<_, _>>()?;
                JobRequest::Create {
                    allocation: Allocation::from_args(&what).unwrap_or_default(),
                    options: JobOptions {
                        owner: owner.unwrap_or_default(),
                        keepalive,
                        tags: if machine.is_none() { Some(tags) } else { None },
                        machine,
                        min_ratio: args.min_ratio.unwrap_or(config.min_ratio),
                        max_dead_boards: match args.max_dead_boards {
                            Some(n) => non_negative(n),
                            None => config.max_dead_boards,
                        },
                        max_dead_links: match args.max_dead_links {
                            Some(n) => non_negative(n),
                            None => config.max_dead_links,
                        },
                        require_torus,
                        avoid_boards: legacy_avoid,
                    },
                }
            }
        };
        Ok(Plan {
            v2,
            hostname,
            port: args.port.unwrap_or(config.port),
            timeout: seconds_to_timeout(args.timeout.or(config.timeout)),
            reconnect_delay: Duration::from_secs_f64(reconnect_delay),
            server_timeout: seconds_to_timeout(args.server_timeout.or(config.server_timeout)),
            request,
            avoid_boards: args.avoid_board.clone(),
            command: args.command.clone(),
            no_destroy: args.no_destroy,
            quiet: args.quiet,
            debug: args.debug,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn plan(argv: &[&str]) -> Result<Plan, String> {
        let config = Config {
            hostname: Some("server".to_owned()),
            owner: Some("me".to_owned()),
            ..Config::default()
        };
        let args =
            AllocArgs::try_parse_from(std::iter::once("spalloc").chain(argv.iter().copied()))
                .map_err(|e| e.to_string())?;
        Plan::from_args(&args, &config)
    }

    fn create_options(argv: &[&str]) -> (Allocation, JobOptions) {
        match plan(argv).map(|p| p.request) {
            Ok(JobRequest::Create {
                allocation,
                options,
            }) => (allocation, options),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn defaults_come_from_the_config() {
        let (allocation, options) = create_options(&[]);
        assert_eq!(allocation, Allocation::OneBoard);
        assert_eq!(options.owner, "me");
        assert_eq!(options.keepalive, Some(WireNumber::Float(60.0)));
        assert_eq!(options.tags, Some(vec!["default".to_owned()]));
        assert_eq!(options.machine, None);
        assert_eq!(options.max_dead_boards, Some(0));
        assert_eq!(options.max_dead_links, None);
        assert!(!options.require_torus);
    }

    #[test]
    fn options_map_like_the_reference() {
        let (allocation, options) = create_options(&[
            "2",
            "3",
            "-m",
            "m1",
            "--keepalive",
            "-1",
            "--max-dead-boards",
            "-1",
            "--max-dead-links",
            "4",
            "-w",
            "--min-ratio",
            "0.5",
        ]);
        assert_eq!(
            allocation,
            Allocation::Triads {
                width: 2,
                height: 3
            }
        );
        assert_eq!(options.machine.as_deref(), Some("m1"));
        assert_eq!(
            options.tags, None,
            "tags are dropped when a machine is given"
        );
        assert_eq!(options.keepalive, None);
        assert_eq!(options.max_dead_boards, None);
        assert_eq!(options.max_dead_links, Some(4));
        assert!(options.require_torus);
        assert_eq!(options.min_ratio, 0.5);
        let (_, options) = create_options(&["--keepalive", "30", "-t", "a", "b", "-w", "-W"]);
        assert_eq!(options.keepalive, Some(WireNumber::Int(30)));
        assert_eq!(options.tags, Some(vec!["a".to_owned(), "b".to_owned()]));
        assert!(!options.require_torus);
        let (_, options) = create_options(&["-m", "--tags"]);
        assert_eq!((options.machine, options.tags), (None, Some(vec![])));
        let (allocation, _) = create_options(&["3", "4", "0"]);
        assert_eq!(allocation, Allocation::Board { x: 3, y: 4, z: 0 });
    }

    #[test]
    fn negative_numbers_get_the_reference_servers_words() {
        assert_eq!(
            plan(&["-1"]).err().as_deref(),
            Some("Cannot get negative- or zero-sized allocations.")
        );
        assert_eq!(
            plan(&["2", "-1"]).err().as_deref(),
            Some("Cannot get negative- or zero-sized allocations.")
        );
        assert_eq!(
            plan(&["0", "-1", "0"]).err().as_deref(),
            Some("Board coordinates cannot be negative.")
        );
        assert_eq!(
            plan(&["--min-ratio", "-1"]).err().as_deref(),
            Some("Aspect ratio cannot be negative.")
        );
        assert_eq!(
            plan(&["--keepalive", "nan"]).err().as_deref(),
            Some("--keepalive must be a number")
        );
    }

    #[test]
    fn a_url_means_v2_where_legacy_only_options_are_refused_by_name() {
        let v2 = |argv: &[&str]| {
            let mut all = vec!["--url", "http://h/spalloc/"];
            all.extend_from_slice(argv);
            plan(&all)
        };
        let chosen = v2(&["--ca-cert", "ca.pem"]).map(|p| p.v2);
        assert_eq!(
            chosen,
            Ok(Some(V2Service {
                url: "http://h/spalloc/".into(),
                ca_cert: Some(PathBuf::from("ca.pem")),
            }))
        );
        for (argv, name) in [
            (vec!["--min-ratio", "0.5"], "--min-ratio"),
            (vec!["--max-dead-links", "-1"], "--max-dead-links"),
            (vec!["-w"], "--require-torus"),
        ] {
            let e = v2(&argv).unwrap_err();
            assert!(
                e.starts_with(&format!("{name} is an option of the legacy")),
                "{e}"
            );
        }
        // The config file's legacy-only settings are named too.
        let config = Config {
            url: Some("http://h/spalloc/".into()),
            require_torus: true,
            ..Config::default()
        };
        let args = AllocArgs::try_parse_from(["spalloc"]).unwrap();
        let e = Plan::from_args(&args, &config).unwrap_err();
        assert!(e.starts_with("require_torus (config file)"), "{e}");
        // No owner is needed: the server knows who logs in.
        let config = Config {
            url: Some("http://h/spalloc/".into()),
            ..Config::default()
        };
        assert!(Plan::from_args(&args, &config).is_ok_and(|p| p.v2.is_some()));
        // --hostname on the command line wins over the config file's url.
        let args = AllocArgs::try_parse_from(["spalloc", "-H", "legacy", "--owner", "me"]).unwrap();
        assert!(Plan::from_args(&args, &config).is_ok_and(|p| p.v2.is_none()));
    }

    #[test]
    fn the_server_timeout_is_an_hour_unless_told_otherwise() {
        let timeout = |argv: &[&str]| plan(argv).map(|p| p.server_timeout);
        assert_eq!(timeout(&[]), Ok(Some(Duration::from_secs(3600))));
        assert_eq!(
            timeout(&["--server-timeout", "2.5"]),
            Ok(Some(Duration::from_millis(2500)))
        );
        assert_eq!(timeout(&["--server-timeout", "-1"]), Ok(None));
    }

    #[test]
    fn usage_errors() {
        assert!(plan(&["1", "2", "3", "4"]).is_err_and(|e| e.starts_with("expected either")));
        assert!(plan(&["x"]).is_err());
        assert!(matches!(
            plan(&["--keepalive", "1.5"]).map(|p| p.request),
            Ok(JobRequest::Create { options, .. }) if options.keepalive == Some(WireNumber::Float(1.5))
        ));
        assert!(plan(&["--reconnect-delay", "-1"]).is_err());
        assert!(matches!(
            plan(&["--resume", "7"]).map(|p| p.request),
            Ok(JobRequest::Resume(7))
        ));
    }
}
