//! [`Permission`]: what an API token allows, read back from `api_tokens.permissions`
//! as stored, names this release does not know included.

use std::fmt;
use std::str::FromStr;

/// What a token allows: `read` is GET, `write` adds POST.
///
/// Read from `api_tokens.permissions` (`text[]`) as stored: a name this release does
/// not know (a newer release's, or one written by hand) is kept as
/// [`Permission::Unknown`], which grants nothing, so it neither fails the token's
/// read (a 500 instead of a 403) nor vanishes from `tokens list`.
#[derive(Debug, Clone, PartialEq, Eq, clap::ValueEnum)]
pub enum Permission {
    Read,
    Write,
    /// A stored name this release does not know, verbatim; it allows nothing.
    #[value(skip)]
    Unknown(String),
}

impl Permission {
    /// The name stored in `api_tokens.permissions` and shown by `tokens list`.
    pub fn as_str(&self) -> &str {
        match self {
            Permission::Read => "read",
            Permission::Write => "write",
            Permission::Unknown(name) => name,
        }
    }

    /// Returns the permission a name stands for; `None` for a name this release
    /// does not know.
    pub fn from_name(name: &str) -> Option<Permission> {
        [Permission::Read, Permission::Write]
            .into_iter()
            .find(|p| p.as_str() == name)
    }

    /// Returns whether holding this permission allows what `needed` allows:
    /// `write` includes `read`; an unknown one allows nothing.
    pub fn allows(&self, needed: &Permission) -> bool {
        matches!(
            (self, needed),
            (Permission::Read, Permission::Read)
                | (Permission::Write, Permission::Read | Permission::Write)
        )
    }
}

impl FromStr for Permission {
    type Err = std::convert::Infallible;

    /// Every stored name is a permission: unknown ones are kept as [`Permission::Unknown`].
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Ok(Permission::from_name(name).unwrap_or_else(|| Permission::Unknown(name.to_owned())))
    }
}

/// Served as its name (`tokens list --json`).
impl serde::Serialize for Permission {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

crate::domain::text_column!(Permission);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_includes_read_and_unknown_names_grant_nothing() {
        assert!(Permission::Write.allows(&Permission::Read));
        assert!(!Permission::Read.allows(&Permission::Write));
        assert_eq!(Permission::from_name("write"), Some(Permission::Write));
        assert_eq!(Permission::from_name("admin"), None);
    }

    #[test]
    fn a_stored_name_this_release_does_not_know_is_kept_and_allows_nothing() {
        let admin: Permission = "admin".parse().unwrap_or_else(|e| match e {});
        assert_eq!(admin, Permission::Unknown("admin".into()));
        assert_eq!(admin.as_str(), "admin");
        assert!(!admin.allows(&Permission::Read));
        assert!(!Permission::Write.allows(&admin));
        assert_eq!("write".parse::<Permission>(), Ok(Permission::Write));
    }
}
