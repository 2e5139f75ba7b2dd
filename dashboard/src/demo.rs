//! `custos demo`: a sample store made once under a directory, audited, with one account per
//! role and their passwords kept beside it. The binary prints what [`prepare`] returns and
//! serves the dashboard on it.
//!
//! ```text
//! DIR/export/      the generated IMI export, with labels/violations.csv
//! DIR/store/       the store: imported, audited, the accounts recorded
//! DIR/logins.txt   one login per role (0600): name, role, scope, password
//! ```

use std::path::{Path, PathBuf};

use custos_engine::{Engine, Progress, import, store::Store};

use crate::account::{Accounts, LEGACY, ROLES};
use crate::error::{Error, Result};

/// One demo login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub name: String,
    pub role: String,
    /// `member state DE`, `controller A-EU-00000`, or empty.
    pub scope: String,
    pub password: String,
}

/// The demo as prepared.
#[derive(Debug)]
pub struct Demo {
    /// The generated export.
    pub export: PathBuf,
    /// The store.
    pub store: PathBuf,
    /// Where the logins are kept.
    pub logins_file: PathBuf,
    /// The import, when this run made the store.
    pub imported: Option<import::Report>,
    /// One login per role.
    pub logins: Vec<Login>,
}

/// Makes (once) the demo under `dir`: generates an export and imports it, audits it, records
/// one account per role. `progress` is told each step and how far it got. A store an earlier
/// Custos wrote in another layout is made again; accounts it kept outside the chain are
/// recorded.
pub async fn prepare(dir: &Path, progress: &Progress) -> Result<Demo> {
    let say = |what: &str| progress.step(what, "", None);
    let export = dir.join("export");
    let store = dir.join("store");
    let logins_file = dir.join("logins.txt");
    if store.join("manifest.jsonl").exists() && Store::is_outdated(&store)? {
        say("the demo store was written by an earlier Custos: making it again");
        std::fs::remove_dir_all(&store).map_err(|source| Error::Io { path: store.clone(), source })?;
        let _ = std::fs::remove_file(&logins_file);
    }
    let mut imported = None;
    if !store.join("manifest.jsonl").exists() {
        custos_synthetic::generate_with(&export, &custos_synthetic::Params::default(), progress)?;
        let inputs = import::inputs(std::slice::from_ref(&export), None)?;
        let options = import::Options { progress: progress.clone(), ..import::Options::default() };
        imported = Some(Engine::import(&store, &inputs, &options)?);
    }
    let engine = Engine::open(&store)?.with_progress(progress.clone());
    if engine.store().rows(custos_engine::catalog::NTK_FINDINGS) == 0 {
        let audit = engine.audit(custos_engine::audit::Window::default()).await?;
        engine.record(&audit)?;
        // Supervisors have been at work: a realistic history of reviews of these findings,
        // up to the demo's instant, so that queues, referrals and precision show something.
        say("recording a history of supervisors' reviews");
        let until = custos_synthetic::Params::as_of().timestamp_micros();
        let history = custos_synthetic::review_history(&audit.findings, 1, until);
        let hash = engine.judge().policies().hash().to_owned();
        let steps: Vec<custos_engine::review::Step<'_>> = history
            .iter()
            .map(|(i, change, at)| custos_engine::review::Step {
                finding: &audit.findings[*i],
                policy_hash: &hash,
                change: change.clone(),
                at: *at,
            })
            .collect();
        custos_engine::review::Reviews::load(engine.store())?.record_history(engine.store(), &steps)?;
    }
    if store.join(LEGACY).exists() {
        say("recording the demo's accounts under the store's chain");
        Accounts::adopt(&store)?;
    }
    say("creating one account per role");
    let logins = accounts(&logins_file, &engine.reopen()?).await?;
    Ok(Demo { export, store, logins_file, imported, logins })
}

/// One account per role with a random password, kept in `file` (made once, 0600).
async fn accounts(file: &Path, engine: &Engine) -> Result<Vec<Login>> {
    if let Ok(text) = std::fs::read_to_string(file) {
        let logins: Vec<Login> = text
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                (f.len() == 4).then(|| Login {
                    name: f[0].to_owned(),
                    role: f[1].to_owned(),
                    scope: f[2].to_owned(),
                    password: f[3].to_owned(),
                })
            })
            .collect();
        if logins.len() == ROLES.len() {
            return Ok(logins);
        }
    }
    let ctx = custos_engine::query::session(engine.store()).await?;
    let rows = custos_engine::read::rows_of(&ctx, custos_engine::query::sql::COMMISSION_AUTHORITY).await?;
    let commission = rows.first().map(|r| custos_engine::read::text(r, "authority_id")).unwrap_or_default();
    let mut logins = Vec::new();
    Accounts::edit(engine.store().root(), |accounts| {
        for (name, role, ms, controller) in [
            ("edps", "edps", None, None),
            ("dpa-de", "dpa", Some("DE"), None),
            ("dpo-commission", "dpo", None, Some(commission.as_str())),
            ("commission", "commission", None, None),
            ("admin", "admin", None, None),
        ] {
            let password = crate::session::token()[..20].to_owned();
            accounts.add(name, role, ms, controller, &password)?;
            let scope = ms
                .map(|m| format!("member state {m}"))
                .or(controller.map(|c| format!("controller {c}")))
                .unwrap_or_default();
            logins.push(Login { name: name.into(), role: role.into(), scope, password });
        }
        Ok(())
    })?;
    let text: String =
        logins.iter().map(|l| format!("{}\t{}\t{}\t{}\n", l.name, l.role, l.scope, l.password)).collect();
    write_private(file, text.as_bytes()).map_err(|source| Error::Io { path: file.to_owned(), source })?;
    Ok(logins)
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(bytes)
}
