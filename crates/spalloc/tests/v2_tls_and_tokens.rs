//! HTTPS with a private CA certificate (made here with rcgen), a
//! certificate that does not verify, and personal API tokens made, used
//! and revoked through the library.

mod v2_support;

use spalloc::v2::credentials::{read_token_file, token_file_note, write_token_file};
use spalloc::v2::{Client, CreateJob, Credentials};
use spalloc::Error;
use v2_support::{password, TempDir};

#[test]
fn https_works_with_the_servers_ca_certificate_and_fails_clearly_without() {
    let dir = TempDir::new("tls");
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let (cert, key) = (dir.0.join("cert.pem"), dir.0.join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let keys = format!(
        "tls_cert = {:?}\ntls_key = {:?}\n",
        cert.display().to_string(),
        key.display().to_string()
    );
    let server = v2_support::start(v2_support::config_with(0, None, &keys));
    let url = format!(
        "https://localhost:{}/spalloc/",
        server.http_addr().unwrap().port()
    );
    let alice = || Credentials::password("alice", password("alice"));

    let trusted = Client::builder(&url)
        .credentials(alice())
        .ca_cert(&cert)
        .build()
        .unwrap();
    let job = trusted
        .create_job(&CreateJob::one_board())
        .expect("create over HTTPS");
    job.wait_until_ready(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    job.destroy(None).unwrap();

    let untrusted = Client::builder(&url).credentials(alice()).build().unwrap();
    let e = untrusted.machines().unwrap_err();
    assert!(matches!(e, Error::Transport { .. }), "{e:?}");
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");
}

#[test]
fn a_token_made_after_a_password_log_in_works_until_revoked() {
    let server = v2_support::server();
    let url = v2_support::url(&server);
    let by_password = Client::builder(&url)
        .credentials(Credentials::password("alice", password("alice")))
        .build()
        .unwrap();
    let new = by_password.create_token("laptop", Some(30)).unwrap();
    assert_eq!(new.info.name, "laptop");
    assert!(new.info.expires.is_some());

    let dir = TempDir::new("token");
    let file = dir.0.join("spalloc-token");
    write_token_file(&file, &new.token, &[("id", new.info.id.to_string())]).unwrap();
    let by_token = Client::builder(&url)
        .credentials(Credentials::Token(read_token_file(&file).unwrap()))
        .build()
        .unwrap();
    assert_eq!(by_token.machines().unwrap().len(), 1);
    // A token cannot mint more tokens.
    assert!(by_token.create_token("more", None).is_err());
    assert!(by_password
        .tokens()
        .unwrap()
        .iter()
        .any(|t| t.id == new.info.id));

    let id: i64 = token_file_note(&file, "id").unwrap().parse().unwrap();
    by_token.revoke_token(id).unwrap();
    let e = by_token.machines().unwrap_err();
    assert!(matches!(e, Error::Unauthorized { .. }), "{e:?}");
}
