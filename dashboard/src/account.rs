//! Local accounts: who may log in, in which role, scoped to what.
//!
//! Accounts are records of the store like any other: every change (`custos user
//! add|passwd|disable|enable|remove|unlock`) commits a new version of the whole list as a
//! document of the `accounts` table (`data/accounts/c<seq>-0.json`, readable by its owner
//! only), under the manifest's integrity chain, with the name and role of each account in the
//! entry. The latest recorded version is the one that counts, and it is read only after its
//! SHA-256 matched the manifest's: an account added to a file by hand never logs in, and
//! `custos verify` names it. Passwords are kept only as argon2id hashes (PHC strings with
//! their own salt). A running dashboard reads the accounts again whenever the manifest
//! changes (the changes take effect at once), and a session whose account changed since
//! login ends ([`Account::stamp`]).
//!
//! Stores made before accounts were recorded kept them in `STORE/accounts.json`, outside the
//! chain: such a file is never read except by `custos user adopt`, which records it.

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
    store: PathBuf,
    list: Vec<Account>,
}

/// The store table that holds the versions of the accounts.
pub const TABLE: &str = "accounts";

/// Where stores made before accounts were recorded kept them.
pub const LEGACY: &str = "accounts.json";

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

impl Accounts {
    /// The accounts of the store at `store`: its latest recorded version, read after its
    /// digest matched the manifest's (none before the first).
    pub fn load(store: &Path) -> Result<Accounts> {
        let opened = custos_engine::store::Store::open(store)?;
        let list = match opened.files(TABLE).last() {
            Some(record) => {
                let path = opened.checked(&[record])?.remove(0);
                let bytes =
                    std::fs::read(&path).map_err(|source| Error::Io { path: path.clone(), source })?;
                // Its digest is the recorded one: what Custos wrote, so a failure is Custos's.
                serde_json::from_slice(&bytes).map_err(|e| {
                    Error::Internal(format!(
                        "{}: a recorded accounts version unreadable: {e}",
                        path.display()
                    ))
                })?
            }
            None if store.join(LEGACY).exists() => {
                return Err(Error::Usage(format!(
                    "{}: accounts kept outside the store's integrity chain (by an older Custos, or put \
                     there by hand): check them, then record them with `custos user adopt --store {}`",
                    store.join(LEGACY).display(),
                    store.display()
                )));
            }
            None => Vec::new(),
        };
        Ok(Accounts { store: store.to_owned(), list })
    }

    /// Records the accounts of a store's legacy `accounts.json` as its first version and
    /// removes the file. Returns the accounts adopted.
    pub fn adopt(store: &Path) -> Result<Vec<Account>> {
        Accounts::edit_raw(store, |_| {
            let path = store.join(LEGACY);
            let opened = custos_engine::store::Store::open(store)?;
            if !opened.files(TABLE).is_empty() {
                return Err(Error::Usage(format!(
                    "{}: the store records its accounts already; remove this file",
                    path.display()
                )));
            }
            let bytes = std::fs::read(&path).map_err(|source| Error::Io { path: path.clone(), source })?;
            let list: Vec<Account> = serde_json::from_slice(&bytes)
                .map_err(|e| Error::Usage(format!("{}: not an accounts file: {e}", path.display())))?;
            let accounts = Accounts { store: store.to_owned(), list };
            accounts.save(format!("user adopt: {LEGACY}"))?;
            std::fs::remove_file(&path).map_err(|source| Error::Io { path, source })?;
            Ok(accounts.list)
        })
    }

    /// Changes the accounts of the store at `store` under a lock, so that two changes at
    /// once (two operators, or a change and another) never lose one another: read, `change`
    /// (which saves), release.
    pub fn edit<T>(store: &Path, change: impl FnOnce(&mut Accounts) -> Result<T>) -> Result<T> {
        Accounts::edit_raw(store, |store| change(&mut Accounts::load(store)?))
    }

    fn edit_raw<T>(store: &Path, change: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
        let path = store.join(".accounts.lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| Error::Io { path: path.clone(), source })?;
        lock.lock().map_err(|source| Error::Io { path, source })?;
        change(store)
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
        self.save(format!("user add {name} ({role})"))
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
        self.save(format!("user passwd {name}"))
    }

    /// Disables (or enables again) `name`; a disabled account's sessions end.
    pub fn set_disabled(&mut self, name: &str, disabled: bool) -> Result<()> {
        self.named(name)?.disabled = disabled;
        self.save(format!("user {} {name}", if disabled { "disable" } else { "enable" }))
    }

    /// Removes `name`; its sessions end.
    pub fn remove(&mut self, name: &str) -> Result<()> {
        self.named(name)?;
        self.list.retain(|a| a.name != name);
        self.save(format!("user remove {name}"))
    }

    /// Lifts the login limit of `name` (recorded as of `at`), for every address.
    pub fn unlock(&mut self, name: &str, at: &str) -> Result<()> {
        self.named(name)?.unlocked_at = Some(at.to_owned());
        self.save(format!("user unlock {name}"))
    }

    /// The account called `name`, if any.
    pub fn get(&self, name: &str) -> Option<&Account> {
        self.list.iter().find(|a| a.name == name)
    }

    /// Commits the accounts as a new version, `what` saying which change made it.
    fn save(&self, what: String) -> Result<()> {
        let store = custos_engine::store::Store::open(&self.store)?;
        let mut txn = store.begin(TABLE)?;
        let bytes = serde_json::to_vec_pretty(&self.list).map_err(|e| Error::Internal(e.to_string()))?;
        txn.accounts(self.list.iter().map(|a| format!("{} ({})", a.name, a.role)).collect());
        txn.write_document(TABLE, "json", &bytes, self.list.len() as u64)?;
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        txn.commit(&custos_engine::manifest::rfc3339(now as i64), vec![what])?;
        Ok(())
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

    fn store() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        custos_engine::store::Store::open_or_create(dir.path()).unwrap();
        dir
    }

    /// The newest recorded version of the accounts, as text, and where it is.
    fn latest(dir: &Path) -> (String, PathBuf) {
        let s = custos_engine::store::Store::open(dir).unwrap();
        let path = s.checked(&[s.files(TABLE).last().unwrap()]).unwrap().remove(0);
        (std::fs::read_to_string(&path).unwrap(), path)
    }

    #[test]
    fn passwords_are_stored_as_argon2id_and_verified() {
        let dir = store();
        let mut a = Accounts::load(dir.path()).unwrap();
        a.add("dpa-de", "dpa", Some("DE"), None, "correct horse battery").unwrap();
        let (text, _) = latest(dir.path());
        assert!(text.contains("$argon2id$"), "{text}");
        assert!(!text.contains("correct horse"));
        let a = Accounts::load(dir.path()).unwrap();
        assert_eq!(a.verify("dpa-de", "correct horse battery").map(|x| x.role.as_str()), Some("dpa"));
        assert!(a.verify("dpa-de", "wrong password!!").is_none());
        assert!(a.verify("nobody", "correct horse battery").is_none());
    }

    #[test]
    fn a_changed_disabled_or_removed_account_has_another_stamp_or_none() {
        let dir = store();
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
            let (_, path) = latest(dir.path());
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let mode = std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        // Each change is a new version under the chain; none was changed in place.
        let s = custos_engine::store::Store::open(dir.path()).unwrap();
        assert_eq!(s.files(TABLE).len(), 4, "add, passwd, disable, remove");
        assert!(custos_engine::store::Store::verify(dir.path()).unwrap().is_sound());
    }

    #[test]
    fn an_account_added_by_hand_never_logs_in_and_verify_names_it() {
        let dir = store();
        let mut a = Accounts::load(dir.path()).unwrap();
        a.add("dpa-de", "dpa", Some("DE"), None, "correct horse battery").unwrap();
        let (text, path) = latest(dir.path());
        let mut list: Vec<Account> = serde_json::from_str(&text).unwrap();
        let mut planted = list[0].clone();
        planted.name = "mallory".into();
        planted.role = "edps".into();
        list.push(planted);
        std::fs::write(&path, serde_json::to_vec_pretty(&list).unwrap()).unwrap();
        let err = Accounts::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("c000001-0.json"), "{err}");
        let v = custos_engine::store::Store::verify(dir.path()).unwrap();
        let said: Vec<String> = v.problems.iter().map(ToString::to_string).collect();
        assert!(said.iter().any(|p| p.contains("mallory (edps)") && !p.contains("dpa-de")), "{said:?}");
        // A legacy file beside the store is never read, and verify names it too.
        std::fs::write(&path, text).unwrap();
        std::fs::write(dir.path().join(LEGACY), serde_json::to_vec(&list).unwrap()).unwrap();
        assert!(Accounts::load(dir.path()).unwrap().get("mallory").is_none());
        let v = custos_engine::store::Store::verify(dir.path()).unwrap();
        assert!(
            v.problems.iter().any(|p| p.to_string().contains("`accounts.json` at the store's root")),
            "{:?}",
            v.problems
        );
    }

    #[test]
    fn legacy_accounts_are_read_only_once_adopted() {
        let dir = store();
        let a = Account {
            name: "edps".into(),
            role: "edps".into(),
            member_state: None,
            controller: None,
            password_hash: hash("correct horse battery").unwrap(),
            disabled: false,
            unlocked_at: None,
        };
        std::fs::write(dir.path().join(LEGACY), serde_json::to_vec(&[a]).unwrap()).unwrap();
        let err = Accounts::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("custos user adopt"), "{err}");
        let adopted = Accounts::adopt(dir.path()).unwrap();
        assert_eq!(adopted.len(), 1);
        assert!(!dir.path().join(LEGACY).exists());
        assert!(Accounts::load(dir.path()).unwrap().verify("edps", "correct horse battery").is_some());
        assert!(custos_engine::store::Store::verify(dir.path()).unwrap().is_sound());
    }

    #[test]
    fn roles_need_their_scope() {
        let dir = store();
        let mut a = Accounts::load(dir.path()).unwrap();
        assert!(a.add("x", "dpa", None, None, "long enough password").is_err());
        assert!(a.add("x", "dpo", None, None, "long enough password").is_err());
        assert!(a.add("x", "king", None, None, "long enough password").is_err());
        assert!(a.add("x", "dpa", Some("de"), None, "long enough password").is_err());
        assert!(a.add("x", "edps", None, None, "short").is_err());
        assert!(a.add("bad name", "edps", None, None, "long enough password").is_err());
    }
}
