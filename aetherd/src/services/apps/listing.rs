//! What there is: the apps installed for you (`apps.list`) and what the catalogs offer
//! (`apps.catalog`), searched by words.

use super::*;

impl AppsService {
    pub(super) async fn list(&self, request: &Incoming) -> Result<api::AppList, ErrorBody> {
        let user_id = request.caller.user_id;
        let catalog = self.perms.catalog();
        let (rows, _) = self
            .store
            .call(move |c| records::all_of_user(c, user_id))
            .await
            .map_err(internal)?;
        let rows: BTreeMap<String, AppRow> = rows.into_iter().map(|r| (r.id.clone(), r)).collect();
        let mut apps: Vec<api::AppInfo> = catalog
            .apps_for(user_id)
            .into_iter()
            .map(|(manifest, built_in)| {
                let row = rows.get(&manifest.id).filter(|_| !built_in);
                api::AppInfo {
                    id: manifest.id.clone(),
                    name: manifest.name.clone(),
                    version: manifest.version.clone(),
                    description: manifest.description.clone(),
                    built_in,
                    runnable: manifest.entry.is_some(),
                    capabilities: manifest.permissions.keys().copied().collect(),
                    signature: row.map(|r| r.signature.clone()),
                    installed_at_ms: row.map(|r| r.installed_ms),
                }
            })
            .collect();
        apps.sort_by_key(|a| a.name.to_lowercase());
        Ok(api::AppList { apps })
    }

    pub(super) async fn catalog(
        &self,
        request: &Incoming,
        ask: api::Catalog,
    ) -> Result<api::CatalogAnswer, ErrorBody> {
        let words = search_words(ask.query.as_deref().unwrap_or_default())?;
        let user_id = request.caller.user_id;
        // The versions this user has, by id.
        let mine: BTreeMap<String, String> = self
            .store
            .call(move |c| records::all_of_user(c, user_id))
            .await
            .map_err(internal)?
            .0
            .into_iter()
            .map(|r| (r.id, r.version))
            .collect();
        let mut sources = vec![];
        let mut apps: BTreeMap<String, api::CatalogApp> = BTreeMap::new();
        for (location, index) in self.indexes().await {
            let index = match index {
                Ok(index) => index,
                Err(e) => {
                    sources.push(api::CatalogSource {
                        location: location.describe(),
                        name: String::new(),
                        error: Some(e.msg),
                    });
                    continue;
                }
            };
            sources.push(api::CatalogSource {
                location: location.describe(),
                name: index.name.clone(),
                error: (!index.skipped.is_empty())
                    .then(|| format!("entries skipped: {}", index.skipped.join("; "))),
            });
            let mut by_id: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
            for entry in index.entries {
                by_id.entry(entry.id.clone()).or_default().push(entry);
            }
            for (id, mut entries) in by_id {
                if apps.contains_key(&id) {
                    continue; // An earlier catalog offers it.
                }
                entries.sort_by_key(|e| std::cmp::Reverse(parse_version(&e.version)));
                let newest = &entries[0];
                let Some(manifest) = &newest.parsed else {
                    continue;
                };
                if !matches(&words, &id, manifest) {
                    continue;
                }
                let signature = self
                    .trust
                    .judge(
                        &newest.sha256,
                        newest.publisher.as_deref(),
                        newest.signature.as_deref(),
                    )
                    .map(|(s, _)| s)
                    .unwrap_or(Signature::Unsigned);
                let installed = mine.get(&id).cloned();
                apps.insert(
                    id.clone(),
                    api::CatalogApp {
                        id: id.clone(),
                        name: manifest.name.clone(),
                        version: newest.version.clone(),
                        versions: entries.iter().map(|e| e.version.clone()).collect(),
                        description: manifest.description.clone(),
                        catalog: location.describe(),
                        size: newest.size,
                        sha256: newest.sha256.clone(),
                        signature,
                        capabilities: requested(manifest),
                        installed,
                    },
                );
            }
        }
        let mut apps: Vec<api::CatalogApp> = apps.into_values().collect();
        apps.sort_by_key(|a| a.name.to_lowercase());
        Ok(api::CatalogAnswer {
            catalogs: sources,
            apps,
        })
    }
}

/// A catalog search's words: lower case, each once, within the limits.
fn search_words(query: &str) -> Result<Vec<String>, ErrorBody> {
    let mut words: Vec<String> = query.split_whitespace().map(str::to_lowercase).collect();
    words.sort();
    words.dedup();
    if query.len() > MAX_QUERY_BYTES || words.len() > MAX_QUERY_WORDS {
        return Err(bad(format!(
            "a search is at most {MAX_QUERY_BYTES} bytes and {MAX_QUERY_WORDS} words"
        )));
    }
    Ok(words)
}

/// Whether every word is in the app's id, name or description (any case).
fn matches(words: &[String], id: &str, manifest: &Manifest) -> bool {
    let haystack = format!(
        "{} {} {}",
        id,
        manifest.name,
        manifest.description.as_deref().unwrap_or_default()
    )
    .to_lowercase();
    words.iter().all(|w| haystack.contains(w))
}
