//! The HTTP front end (allocserv's REST API, "v2").
//!
//! * [`auth`]: log-in, sessions, CSRF and API tokens over HTTP, in front of
//!   [`crate::accounts`].

pub mod auth;
