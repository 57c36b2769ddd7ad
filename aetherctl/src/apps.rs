//! Apps: apps catalog|info|install|update|uninstall|list. Installing shows what the app asks
//! for and why, and asks on the terminal; `--yes` consents for scripts.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use clap::{Args, Subcommand};

use aether_proto::Capability;
use aether_proto::api::apps::{self, BundleInfo, Signature, Source};
use aether_proto::client::AppHandle;

use crate::output::{format_ms, print_answer, print_json, print_with};
use crate::{Failure, call};

#[derive(Subcommand)]
pub enum AppsCommand {
    /// What the configured catalogs offer (optionally matching words).
    Catalog { query: Option<String> },
    /// An app's details before installing: capabilities with their reasons, signature, size.
    Info(Which),
    /// Install an app from a catalog by id, or a local bundle file (.tar.gz).
    Install {
        #[command(flatten)]
        which: Which,
        /// Consent to every capability it asks for, without asking.
        #[arg(long, short)]
        yes: bool,
        /// Install an older version over a newer one.
        #[arg(long)]
        allow_downgrade: bool,
    },
    /// Update an app to the newest version its catalogs offer.
    Update {
        id: String,
        #[arg(long, short)]
        yes: bool,
    },
    /// Remove an app for you (its files go when no other user keeps it).
    Uninstall { id: String },
    /// The apps you can use: built in, and installed for you.
    List,
    /// Make a publisher's key pair: the private key to FILE (mode 0600), the public key printed.
    Keygen { file: std::path::PathBuf },
    /// Sign a bundle: print its signature (ed25519 over its SHA-256) for a catalog's index or
    /// `apps install --signature`.
    Sign {
        bundle: std::path::PathBuf,
        #[arg(long)]
        key: std::path::PathBuf,
    },
}

impl AppsCommand {
    /// Keys and signatures need no daemon.
    pub fn offline(&self, json: bool) -> Option<Result<(), Failure>> {
        match self {
            AppsCommand::Keygen { file } => Some(crate::publish::keygen(file, json)),
            AppsCommand::Sign { bundle, key } => Some(crate::publish::sign(bundle, key, json)),
            _ => None,
        }
    }
}

#[derive(Args)]
pub struct Which {
    /// An app id from a catalog, or the path of a local bundle file (ends in .tar.gz).
    #[arg(value_name = "APP_OR_BUNDLE")]
    wanted: String,
    /// A catalog app's version (default: the newest).
    #[arg(long)]
    version: Option<String>,
    /// A local bundle's ed25519 signature over its SHA-256 (base64), and its publisher.
    #[arg(long, requires = "publisher")]
    signature: Option<String>,
    #[arg(long)]
    publisher: Option<String>,
}

/// A local bundle up to this size goes in the request itself; a larger one is uploaded into
/// your files in chunks first (a request must fit one frame, 4 MiB by default).
const INLINE_BUNDLE_BYTES: u64 = 1 << 20;
/// Where a large local bundle is uploaded to (and removed from after the install).
const UPLOADS: &str = "/.aether/bundles";

impl Which {
    fn is_local(&self) -> bool {
        self.wanted.ends_with(".tar.gz") || self.wanted.contains('/')
    }

    /// The bundle to name: a catalog's app, a small local file in the request, or a large
    /// one uploaded first (returned too, to remove afterwards).
    async fn source(&self, app: &AppHandle) -> Result<(Source, Option<String>), Failure> {
        let mut source = Source {
            version: self.version.clone(),
            signature: self.signature.clone(),
            publisher: self.publisher.clone(),
            ..Source::default()
        };
        if !self.is_local() {
            source.id = Some(self.wanted.clone());
            return Ok((source, None));
        }
        let path = Path::new(&self.wanted);
        let size = std::fs::metadata(path)
            .map_err(|e| Failure::io(path, e))?
            .len();
        if size <= INLINE_BUNDLE_BYTES {
            let bytes = std::fs::read(path).map_err(|e| Failure::io(path, e))?;
            source.data = Some(BASE64.encode(bytes));
            return Ok((source, None));
        }
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| {
                n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            })
            .unwrap_or("bundle.tar.gz");
        let remote = format!("{UPLOADS}/{}-{name}", std::process::id());
        crate::fs::upload(app, &self.wanted, &remote, None, true).await?;
        source.path = Some(remote.clone());
        Ok((source, Some(remote)))
    }
}

/// Remove a bundle uploaded for an install (whatever came of it).
async fn forget_upload(app: &AppHandle, uploaded: Option<String>) {
    if let Some(path) = uploaded {
        let _ = app
            .request(&aether_proto::api::vfs::Remove {
                path,
                recursive: false,
            })
            .await;
    }
}

fn signature_text(signature: &Signature) -> String {
    match signature {
        Signature::Verified { publisher } => format!("signed by {publisher} (verified)"),
        Signature::UnknownPublisher { publisher } => {
            format!("signed by {publisher}, whose key this daemon does not have")
        }
        Signature::Unsigned => "not signed".into(),
    }
}

/// What installing means, as the consent prompt shows it.
fn describe(info: &BundleInfo) -> String {
    let mut out = format!("{} {} ({})\n", info.name, info.version, info.id);
    if let Some(description) = &info.description {
        out.push_str(&format!("  {description}\n"));
    }
    out.push_str(&format!(
        "  {}; {} bytes; sha256 {}\n",
        signature_text(&info.signature),
        info.size,
        &info.sha256[..16]
    ));
    if let Some(installed) = &info.installed {
        out.push_str(&format!("  installed: {installed}\n"));
    }
    if info.capabilities.is_empty() {
        out.push_str("  asks for nothing beyond running\n");
    }
    for asked in &info.capabilities {
        let new = if info.needs_consent.contains(&asked.capability) {
            " (new)"
        } else {
            ""
        };
        out.push_str(&format!(
            "  may {}{new}: {}\n",
            asked.capability,
            asked.described()
        ));
    }
    for warning in &info.warnings {
        out.push_str(&format!("  warning: {warning}\n"));
    }
    out
}

/// The user's consent to what `info` asks for: `--yes`, or a y on the terminal.
fn consent(info: &BundleInfo, yes: bool) -> Result<Vec<Capability>, Failure> {
    if yes || info.needs_consent.is_empty() {
        return Ok(info.needs_consent.clone());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure::Usage(format!(
            "{} asks for {}: consent with --yes (no terminal to ask on)",
            info.id,
            info.needs_consent
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    eprint!("{}Allow this and install? [y/N] ", describe(info));
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Failure::Usage(format!("stdin: {e}")))?;
    match line.trim() {
        "y" | "Y" | "yes" => Ok(info.needs_consent.clone()),
        _ => Err(Failure::Usage("declined; nothing was installed".into())),
    }
}

/// What the catalogs offer, a line an app, and what went wrong with a catalog (stderr).
fn print_catalog(answer: &apps::CatalogAnswer) {
    for source in &answer.catalogs {
        if let Some(error) = &source.error {
            eprintln!("catalog {}: {error}", source.location);
        }
    }
    for app in &answer.apps {
        let state = match &app.installed {
            Some(v) if *v == app.version => "installed".to_owned(),
            Some(v) => format!("{v} installed, update available"),
            None => String::new(),
        };
        let caps: Vec<String> = app
            .capabilities
            .iter()
            .map(|c| c.capability.to_string())
            .collect();
        outln!(
            "{:<16} {:<9} {:<40} [{}] {}",
            app.id,
            app.version,
            app.description.as_deref().unwrap_or(&app.name),
            caps.join(", "),
            state
        );
    }
}

pub async fn run(command: &AppsCommand, app: &AppHandle, json: bool) -> Result<(), Failure> {
    match command {
        AppsCommand::Catalog { query } => {
            let answer = call(
                app,
                &apps::Catalog {
                    query: query.clone(),
                },
            )
            .await?;
            print_with(json, &answer, print_catalog);
        }
        AppsCommand::Info(which) => {
            let (source, uploaded) = which.source(app).await?;
            let info = call(app, &apps::Inspect(source)).await;
            forget_upload(app, uploaded).await;
            print_answer(json, &info?, |info| describe(info).trim_end().to_owned());
        }
        AppsCommand::Install {
            which,
            yes,
            allow_downgrade,
        } => {
            let (source, uploaded) = which.source(app).await?;
            let installed = async {
                let info = call(app, &apps::Inspect(source.clone())).await?;
                let consented = consent(&info, *yes)?;
                let mut install = apps::Install::of(source, consented);
                install.allow_downgrade = *allow_downgrade;
                // What was shown is what gets installed.
                install.sha256 = Some(info.sha256.clone());
                call(app, &install).await
            }
            .await;
            forget_upload(app, uploaded).await;
            print_answer(json, &installed?, installed_text);
        }
        AppsCommand::Update { id, yes } => {
            let source = Source {
                id: Some(id.clone()),
                ..Source::default()
            };
            let info = call(app, &apps::Inspect(source)).await?;
            let consented = consent(&info, *yes)?;
            let done = call(
                app,
                &apps::Update {
                    id: id.clone(),
                    consent: consented,
                    sha256: Some(info.sha256.clone()),
                },
            )
            .await?;
            print_answer(json, &done, installed_text);
        }
        AppsCommand::Uninstall { id } => {
            let gone = call(app, &apps::Uninstall { id: id.clone() }).await?;
            print_answer(json, &gone, |gone| {
                let mut text = format!("uninstalled {} {}", gone.id, gone.version);
                if gone.tokens_revoked > 0 {
                    text.push_str(&format!(" ({} tokens revoked)", gone.tokens_revoked));
                }
                text
            });
        }
        AppsCommand::Keygen { .. } | AppsCommand::Sign { .. } => {}
        AppsCommand::List => {
            let list = call(app, &apps::List {}).await?;
            if json {
                print_json(&list);
                return Ok(());
            }
            for info in &list.apps {
                let origin = match info.installed_at_ms {
                    Some(ms) => format!("installed {}", format_ms(ms as i64)),
                    None => "built in".into(),
                };
                let caps: Vec<String> = info.capabilities.iter().map(ToString::to_string).collect();
                outln!(
                    "{:<16} {:<9} {:<28} [{}]",
                    info.id,
                    info.version,
                    origin,
                    caps.join(", ")
                );
            }
        }
    }
    Ok(())
}

fn installed_text(done: &apps::Installed) -> String {
    let mut text = match &done.replaced {
        Some(old) if *old != done.version => {
            format!(
                "updated {} {old} -> {} in {} ms",
                done.id, done.version, done.took_ms
            )
        }
        _ => format!(
            "installed {} {} in {} ms",
            done.id, done.version, done.took_ms
        ),
    };
    for warning in &done.warnings {
        text.push_str(&format!("\nwarning: {warning}"));
    }
    text.push_str(&format!(
        "\nrun it: aetherctl vm run --installed {}",
        done.id
    ));
    text
}
