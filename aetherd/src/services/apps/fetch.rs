//! Getting a bundle and judging it: finding it in the catalogs, fetching it (from a
//! catalog, the user's files or the request itself), checking it whole in memory and
//! judging its signature, and compiling its program before anything is written.

use super::*;

/// A bundle's bytes and what its source says about it.
pub(super) struct Fetched {
    pub(super) bytes: Vec<u8>,
    pub(super) publisher: Option<String>,
    pub(super) signature: Option<String>,
    /// What a catalog said it is: (id, version); the manifest must agree.
    pub(super) claimed: Option<(String, String)>,
}

/// A bundle checked and judged: everything an install needs to decide.
pub(super) struct Checked {
    pub(super) bundle: Bundle,
    pub(super) signature: Signature,
    pub(super) warnings: Vec<String>,
}

impl AppsService {
    /// Every catalog's index, in order; a catalog that fails says why and the others still count.
    pub(super) async fn indexes(&self) -> Vec<(Location, Result<catalog::Index, ErrorBody>)> {
        let mut out = vec![];
        for location in &self.catalogs {
            out.push((location.clone(), self.fetcher.index(location).await));
        }
        out
    }

    /// The entry a catalog offers for `id` (at `version`, else its newest), first catalog first.
    pub(super) async fn find(
        &self,
        id: &str,
        version: Option<&str>,
    ) -> Result<(Location, Entry), ErrorBody> {
        let mut problems = vec![];
        for (location, index) in self.indexes().await {
            let index = match index {
                Ok(index) => index,
                Err(e) => {
                    problems.push(e.msg);
                    continue;
                }
            };
            let newest = index
                .entries
                .into_iter()
                .filter(|e| e.id == id && version.is_none_or(|v| e.version == v))
                .max_by_key(|e| parse_version(&e.version));
            if let Some(entry) = newest {
                return Ok((location, entry));
            }
        }
        let what = match version {
            Some(v) => format!("{id} {v}"),
            None => id.to_owned(),
        };
        let mut msg = format!("no catalog offers {what}");
        if !problems.is_empty() {
            msg.push_str(&format!(" (and {})", problems.join("; ")));
        }
        Err(ErrorBody::new(ErrorCode::NotFound, msg))
    }

    pub(super) async fn fetch(
        &self,
        on: &OnBehalf,
        source: &api::Source,
    ) -> Result<Fetched, ErrorBody> {
        match (&source.id, &source.path, &source.data) {
            (Some(id), None, None) => {
                if source.signature.is_some() {
                    return Err(bad(
                        "`signature` is for local bundles; a catalog's entry carries its own",
                    ));
                }
                let (location, entry) = self.find(id, source.version.as_deref()).await?;
                let bytes = self.fetcher.bundle(&location, &entry).await?;
                Ok(Fetched {
                    bytes,
                    publisher: entry.publisher,
                    signature: entry.signature,
                    claimed: Some((entry.id, entry.version)),
                })
            }
            (None, Some(path), None) => Ok(Fetched {
                bytes: self.read_user_file(on, path).await?,
                publisher: source.publisher.clone(),
                signature: source.signature.clone(),
                claimed: None,
            }),
            (None, None, Some(data)) => {
                if data.len() as u64 / 4 * 3 > self.limits.packed_bytes + 3 {
                    return Err(ErrorBody::new(
                        ErrorCode::TooLarge,
                        format!(
                            "the bundle is larger than the {} MiB accepted",
                            self.limits.packed_bytes >> 20
                        ),
                    ));
                }
                let bytes = BASE64
                    .decode(data)
                    .map_err(|e| bad(format!("`data` is not base64: {e}")))?;
                Ok(Fetched {
                    bytes,
                    publisher: source.publisher.clone(),
                    signature: source.signature.clone(),
                    claimed: None,
                })
            }
            _ => Err(bad(
                "name one bundle: `id` (from a catalog), `path` (in your files) or `data` (base64)",
            )),
        }
    }

    /// A bundle in the user's files, read as the asking app (the VFS checks it may).
    pub(super) async fn read_user_file(
        &self,
        on: &OnBehalf,
        path: &str,
    ) -> Result<Vec<u8>, ErrorBody> {
        let mut bytes = Vec::new();
        loop {
            let ask = vfs::Read {
                path: path.to_owned(),
                offset: bytes.len() as u64,
                encoding: vfs::Encoding::Base64,
                ..vfs::Read::default()
            };
            let answer = self
                .requester
                .request_as(on, &ask, Duration::from_secs(30))
                .await
                .map_err(|e| ErrorBody::new(e.code, format!("reading {path}: {}", e.msg)))?;
            if answer.size > self.limits.packed_bytes {
                return Err(ErrorBody::new(
                    ErrorCode::TooLarge,
                    format!(
                        "{path} is larger than the {} MiB a bundle may be",
                        self.limits.packed_bytes >> 20
                    ),
                ));
            }
            let chunk = BASE64.decode(&answer.data).map_err(internal)?;
            bytes.extend_from_slice(&chunk);
            if answer.eof || chunk.is_empty() {
                return Ok(bytes);
            }
        }
    }

    /// Fetch, unpack and check a bundle. The caller holds a check slot: the bundle is
    /// fetched only once there is room for it in memory.
    pub(super) async fn check(
        &self,
        request: &Incoming,
        source: &api::Source,
    ) -> Result<Checked, ErrorBody> {
        let fetched = self.fetch(&request.on_behalf(), source).await?;
        let limits = self.limits;
        let bytes = fetched.bytes;
        let bundle = tokio::task::spawn_blocking(move || bundle::open(&bytes, limits))
            .await
            .map_err(internal)??;
        let manifest = &bundle.manifest;
        if let Some((id, version)) = &fetched.claimed
            && (*id != manifest.id || *version != manifest.version)
        {
            return Err(bad(format!(
                "the catalog offers {id} {version}, but the bundle's manifest says {} {}",
                manifest.id, manifest.version
            )));
        }
        if self.perms.catalog().is_builtin(&manifest.id) {
            return Err(ErrorBody::new(
                ErrorCode::Conflict,
                format!(
                    "{:?} is the id of a built-in app; an installed app cannot take it",
                    manifest.id
                ),
            ));
        }
        if let Some(cap) = NOT_FOR_INSTALLED.iter().find(|c| manifest.has(**c)) {
            return Err(ErrorBody::new(
                ErrorCode::Forbidden,
                format!(
                    "manifest.json: field `permissions`: an installed app may not ask for `{cap}`"
                ),
            ));
        }
        let (signature, warnings) = self.trust.judge(
            &bundle.sha256,
            fetched.publisher.as_deref(),
            fetched.signature.as_deref(),
        )?;
        Ok(Checked {
            bundle,
            signature,
            warnings,
        })
    }

    /// Compile and link the entry now, as the sandbox will run it: an entry that would not
    /// link (an import of the wrong type) is refused at install, and its first run starts
    /// at once. Compiled modules are shared by content hash.
    pub(super) async fn prepare(
        &self,
        request: &Incoming,
        checked: &Checked,
    ) -> Result<(), ErrorBody> {
        let Some(entry) = checked.bundle.manifest.entry.as_deref() else {
            return Ok(());
        };
        let Some(module) = checked.bundle.files.get(entry) else {
            return Ok(());
        };
        let ask = vm::Prepare {
            module: BASE64.encode(module),
        };
        self.requester
            .request_internal(&request.on_behalf(), &ask, PREPARE_TIMEOUT)
            .await
            .map(|_| ())
            .map_err(|e| {
                ErrorBody::new(
                    e.code,
                    format!("the entry {entry:?} cannot run here: {}", e.msg),
                )
            })
    }

    /// A turn for this user and a check slot, then the bundle checked and its entry
    /// compiled: what an inspection, an install and an update all start with.
    pub(super) async fn checked(
        &self,
        request: &Incoming,
        source: &api::Source,
    ) -> Result<(Checked, Turn, tokio::sync::SemaphorePermit<'_>), ErrorBody> {
        let turn = self.turn(request.caller.user_id)?;
        let slot = self.checking.acquire().await.map_err(internal)?;
        let checked = self.check(request, source).await?;
        self.prepare(request, &checked).await?;
        Ok((checked, turn, slot))
    }
}
