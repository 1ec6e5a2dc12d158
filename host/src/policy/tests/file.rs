use std::time::Duration;

use super::{parse, parse_err, ISSUE_EXAMPLE, SECRET_HEX};
use crate::policy::{Access, AgentId, Policy, RateLimit, BUILTIN_SECTIONS};

fn id(policy: &Policy, name: &str) -> AgentId {
    policy.agent_by_name(name).expect("agent exists")
}

fn may(policy: &Policy, agent: &str, section: &str, access: Access) -> bool {
    policy.allows(id(policy, agent), policy.section_id(section), access)
}

#[test]
fn the_issue_example_loads_and_is_enforced() {
    let p = parse(ISSUE_EXAMPLE);
    assert!(p.warnings().is_empty(), "{:?}", p.warnings());
    let operator = id(&p, "operator");
    let reviewer = id(&p, "reviewer");
    assert_eq!(p.agent_for(0, 0, None), operator);
    assert_eq!(p.agent_for(65534, 65534, None), reviewer);
    assert_eq!(p.agent_for(1000, 1000, None), AgentId::DEFAULT);

    use Access::{Read, Write};
    let expect = [
        ("operator", "current", true, true),
        ("operator", "history", true, false),
        ("operator", "shadows", true, true),
        ("operator", "streams", true, false),
        ("operator", "debug", true, false),
        ("operator", "context", true, true),
        ("reviewer", "current", true, false),
        ("reviewer", "history", true, false),
        ("reviewer", "shadows", false, false),
        ("reviewer", "streams", false, false),
        ("reviewer", "debug", false, false),
        ("reviewer", "context", false, false),
        ("reviewer", "some-view", false, false),
        // No [default]: read-only everywhere, custom views included.
        ("default", "current", true, false),
        ("default", "debug", true, false),
        ("default", "some-view", true, false),
    ];
    for (agent, section, read, write) in expect {
        assert_eq!(
            may(&p, agent, section, Read),
            read,
            "{agent} {section} read"
        );
        assert_eq!(
            may(&p, agent, section, Write),
            write,
            "{agent} {section} write"
        );
    }
}

#[test]
fn an_empty_file_is_read_only_for_everyone() {
    let p = parse("");
    assert_eq!(p.agents().len(), 1);
    assert_eq!(p.agent_for(0, 0, None), AgentId::DEFAULT);
    assert_eq!(p.agent(AgentId::DEFAULT).name(), "default");
    for section in BUILTIN_SECTIONS {
        let s = p.section_id(section);
        assert!(p.allows(AgentId::DEFAULT, s, Access::Read));
        assert!(!p.allows(AgentId::DEFAULT, s, Access::Write));
    }
    assert!(!p.has_secrets());
    assert_eq!(p.overall_limits(), RateLimit::default());
    assert_eq!(p.auth_settings().binding_ttl, Duration::from_secs(3600));
    assert_eq!(p.auth_settings().challenge_ttl, Duration::from_secs(60));
}

#[test]
fn root_is_not_special_unless_listed() {
    let p = parse(
        r#"
        [default]
        permissions = []
        [[agents]]
        name = "dev"
        uids = [1000]
        permissions = ["*:write"]
        "#,
    );
    let current = p.section_id("current");
    assert_eq!(p.agent_for(0, 0, None), AgentId::DEFAULT);
    assert!(!p.allows(AgentId::DEFAULT, current, Access::Read));
    assert!(p.allows(p.agent_for(1000, 1000, None), current, Access::Write));
}

#[test]
fn default_table_sets_permissions_and_limits() {
    let p = parse(
        r#"
        [default]
        permissions = ["current:read"]
        ops_per_sec = 10
        "#,
    );
    assert!(may(&p, "default", "current", Access::Read));
    assert!(!may(&p, "default", "history", Access::Read));
    assert_eq!(
        p.agent(AgentId::DEFAULT).limits(),
        RateLimit {
            ops_per_sec: 10,
            bytes_per_sec: 0
        }
    );
    // A [default] without permissions is still read-only everywhere.
    let p = parse("[default]\nbytes_per_sec = 5\n");
    assert!(may(&p, "default", "history", Access::Read));
    assert!(!may(&p, "default", "history", Access::Write));
}

#[test]
fn write_implies_read_and_star_covers_every_section() {
    let p = parse(
        r#"
        [[agents]]
        name = "annotator"
        uids = [1]
        permissions = ["shadows:write"]
        [[agents]]
        name = "all"
        uids = [2]
        permissions = ["*:write"]
        [[agents]]
        name = "mixed"
        uids = [3]
        permissions = ["*:read", "current:write"]
        "#,
    );
    assert!(may(&p, "annotator", "shadows", Access::Read));
    assert!(may(&p, "annotator", "shadows", Access::Write));
    assert!(!may(&p, "annotator", "current", Access::Read));
    for section in ["current", "debug", "history", "a-view-never-named"] {
        assert!(may(&p, "all", section, Access::Write), "{section}");
        assert!(may(&p, "mixed", section, Access::Read), "{section}");
    }
    assert!(may(&p, "mixed", "current", Access::Write));
    assert!(!may(&p, "mixed", "shadows", Access::Write));
}

#[test]
fn custom_sections_get_their_own_ids_and_a_warning() {
    let p = parse(
        r#"
        [[agents]]
        name = "a"
        uids = [1]
        permissions = ["notes:write", "curent:read"]
        [[agents]]
        name = "b"
        uids = [2]
        permissions = ["*:write"]
        "#,
    );
    assert!(may(&p, "a", "notes", Access::Write));
    assert!(may(&p, "a", "curent", Access::Read));
    assert!(!may(&p, "a", "current", Access::Read));
    assert!(!may(&p, "a", "other", Access::Read));
    // A wildcard covers custom sections named by other agents.
    assert!(may(&p, "b", "notes", Access::Write));
    assert_ne!(p.section_id("notes"), p.section_id("curent"));
    assert_eq!(p.section_id("x"), p.section_id("y"));

    let warnings = p.warnings().join("\n");
    assert_eq!(p.warnings().len(), 2, "{warnings}");
    assert!(
        warnings.contains(r#"agent "a": section "notes" is not built in"#),
        "{warnings}"
    );
    assert!(
        warnings.contains(r#"did you mean "current"?"#),
        "{warnings}"
    );
}

#[test]
fn matching_order_is_binding_then_uid_then_gid_then_default() {
    let p = parse(
        r#"
        [[agents]]
        name = "by-uid"
        uids = [10]
        [[agents]]
        name = "by-gid"
        gids = [10, 20]
        [[agents]]
        name = "token"
        secret = "000102030405060708090a0b0c0d0e0f"
        "#,
    );
    let (uid, gid, token) = (id(&p, "by-uid"), id(&p, "by-gid"), id(&p, "token"));
    assert_eq!(p.agent_for(10, 20, None), uid);
    assert_eq!(p.agent_for(11, 10, None), gid);
    assert_eq!(p.agent_for(11, 11, None), AgentId::DEFAULT);
    assert_eq!(p.agent_for(10, 20, Some(token)), token);
    assert!(p.has_secrets());
    assert!(p.agent(token).has_secret());
    assert!(!p.agent(uid).has_secret());
}

#[test]
fn agents_are_listed_default_first() {
    let p = parse(ISSUE_EXAMPLE);
    let names: Vec<_> = p.agents().map(|(_, a)| a.name().to_owned()).collect();
    assert_eq!(names, ["default", "operator", "reviewer"]);
    for (i, (agent, _)) in p.agents().enumerate() {
        assert_eq!(agent.index(), i);
    }
    assert_eq!(p.agent_by_name("default"), Some(AgentId::DEFAULT));
    assert_eq!(p.agent_by_name("nobody"), None);
    assert_eq!(p.origin(), "policy.toml");
}

#[test]
fn limits_and_auth_settings_are_read() {
    let p = parse(
        r#"
        [limits]
        ops_per_sec = 1000
        bytes_per_sec = 1048576
        [auth]
        binding_ttl_secs = 60
        challenge_ttl_secs = 5
        [[agents]]
        name = "slow"
        uids = [1]
        ops_per_sec = 3
        bytes_per_sec = 0
        "#,
    );
    assert_eq!(
        p.overall_limits(),
        RateLimit {
            ops_per_sec: 1000,
            bytes_per_sec: 1 << 20
        }
    );
    let slow = p.agent(id(&p, "slow")).limits();
    assert_eq!(slow.ops_per_sec, 3);
    assert!(!slow.is_unlimited());
    assert!(RateLimit::default().is_unlimited());
    assert_eq!(p.auth_settings().binding_ttl, Duration::from_secs(60));
    assert_eq!(p.auth_settings().challenge_ttl, Duration::from_secs(5));
}

#[test]
fn errors_name_the_file_the_agent_and_the_value() {
    let cases = [
        (
            r#"[[agents]]
               name = "reviewer"
               permissions = ["current:reed"]"#,
            r#"policy.toml: agent "reviewer": unknown access "reed" in permission "current:reed" (sections: current"#,
        ),
        (
            r#"[[agents]]
               name = "reviewer"
               permissions = ["Current:read"]"#,
            r#"policy.toml: agent "reviewer": unknown section "Current" in permission "Current:read""#,
        ),
        (
            r#"[[agents]]
               name = "r"
               permissions = ["current"]"#,
            r#"agent "r": permission "current" is not SECTION:ACCESS"#,
        ),
        (
            r#"[[agents]]
               name = "r"
               permissions = [":read"]"#,
            r#"unknown section "" in permission ":read""#,
        ),
        (
            r#"[default]
               permissions = ["*:execute"]"#,
            r#"policy.toml: [default]: unknown access "execute""#,
        ),
        (
            "[[agents]]\nname = \"a\"\nuids = [5]\n[[agents]]\nname = \"b\"\nuids = [7, 5]\n",
            r#"policy.toml: agent "b": uid 5 is already listed by agent "a""#,
        ),
        (
            "[[agents]]\nname = \"a\"\ngids = [5]\n[[agents]]\nname = \"b\"\ngids = [5]\n",
            r#"agent "b": gid 5 is already listed by agent "a""#,
        ),
        (
            "[[agents]]\nname = \"a\"\n[[agents]]\nname = \"a\"\n",
            r#"policy.toml: agent "a" is defined twice"#,
        ),
        (
            "[[agents]]\nname = \"a b\"\n",
            r#"agent name "a b" is not 1 to 64 characters"#,
        ),
        ("[[agents]]\nname = \"\"\n", r#"agent name """#),
        (
            "[[agents]]\nname = \"default\"\n",
            r#"agent name "default" is reserved"#,
        ),
        (
            "[auth]\nbinding_ttl_secs = 0\n",
            "policy.toml: [auth]: binding_ttl_secs = 0: must be 1 to",
        ),
        (
            "[[agents]]\nname = \"a\"\nuid = [1]\n",
            "policy.toml:3:1: unknown field `uid`",
        ),
        (
            "[[agents]]\nuids = [1]\n",
            "policy.toml:1:1: missing field `name`",
        ),
        (
            "[limits]\nops = 3\n",
            "policy.toml:2:1: unknown field `ops`",
        ),
        ("[defaults]\n", "unknown field `defaults`"),
        (
            "[limits]\nbytes_per_sec = 17179869185\n",
            "policy.toml: [limits]: bytes_per_sec = 17179869185 is above the highest limit",
        ),
        (
            "[[agents]]\nname = \"a\"\nops_per_sec = 99999999999\n",
            r#"agent "a": ops_per_sec = 99999999999 is above"#,
        ),
        (
            "[default]\nops_per_sec = 99999999999\n",
            "[default]: ops_per_sec = 99999999999 is above",
        ),
        (
            "[[agents]]\nname = \"a\"\nuids = [-1]\n",
            "policy.toml:3:9:",
        ),
    ];
    for (text, expected) in cases {
        let message = parse_err(text);
        assert!(
            message.contains(expected),
            "expected {expected:?} in:\n{message}"
        );
    }
}

#[test]
fn a_uid_listed_twice_by_one_agent_is_fine() {
    let p = parse("[[agents]]\nname = \"a\"\nuids = [5, 5]\ngids = [5]\n");
    assert_eq!(p.agent_for(5, 0, None), id(&p, "a"));
}

#[test]
fn too_many_custom_sections_are_refused() {
    let permissions: Vec<String> = (0..58).map(|i| format!("\"v{i}:read\"")).collect();
    let text = format!(
        "[[agents]]\nname = \"a\"\nuids = [1]\npermissions = [{}]\n",
        permissions.join(", ")
    );
    assert!(parse_err(&text).contains("at most 57 sections besides the built-in ones"));
    let text = format!(
        "[[agents]]\nname = \"a\"\nuids = [1]\npermissions = [{}]\n",
        permissions[..57].join(", ")
    );
    let p = parse(&text);
    assert!(may(&p, "a", "v56", Access::Read));
    assert!(!may(&p, "a", "v57", Access::Read));
}

#[test]
fn secrets_must_be_long_hex_and_never_appear_in_messages() {
    let p = parse(&format!(
        "[[agents]]\nname = \"a\"\nsecret = \"{}\"\n",
        SECRET_HEX.to_uppercase()
    ));
    let secret = p.agent(id(&p, "a")).secret().expect("secret");
    assert_eq!(secret.bytes(), (0u8..32).collect::<Vec<_>>());
    assert!(!format!("{p:?}").contains(SECRET_HEX));

    let short = "00112233445566778899aabbccddee"; // 15 bytes
    let not_hex = "zz0102030405060708090a0b0c0d0e0f10";
    let odd = "0001020304050607080910111213141516f";
    for (value, expected) in [
        (short, "secret is 15 bytes; at least 16 are required"),
        (not_hex, "secret is not an even number of hex digits"),
        (odd, "secret is not an even number of hex digits"),
    ] {
        let message = parse_err(&format!("[[agents]]\nname = \"a\"\nsecret = \"{value}\"\n"));
        assert!(message.contains(expected), "{message}");
        assert!(message.contains(r#"agent "a""#), "{message}");
        assert!(!message.contains(value), "{message}");
    }
    // A syntax error on the secret's line does not print that line.
    let message = parse_err(&format!(
        "[[agents]]\nname = \"a\"\nsecret = \"{SECRET_HEX}\n"
    ));
    assert!(message.starts_with("policy.toml:3:"), "{message}");
    assert!(!message.contains(SECRET_HEX), "{message}");

    let message = parse_err(&format!(
        "[[agents]]\nname = \"a\"\nsecret = \"{SECRET_HEX}\"\nsecret_file = \"s\"\n"
    ));
    assert!(
        message.contains("either secret or secret_file"),
        "{message}"
    );
}

#[test]
fn secret_files_are_hex_relative_to_the_policy_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("a.key"), format!("  {SECRET_HEX}\n")).expect("write");
    std::fs::write(dir.path().join("short.key"), "0011\n").expect("write");
    let policy_path = dir.path().join("policy.toml");
    let text = "[[agents]]\nname = \"a\"\nsecret_file = \"a.key\"\n";
    std::fs::write(&policy_path, text).expect("write");

    let p = Policy::load(&policy_path).expect("load");
    let a = p.agent(id(&p, "a"));
    assert_eq!(a.secret().expect("secret").bytes().len(), 32);

    // parse() resolves against the directory of its origin, as load() does.
    let origin = policy_path.to_string_lossy();
    assert!(Policy::parse(text, &origin).is_ok());

    let absolute = dir.path().join("a.key");
    let text = format!(
        "[[agents]]\nname = \"a\"\nsecret_file = \"{}\"\n",
        absolute.display()
    );
    assert!(Policy::parse(&text, "elsewhere/policy.toml").is_ok());

    let message = format!(
        "{:#}",
        Policy::parse(
            "[[agents]]\nname = \"a\"\nsecret_file = \"missing.key\"\n",
            &origin
        )
        .expect_err("missing file")
    );
    assert!(
        message.contains("agent \"a\": cannot read secret_file"),
        "{message}"
    );
    assert!(message.contains("missing.key"), "{message}");

    let message = format!(
        "{:#}",
        Policy::parse(
            "[[agents]]\nname = \"a\"\nsecret_file = \"short.key\"\n",
            &origin
        )
        .expect_err("short secret")
    );
    assert!(message.contains("short.key is 2 bytes"), "{message}");
}

#[test]
fn load_names_a_missing_file() {
    let message = format!(
        "{:#}",
        Policy::load(std::path::Path::new("/nonexistent/policy.toml")).expect_err("missing")
    );
    assert!(
        message.contains("cannot read policy file /nonexistent/policy.toml"),
        "{message}"
    );
}

#[test]
fn unreachable_agents_are_warned_about() {
    let p = parse("[[agents]]\nname = \"ghost\"\npermissions = [\"*:write\"]\n");
    assert_eq!(p.warnings().len(), 1);
    assert!(p.warnings()[0].contains(r#"agent "ghost" has no uids, no gids and no secret"#));
}

#[test]
fn a_foreign_agent_id_is_allowed_nothing() {
    let big = parse(ISSUE_EXAMPLE);
    let small = parse("[default]\npermissions = [\"*:write\"]\n");
    let reviewer = id(&big, "reviewer");
    assert!(!small.allows(reviewer, small.section_id("current"), Access::Read));
}

#[test]
fn unrestricted_allows_everything_to_everyone() {
    let p = Policy::unrestricted();
    assert_eq!(p.agent_for(1234, 1234, None), AgentId::DEFAULT);
    for section in ["current", "shadows", "whatever"] {
        assert!(p.allows(AgentId::DEFAULT, p.section_id(section), Access::Write));
    }
    assert!(!p.has_secrets());
    assert!(p.warnings().is_empty());
}
