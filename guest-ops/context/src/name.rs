//! Package names: `context/<pkg>/`.

/// The longest package name.
pub const MAX_LEN: usize = 64;

/// Why `name` is not a package name (`None`: it is one). A package name is one path
/// component of 1 to 64 characters from `A-Z a-z 0-9 . _ -`, not starting with `.`.
pub fn problem(name: &str) -> Option<String> {
    if name.is_empty() {
        Some("a package name is not empty".into())
    } else if name.len() > MAX_LEN {
        Some(format!(
            "package name of {} bytes: at most {MAX_LEN}",
            name.len()
        ))
    } else if name.starts_with('.') {
        Some(format!("package name {name:?} starts with '.'"))
    } else {
        name.chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
            .map(|c| format!("package name {name:?} has {c:?}: only A-Z a-z 0-9 . _ -"))
    }
}

pub fn is_valid(name: &str) -> bool {
    problem(name).is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_names_only() {
        for good in ["p", "fix-login", "v1.2_rc", "A", "a..b", &"x".repeat(64)] {
            assert!(is_valid(good), "{good}");
        }
        for bad in [
            "",
            ".hidden",
            "..",
            "a/b",
            "a b",
            "é",
            "a*",
            "a\0",
            &"x".repeat(65),
        ] {
            assert!(problem(bad).is_some(), "{bad:?}");
        }
    }
}
