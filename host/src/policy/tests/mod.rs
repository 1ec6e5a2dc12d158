//! Unit tests of the policy module, one file per submodule.

mod auth;
mod file;
mod proc;
mod rate;

use super::Policy;

/// The example of issue 7, which must load as it is.
pub(super) const ISSUE_EXAMPLE: &str = r#"
[[agents]]
name = "operator"
uids = [0]
permissions = ["current:read", "current:write", "history:read", "shadows:write",
               "streams:read", "debug:read", "context:write"]
[[agents]]
name = "reviewer"
uids = [65534]
permissions = ["current:read", "history:read"]
"#;

/// 32 bytes 00 01 .. 1f.
pub(super) const SECRET_HEX: &str =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

pub(super) fn parse(text: &str) -> Policy {
    match Policy::parse(text, "policy.toml") {
        Ok(policy) => policy,
        Err(e) => panic!("policy should parse: {e:#}"),
    }
}

/// The message of a parse that must fail.
pub(super) fn parse_err(text: &str) -> String {
    match Policy::parse(text, "policy.toml") {
        Ok(_) => panic!("policy should not parse:\n{text}"),
        Err(e) => format!("{e:#}"),
    }
}
