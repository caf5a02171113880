//! Who made a request, as the API handlers see it.

use super::AuthRejection;
use crate::accounts::Role;

/// The header that carries the CSRF token on changing requests (Spring's
/// default, and what allocserv's service description names).
pub const CSRF_HEADER: &str = "X-CSRF-TOKEN";

/// A session's CSRF token, for the service description's `csrf-header` and
/// `csrf-token`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsrfToken {
    /// The header name ([`CSRF_HEADER`]).
    pub header: &'static str,
    /// The token.
    pub value: String,
}

impl CsrfToken {
    /// The token of a session.
    pub fn new(value: String) -> CsrfToken {
        CsrfToken {
            header: CSRF_HEADER,
            value,
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user name (the owner of the jobs they create).
    pub user: String,
    /// What they may do.
    pub role: Role,
    /// Their groups, sorted.
    pub groups: Vec<String>,
    /// The CSRF token of their session, when the request came with a live
    /// session cookie; `None` for HTTP Basic or a bearer token without a
    /// session, which need no CSRF token.
    pub csrf: Option<CsrfToken>,
}

impl Principal {
    /// Whether they have at least `role`.
    pub fn has_role(&self, role: Role) -> bool {
        self.role >= role
    }

    /// 403 unless they have at least `role`.
    pub fn require(&self, role: Role) -> Result<(), AuthRejection> {
        if self.has_role(role) {
            Ok(())
        } else {
            Err(AuthRejection::NeedsRole(role))
        }
    }

    /// Whether they may see or act on a job owned by `owner`: its owner or
    /// an administrator, as in allocserv.
    pub fn may_access_job_of(&self, owner: &str) -> bool {
        self.role == Role::Admin || self.user == owner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(user: &str, role: Role) -> Principal {
        Principal {
            user: user.into(),
            role,
            groups: vec![],
            csrf: None,
        }
    }

    #[test]
    fn a_user_may_act_on_their_own_jobs_only_and_an_admin_on_all() {
        assert!(principal("alice", Role::User).may_access_job_of("alice"));
        assert!(!principal("alice", Role::User).may_access_job_of("bob"));
        assert!(principal("root", Role::Admin).may_access_job_of("bob"));
    }

    #[test]
    fn a_reader_lacks_the_user_role_and_an_admin_has_it() {
        assert!(principal("r", Role::Reader).require(Role::User).is_err());
        assert!(principal("a", Role::Admin).require(Role::User).is_ok());
    }
}
