use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{parse, SECRET_HEX};
use crate::policy::auth::PROTOCOL;
use crate::policy::{response_mac, AuthError, Authenticator, SessionKey};

/// Another valid secret, for "the wrong key" cases.
const OTHER_SECRET_HEX: &str = "ffeeddccbbaa99887766554433221100";

fn authenticator() -> Authenticator {
    let policy = parse(&format!(
        r#"
        [auth]
        binding_ttl_secs = 100
        challenge_ttl_secs = 10
        [[agents]]
        name = "builder"
        secret = "{SECRET_HEX}"
        permissions = ["current:write"]
        [[agents]]
        name = "other"
        secret = "{OTHER_SECRET_HEX}"
        [[agents]]
        name = "plain"
        uids = [1000]
        "#
    ));
    Authenticator::new(Arc::new(policy))
}

fn key(sid: u32) -> SessionKey {
    SessionKey {
        sid,
        leader_start: 4242,
        uid: 1000,
    }
}

fn secret() -> Vec<u8> {
    hex::decode(SECRET_HEX).expect("hex")
}

fn nonce_of(challenge: &str) -> &str {
    let nonce = challenge
        .strip_prefix(PROTOCOL)
        .and_then(|rest| rest.strip_prefix(' '))
        .and_then(|rest| rest.strip_suffix('\n'))
        .expect("challenge format");
    assert_eq!(nonce.len(), 64);
    assert!(nonce
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    nonce
}

/// What a client writes back for `challenge`.
fn answer(secret: &[u8], challenge: &str, agent: &str) -> String {
    format!(
        "{agent} {}\n",
        response_mac(secret, nonce_of(challenge), agent)
    )
}

#[test]
fn response_mac_matches_python_hmac_and_openssl() {
    // python3: hmac.new(bytes(range(32)), b"lighthouse-fs-auth v1\n" + b"ab"*32 + b"\n"
    //                   + b"operator", "sha256").hexdigest(); `openssl dgst -sha256 -mac
    // HMAC -macopt hexkey:...` prints the same.
    assert_eq!(
        response_mac(&secret(), &"ab".repeat(32), "operator"),
        "eebb1d28e2920b8eb11f0a41b4367b443cd92fa8d193060c1c87d4fbdda08e9f"
    );
}

#[test]
fn a_right_answer_binds_the_session() {
    let auth = authenticator();
    let t0 = Instant::now();
    assert!(!auth.has_bindings());
    assert_eq!(auth.bound(key(1), t0), None);

    let challenge = auth.challenge(key(1), t0).expect("challenge");
    let builder = auth.policy().agent_by_name("builder").expect("agent");
    let line = answer(&secret(), &challenge, "builder");
    assert_eq!(auth.respond(key(1), line.as_bytes(), t0), Ok(builder));
    assert!(auth.has_bindings());
    assert_eq!(
        auth.bound(key(1), t0 + Duration::from_secs(99)),
        Some(builder)
    );
    // The binding wins over the uid mapping.
    assert_eq!(
        auth.policy().agent_for(1000, 1000, auth.bound(key(1), t0)),
        builder
    );

    // Not another session, not the same sid under another uid or another leader.
    assert_eq!(auth.bound(key(2), t0), None);
    let mut other_uid = key(1);
    other_uid.uid = 0;
    assert_eq!(auth.bound(other_uid, t0), None);
    let mut reused_sid = key(1);
    reused_sid.leader_start += 1;
    assert_eq!(auth.bound(reused_sid, t0), None);

    // Expires after binding_ttl.
    assert_eq!(auth.bound(key(1), t0 + Duration::from_secs(100)), None);
    auth.expire(t0 + Duration::from_secs(100));
    assert!(!auth.has_bindings());
}

#[test]
fn a_challenge_is_used_once() {
    let auth = authenticator();
    let t0 = Instant::now();
    let challenge = auth.challenge(key(1), t0).expect("challenge");
    let line = answer(&secret(), &challenge, "builder");
    assert!(auth.respond(key(1), line.as_bytes(), t0).is_ok());
    assert_eq!(
        auth.respond(key(1), line.as_bytes(), t0),
        Err(AuthError::NoChallenge)
    );
}

#[test]
fn a_challenge_only_serves_the_session_it_was_issued_to() {
    let auth = authenticator();
    let t0 = Instant::now();
    let challenge = auth.challenge(key(1), t0).expect("challenge");
    let line = answer(&secret(), &challenge, "builder");
    assert_eq!(
        auth.respond(key(2), line.as_bytes(), t0),
        Err(AuthError::NoChallenge)
    );
    // ...and the other session's attempt did not use it up.
    assert!(auth.respond(key(1), line.as_bytes(), t0).is_ok());
    assert_eq!(auth.bound(key(2), t0), None);
}

#[test]
fn challenges_expire() {
    let auth = authenticator();
    let t0 = Instant::now();
    let challenge = auth.challenge(key(1), t0).expect("challenge");
    let line = answer(&secret(), &challenge, "builder");
    assert_eq!(
        auth.respond(key(1), line.as_bytes(), t0 + Duration::from_secs(10)),
        Err(AuthError::NoChallenge)
    );
    let challenge = auth.challenge(key(1), t0).expect("challenge");
    let line = answer(&secret(), &challenge, "builder");
    assert!(auth
        .respond(key(1), line.as_bytes(), t0 + Duration::from_secs(9))
        .is_ok());
}

#[test]
fn challenges_are_random() {
    let auth = authenticator();
    let t0 = Instant::now();
    let a = auth.challenge(key(1), t0).expect("challenge");
    let b = auth.challenge(key(1), t0).expect("challenge");
    assert_ne!(nonce_of(&a), nonce_of(&b));
}

#[test]
fn a_wrong_mac_fails_and_uses_up_the_sessions_challenges() {
    let auth = authenticator();
    let t0 = Instant::now();
    let other_secret = hex::decode(OTHER_SECRET_HEX).expect("hex");
    let challenge = auth.challenge(key(1), t0).expect("challenge");
    let _second = auth.challenge(key(1), t0).expect("challenge");
    let unrelated = auth.challenge(key(2), t0).expect("challenge");

    // The right MAC under the wrong key, and the right key for another agent's name.
    let wrong_key = answer(&other_secret, &challenge, "builder");
    let err = auth
        .respond(key(1), wrong_key.as_bytes(), t0)
        .expect_err("wrong key");
    assert_eq!(
        err,
        AuthError::BadMac {
            agent: "builder".into()
        }
    );
    assert_eq!(err.errno(), libc::EACCES);
    let message = err.to_string();
    assert!(!message.contains(&wrong_key.trim()[8..]), "{message}");
    assert!(!message.contains(SECRET_HEX), "{message}");

    // Both of session 1's challenges are gone, even for a right answer...
    let right = answer(&secret(), &challenge, "builder");
    assert_eq!(
        auth.respond(key(1), right.as_bytes(), t0),
        Err(AuthError::NoChallenge)
    );
    // ...while session 2's is untouched.
    let right = answer(&secret(), &unrelated, "builder");
    assert!(auth.respond(key(2), right.as_bytes(), t0).is_ok());
    assert_eq!(auth.bound(key(1), t0), None);
}

#[test]
fn a_mac_for_another_agent_name_does_not_pass() {
    let auth = authenticator();
    let t0 = Instant::now();
    let challenge = auth.challenge(key(1), t0).expect("challenge");
    // MAC computed for "builder", presented as "other" (which has another secret) and
    // vice versa: the agent name is part of the message.
    let mac = response_mac(&secret(), nonce_of(&challenge), "builder");
    let line = format!("other {mac}\n");
    assert!(matches!(
        auth.respond(key(1), line.as_bytes(), t0),
        Err(AuthError::BadMac { .. })
    ));
}

#[test]
fn unknown_agents_and_agents_without_secret_are_refused() {
    let auth = authenticator();
    let t0 = Instant::now();
    let challenge = auth.challenge(key(1), t0).expect("challenge");
    let mac = response_mac(&secret(), nonce_of(&challenge), "nobody");
    let err = auth
        .respond(key(1), format!("nobody {mac}\n").as_bytes(), t0)
        .expect_err("unknown");
    assert_eq!(err, AuthError::UnknownAgent);
    assert!(!err.to_string().contains("nobody"));

    for agent in ["plain", "default"] {
        let err = auth
            .respond(key(1), format!("{agent} {mac}\n").as_bytes(), t0)
            .expect_err("no secret");
        assert_eq!(
            err,
            AuthError::NoSecret {
                agent: agent.into()
            }
        );
        assert!(err.to_string().contains(agent));
    }
    // None of these used the challenge up.
    let line = answer(&secret(), &challenge, "builder");
    assert!(auth.respond(key(1), line.as_bytes(), t0).is_ok());
}

#[test]
fn malformed_lines_are_refused_without_echo() {
    let auth = authenticator();
    let t0 = Instant::now();
    let challenge = auth.challenge(key(1), t0).expect("challenge");
    let good = answer(&secret(), &challenge, "builder");
    let mac = good.trim_end().split(' ').nth(1).expect("mac").to_owned();
    let long = format!("builder {mac}{}\n", " ".repeat(300));
    let cases: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"\n".to_vec(),
        b"builder\n".to_vec(),
        format!("builder  {mac}\n").into_bytes(),
        format!("builder {mac} extra\n").into_bytes(),
        format!("builder {}\n", &mac[..62]).into_bytes(),
        format!("builder {mac}00\n").into_bytes(),
        format!("builder {}zz\n", &mac[..62]).into_bytes(),
        format!(" {mac}\n").into_bytes(),
        format!("builder {mac}\n\n").into_bytes(),
        format!("builder {mac}\r\n").into_bytes(),
        long.into_bytes(),
        [b"builder ".as_slice(), &[0xff, 0xfe], b"\n"].concat(),
    ];
    for line in cases {
        let err = auth.respond(key(1), &line, t0).expect_err("malformed");
        assert_eq!(
            err,
            AuthError::Malformed,
            "{:?}",
            String::from_utf8_lossy(&line)
        );
        assert_eq!(err.errno(), libc::EINVAL);
        assert!(!err.to_string().contains(&mac));
    }
    // Malformed lines do not use the challenge up; no trailing newline is fine too.
    assert!(auth.respond(key(1), good.trim_end().as_bytes(), t0).is_ok());
}

#[test]
fn uppercase_hex_macs_are_accepted() {
    let auth = authenticator();
    let t0 = Instant::now();
    let challenge = auth.challenge(key(1), t0).expect("challenge");
    let line = answer(&secret(), &challenge, "builder")
        .to_uppercase()
        .replace("BUILDER", "builder");
    assert!(auth.respond(key(1), line.as_bytes(), t0).is_ok());
}

#[test]
fn a_session_keeps_its_four_newest_challenges() {
    let auth = authenticator();
    let t0 = Instant::now();
    let challenges: Vec<String> = (0..5)
        .map(|_| auth.challenge(key(1), t0).expect("challenge"))
        .collect();
    // The oldest was dropped: answering it fails (and uses up the rest).
    let line = answer(&secret(), &challenges[0], "builder");
    assert!(matches!(
        auth.respond(key(1), line.as_bytes(), t0),
        Err(AuthError::BadMac { .. })
    ));

    let challenges: Vec<String> = (0..5)
        .map(|_| auth.challenge(key(1), t0).expect("challenge"))
        .collect();
    let line = answer(&secret(), &challenges[4], "builder");
    assert!(auth.respond(key(1), line.as_bytes(), t0).is_ok());
    let line = answer(&secret(), &challenges[1], "builder");
    assert!(auth.respond(key(1), line.as_bytes(), t0).is_ok());
}

#[test]
fn outstanding_challenges_are_bounded_overall() {
    let auth = authenticator();
    let t0 = Instant::now();
    let first = auth.challenge(key(0), t0).expect("challenge");
    for sid in 1..=1024 {
        auth.challenge(key(sid), t0).expect("challenge");
    }
    let line = answer(&secret(), &first, "builder");
    assert_eq!(
        auth.respond(key(0), line.as_bytes(), t0),
        Err(AuthError::NoChallenge)
    );
}

#[test]
fn rebinding_and_unbinding() {
    let auth = authenticator();
    let t0 = Instant::now();
    let builder = auth.policy().agent_by_name("builder").expect("agent");
    let other = auth.policy().agent_by_name("other").expect("agent");
    let other_secret = hex::decode(OTHER_SECRET_HEX).expect("hex");

    let c = auth.challenge(key(1), t0).expect("challenge");
    auth.respond(key(1), answer(&secret(), &c, "builder").as_bytes(), t0)
        .expect("bind");
    let c = auth.challenge(key(2), t0).expect("challenge");
    auth.respond(key(2), answer(&secret(), &c, "builder").as_bytes(), t0)
        .expect("bind");

    // Answering again later moves the binding to another agent and renews it.
    let t1 = t0 + Duration::from_secs(50);
    let c = auth.challenge(key(1), t1).expect("challenge");
    assert_eq!(
        auth.respond(key(1), answer(&other_secret, &c, "other").as_bytes(), t1),
        Ok(other)
    );
    assert_eq!(
        auth.bound(key(1), t0 + Duration::from_secs(120)),
        Some(other)
    );
    assert_eq!(
        auth.bound(key(2), t0 + Duration::from_secs(50)),
        Some(builder)
    );

    assert!(auth.unbind(key(1)));
    assert!(!auth.unbind(key(1)));
    assert_eq!(auth.bound(key(1), t1), None);
    assert!(auth.has_bindings());
    assert!(auth.unbind(key(2)));
    assert!(!auth.has_bindings());
    assert_eq!(auth.bound(key(2), t1), None);
}

#[test]
fn expire_keeps_live_bindings() {
    let auth = authenticator();
    let t0 = Instant::now();
    let c = auth.challenge(key(1), t0).expect("challenge");
    auth.respond(key(1), answer(&secret(), &c, "builder").as_bytes(), t0)
        .expect("bind");
    auth.expire(t0 + Duration::from_secs(99));
    assert!(auth.has_bindings());
    assert_eq!(
        auth.bound(key(1), t0 + Duration::from_secs(99)),
        auth.policy().agent_by_name("builder")
    );
}

#[test]
fn authenticator_is_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Authenticator>();

    let auth = Arc::new(authenticator());
    let t0 = Instant::now();
    let threads: Vec<_> = (0..4u32)
        .map(|sid| {
            let auth = Arc::clone(&auth);
            std::thread::spawn(move || {
                for _ in 0..50 {
                    let c = auth.challenge(key(sid), t0).expect("challenge");
                    let line = answer(&secret(), &c, "builder");
                    auth.respond(key(sid), line.as_bytes(), t0).expect("bind");
                    assert!(auth.bound(key(sid), t0).is_some());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    for sid in 0..4 {
        assert!(auth.bound(key(sid), t0).is_some());
    }
}
