//! HTTPS: the `[http]` listener serves TLS from PEM files named in the
//! configuration (a certificate made here with rcgen, never downloaded),
//! and the links it returns are `https` ones.

mod http_support;

use http_support::{config, password, start, API};
use std::sync::Arc;

/// A fresh directory for this test's files.
fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("spalloc-http-tls-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn the_api_is_served_over_tls_from_pem_files_with_a_secure_session_cookie() {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let dir = temp_dir("ok");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).expect("write cert");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("write key");
    let server = start(config(&format!(
        "tls_cert = {:?}\ntls_key = {:?}\n",
        cert.display().to_string(),
        key.display().to_string()
    )));
    let port = server.http_addr().expect("http").port();

    let mut roots = rustls::RootCertStore::empty();
    roots.add(certified.cert.der().clone()).expect("root");
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocols")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let agent = ureq::AgentBuilder::new().tls_config(Arc::new(tls)).build();
    use base64::Engine as _;
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("alice:{}", password("alice")));
    let body = agent
        .get(&format!("https://localhost:{port}{API}/"))
        .set("Authorization", &format!("Basic {credentials}"))
        .call()
        .expect("HTTPS answer")
        .into_string()
        .expect("body");
    let description: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(
        description["jobs-ref"],
        format!("https://localhost:{port}/spalloc/srv/spalloc/jobs")
    );
    // The session cookie given over TLS is marked Secure.
    let form = agent
        .get(&format!(
            "https://localhost:{port}/spalloc/system/login.html"
        ))
        .call()
        .expect("HTTPS answer");
    let cookie = form.header("Set-Cookie").expect("a session cookie");
    assert!(cookie.starts_with("JSESSIONID="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.ends_with("; Secure"),
        "{cookie}"
    );
    // Plain HTTP to the TLS port gets nowhere.
    let plain = ureq::get(&format!("http://127.0.0.1:{port}{API}/")).call();
    assert!(plain.is_err());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_missing_or_bad_tls_file_stops_the_server_from_starting_with_a_message() {
    let dir = temp_dir("bad");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, "not a certificate").expect("write");
    let keys = format!(
        "tls_cert = {:?}\ntls_key = {:?}\n",
        cert.display().to_string(),
        key.display().to_string()
    );
    let Err(e) = spalloc_server::RunningServer::start(config(&keys)) else {
        panic!("started with a bad certificate");
    };
    assert!(e.to_string().contains("cannot load TLS"), "{e}");
    let _ = std::fs::remove_dir_all(dir);
}
