//! Committing an audit: its findings, the policy set that decided them, and what it judged.

use super::*;

/// Commits an audit's findings to the store, with the policy set that decided them (its
/// hash, and every rule's text), the time of the run, and what it judged (the store's head
/// as the audit read it, and its window). Returns the manifest entry: when its `seq` is more
/// than one after the judged entry's, other commits landed while the audit ran, and they
/// are not judged by it. A windowed audit is stored beside the whole one, never in its place.
pub fn record(store: &Store, audit: &Audit, judge: &Judge, run_at: i64) -> Result<crate::manifest::Entry> {
    let policies = judge.policies();
    let mut txn = store.begin("audit")?;
    txn.judged(audit.judged.clone());
    let batch = finding::to_batch(&audit.findings, policies.hash(), run_at)?;
    txn.write(crate::catalog::NTK_FINDINGS, Arc::clone(&finding::SCHEMA), &[batch])?;
    let texts = policy_texts(policies)?;
    txn.write(crate::catalog::POLICY_TEXTS, texts.schema(), &[texts])?;
    txn.commit(&finding::format_micros(run_at), vec![format!("policies {}", policies.hash())])?
        .ok_or_else(|| Error::Internal("the audit wrote nothing".into()))
}

fn policy_texts(p: &custos_policies::Policies) -> Result<RecordBatch> {
    let col = |f: &dyn Fn(&custos_policies::Rule) -> &str| -> Arc<dyn Array> {
        Arc::new(StringArray::from_iter_values(p.rules().iter().map(f)))
    };
    let hash: Arc<dyn Array> = Arc::new(StringArray::from_iter_values(p.rules().iter().map(|_| p.hash())));
    Ok(RecordBatch::try_new(
        crate::catalog::policy_texts_schema(),
        vec![
            hash,
            col(&|r| &r.id),
            col(&|r| &r.article),
            col(&|r| &r.title),
            col(&|r| r.effect),
            col(&|r| &r.file),
            col(&|r| &r.text),
        ],
    )?)
}
