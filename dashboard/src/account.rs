//! Local accounts: who may log in, in which role, scoped to what.
//!
//! Accounts live in `STORE/accounts.json`, beside the store's data and outside its manifest
//! (they are not IMI's records). Passwords are kept only as argon2id hashes (PHC strings with
//! their own salt). The file is replaced atomically (written beside, then renamed), readable
//! by its owner only (0600). A running dashboard reads it again whenever it changes
//! (`custos user add|passwd|disable|remove|unlock` take effect at once), and a session whose
//! account changed since login ends ([`Account::stamp`]).

use std::path::{Path, PathBuf};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The roles of product.md.
pub const ROLES: [&str; 5] = ["edps", "dpa", "dpo", "commission", "admin"];

/// One account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The login name.
    pub name: String,
    /// `edps`, `dpa`, `dpo`, `commission` or `admin`.
    pub role: String,
    /// A DPA's member state.
    #[serde(default)]
    pub member_state: Option<String>,
    /// A DPO's controller (an authority id, or the Commission's).
    #[serde(default)]
    pub controller: Option<String>,
    /// argon2id PHC string.
    pub password_hash: String,
    /// A disabled account cannot log in, and its sessions end.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
    /// When an operator last lifted the login limit of this account (`custos user unlock`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unlocked_at: Option<String>,
}

impl Account {
    /// What a session logged in as this account depends on: its role, scope, password and
    /// whether it is enabled. A session whose account's stamp changed ends.
    pub fn stamp(&self) -> String {
        format!(
            "{}|{}|{}|{}|{}",
            self.role,
            self.member_state.as_deref().unwrap_or(""),
            self.controller.as_deref().unwrap_or(""),
            self.password_hash,
            self.disabled
        )
    }
}

/// The accounts of one store.
#[derive(Debug, Clone, Default)]
pub struct Accounts {
    path: PathBuf,
    list: Vec<Account>,
}

/// A hash to verify against when the name is unknown, so that a wrong name takes as long as a
/// wrong password.
static DECOY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| hash("decoy").unwrap_or_default());

fn hash(password: &str) -> Result<String> {
    let mut bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    let salt = SaltString::encode_b64(&bytes).map_err(|e| Error::Internal(format!("a salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(format!("hashing a password: {e}")))
}

fn check_password(password: &str) -> Result<()> {
    if password.chars().count() < 12 {
        return Err(Error::Usage("the password must have at least 12 characters".into()));
    }
    Ok(())
}

/// Writes `bytes` to a new file at `path` that only its owner may read or write.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    #[cfg(unix)]
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    file.write_all(bytes)?;
    file.sync_all()
}

impl Accounts {
    /// The accounts of the store at `store` (none if the file does not exist yet).
    pub fn load(store: &Path) -> Result<Accounts> {
        let path = store.join("accounts.json");
        let list = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| Error::Usage(format!("{}: not an accounts file: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(Error::Io { path, source: e }),
        };
        Ok(Accounts { path, list })
    }

    /// Changes the accounts of the store at `store` under a lock, so that two changes at
    /// once (two operators, or a change and another) never lose one another: read, `change`
    /// (which saves), release.
    pub fn edit<T>(store: &Path, change: impl FnOnce(&mut Accounts) -> Result<T>) -> Result<T> {
        let path = store.join(".accounts.lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| Error::Io { path: path.clone(), source })?;
        lock.lock().map_err(|source| Error::Io { path, source })?;
        let mut accounts = Accounts::load(store)?;
        change(&mut accounts)
    }

    /// Every account.
    pub fn all(&self) -> &[Account] {
        &self.list
    }

    /// Adds (or replaces) an account and writes the file.
    pub fn add(
        &mut self,
        name: &str,
        role: &str,
        member_state: Option<&str>,
        controller: Option<&str>,
        password: &str,
    ) -> Result<()> {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c)) {
            return Err(Error::Usage(format!(
                "account name `{name}`: expected letters, digits, `-`, `_`, `.` or `@`"
            )));
        }
        if !ROLES.contains(&role) {
            return Err(Error::Usage(format!("role `{role}`: expected one of {}", ROLES.join(", "))));
        }
        match (role, member_state, controller) {
            ("dpa", None, _) => return Err(Error::Usage("a `dpa` account needs `--member-state XX`".into())),
            ("dpo", _, None) => return Err(Error::Usage("a `dpo` account needs `--controller ID`".into())),
            ("dpa", Some(ms), _) if ms.len() != 2 || !ms.chars().all(|c| c.is_ascii_uppercase()) => {
                return Err(Error::Usage(format!(
                    "member state `{ms}`: expected a two-letter code such as `DE`"
                )));
            }
            _ => {}
        }
        check_password(password)?;
        let account = Account {
            name: name.to_owned(),
            role: role.to_owned(),
            member_state: member_state.filter(|_| role == "dpa").map(str::to_owned),
            controller: controller.filter(|_| role == "dpo").map(str::to_owned),
            password_hash: hash(password)?,
            disabled: false,
            unlocked_at: None,
        };
        self.list.retain(|a| a.name != name);
        self.list.push(account);
        self.list.sort_by(|a, b| a.name.cmp(&b.name));
        self.save()
    }

    /// The account `name`, to change.
    fn named(&mut self, name: &str) -> Result<&mut Account> {
        self.list
            .iter_mut()
            .find(|a| a.name == name)
            .ok_or_else(|| Error::Usage(format!("no account is called `{name}` (see `custos user list`)")))
    }

    /// Gives `name` a new password; its sessions end.
    pub fn passwd(&mut self, name: &str, password: &str) -> Result<()> {
        check_password(password)?;
        let hashed = hash(password)?;
        self.named(name)?.password_hash = hashed;
        self.save()
    }

    /// Disables (or enables again) `name`; a disabled account's sessions end.
    pub fn set_disabled(&mut self, name: &str, disabled: bool) -> Result<()> {
        self.named(name)?.disabled = disabled;
        self.save()
    }

    /// Removes `name`; its sessions end.
    pub fn remove(&mut self, name: &str) -> Result<()> {
        self.named(name)?;
        self.list.retain(|a| a.name != name);
        self.save()
    }

    /// Lifts the login limit of `name` (recorded as of `at`), for every address.
    pub fn unlock(&mut self, name: &str, at: &str) -> Result<()> {
        self.named(name)?.unlocked_at = Some(at.to_owned());
        self.save()
    }

    /// The account called `name`, if any.
    pub fn get(&self, name: &str) -> Option<&Account> {
        self.list.iter().find(|a| a.name == name)
    }

    fn save(&self) -> Result<()> {
        let partial = self.path.with_extension("json.partial");
        let bytes = serde_json::to_vec_pretty(&self.list).map_err(|e| Error::Internal(e.to_string()))?;
        write_private(&partial, &bytes).map_err(|source| Error::Io { path: partial.clone(), source })?;
        std::fs::rename(&partial, &self.path).map_err(|source| Error::Io { path: self.path.clone(), source })
    }

    /// The account `name` if `password` is its password and it is enabled. Slow on purpose
    /// (argon2id): call it off the async workers.
    pub fn verify(&self, name: &str, password: &str) -> Option<&Account> {
        let found = self.list.iter().find(|a| a.name == name);
        let stored = found.map_or(DECOY.as_str(), |a| a.password_hash.as_str());
        let ok = PasswordHash::new(stored)
            .is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok());
        found.filter(|a| ok && !a.disabled)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn passwords_are_stored_as_argon2id_and_verified() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = Accounts::load(dir.path()).unwrap();
        a.add("dpa-de", "dpa", Some("DE"), None, "correct horse battery").unwrap();
        let text = std::fs::read_to_string(dir.path().join("accounts.json")).unwrap();
        assert!(text.contains("$argon2id$"), "{text}");
        assert!(!text.contains("correct horse"));
        let a = Accounts::load(dir.path()).unwrap();
        assert_eq!(a.verify("dpa-de", "correct horse battery").map(|x| x.role.as_str()), Some("dpa"));
        assert!(a.verify("dpa-de", "wrong password!!").is_none());
        assert!(a.verify("nobody", "correct horse battery").is_none());
    }

    #[test]
    fn a_changed_disabled_or_removed_account_has_another_stamp_or_none() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = Accounts::load(dir.path()).unwrap();
        a.add("edps", "edps", None, None, "correct horse battery").unwrap();
        let before = a.get("edps").unwrap().stamp();
        a.passwd("edps", "another horse battery").unwrap();
        assert_ne!(a.get("edps").unwrap().stamp(), before);
        assert!(a.verify("edps", "correct horse battery").is_none());
        assert!(a.verify("edps", "another horse battery").is_some());
        a.set_disabled("edps", true).unwrap();
        assert!(a.verify("edps", "another horse battery").is_none(), "a disabled account logs in");
        a.remove("edps").unwrap();
        assert!(a.get("edps").is_none());
        assert!(a.remove("edps").is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("accounts.json")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn roles_need_their_scope() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = Accounts::load(dir.path()).unwrap();
        assert!(a.add("x", "dpa", None, None, "long enough password").is_err());
        assert!(a.add("x", "dpo", None, None, "long enough password").is_err());
        assert!(a.add("x", "king", None, None, "long enough password").is_err());
        assert!(a.add("x", "dpa", Some("de"), None, "long enough password").is_err());
        assert!(a.add("x", "edps", None, None, "short").is_err());
        assert!(a.add("bad name", "edps", None, None, "long enough password").is_err());
    }
}
