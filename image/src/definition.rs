//! The appliance definition: strict, versioned TOML that pins every input of
//! an image by sha256 (Debian packages, upstream artifacts such as K3s and
//! WasmEdge, local files). Errors name the file and the key.

use serde::Deserialize;
use std::path::{Path, PathBuf};

pub const FORMAT: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum DefinitionError {
    #[error("{file}: {message}")]
    Read { file: PathBuf, message: String },
    #[error("{file}: {key}: {message}")]
    Invalid { file: PathBuf, key: String, message: String },
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    Amd64,
    Arm64,
}

impl Arch {
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    pub format: u32,
    pub name: String,
    pub arch: Arch,
    /// Debian packages whose files go into the image (kernel, busybox, ...).
    #[serde(default)]
    pub debian: Vec<DebianInput>,
    /// Upstream artifacts (K3s, WasmEdge, the runwasi shim), per architecture.
    #[serde(default)]
    pub artifact: Vec<ArtifactInput>,
    /// Partition sizes and the kernel command line (required by `build`).
    #[serde(default)]
    pub disk: Option<Disk>,
    /// What of the LMS goes in besides the binaries and the factory bundle (required by `build`).
    #[serde(default)]
    pub lms: Option<Lms>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disk {
    /// The EFI system partition (systemd-boot, kernel, initramfs), MiB.
    pub esp_mib: u64,
    /// The read-only system partition (squashfs), MiB. Fixed, so that every
    /// release has the same layout and `lms-image flash --keep-data` can
    /// replace the ESP and system partitions in place.
    pub system_mib: u64,
    /// The writable data partition (ext4), MiB.
    pub data_mib: u64,
    /// Kernel command line (systemd-boot entry and direct kernel boot).
    pub cmdline: String,
}

/// Local files of this repository, relative to the definition.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lms {
    /// The factory appliance settings file (the data partition's /etc/lms.toml).
    pub settings: PathBuf,
    /// htpasswd for the learner API (bcrypt), put next to the settings.
    #[serde(default)]
    pub credentials: Option<PathBuf>,
    /// What each of those credentials may do (xAPI scopes, lms-node's
    /// scopes.toml), put next to them.
    #[serde(default)]
    pub credential_scopes: Option<PathBuf>,
    /// People imported into the roster on first boot (CSV as `lms-node
    /// roster import` takes it), from /system/share/lms/roster.csv. For
    /// development images: the passwords are in the image.
    #[serde(default)]
    pub roster: Option<PathBuf>,
    /// The factory content pack (pack.toml, courses/, packages/): signed
    /// into the image as the factory content bundle, installed on first
    /// boot through lms-updater like the factory module bundle.
    #[serde(default)]
    pub content: Option<PathBuf>,
    /// The factory content bundle's version (content updates must be above it).
    #[serde(default = "default_content_version")]
    pub content_version: String,
    /// Module-bundle public keys trusted besides the key that signs the image.
    #[serde(default)]
    pub trusted_keys: Vec<PathBuf>,
    /// /etc/rancher/k3s/config.yaml.
    pub k3s_config: PathBuf,
    /// Gatekeeper ConstraintTemplates and Constraints (YAML files).
    pub policies: PathBuf,
    /// Auto-deploy manifests for k3s; each is checked against the policies.
    #[serde(default)]
    pub manifests: Option<PathBuf>,
}

fn default_content_version() -> String {
    "1.0.0".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DebianInput {
    pub name: String,
    /// The exact Debian version (`apt-get download name=version`).
    pub version: String,
    /// sha256 of the .deb file.
    pub sha256: String,
    /// Why the image carries it.
    #[serde(default)]
    pub purpose: Option<String>,
    /// Unpacked for the initramfs' programs (dmsetup) and their libraries.
    #[serde(default)]
    pub initramfs: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactInput {
    pub name: String,
    pub version: String,
    /// An optional artifact may be absent; the manifest and `inspect` say so.
    #[serde(default)]
    pub optional: bool,
    /// Where it goes on the system partition (mounted on /system).
    pub dest: String,
    /// A .tar.gz whose contents go into `dest` (a directory) instead of the file itself.
    #[serde(default)]
    pub unpack: bool,
    #[serde(default)]
    pub amd64: Option<Source>,
    #[serde(default)]
    pub arm64: Option<Source>,
}

/// Where an artifact comes from: an upstream URL and/or a local path, and
/// the sha256 both must match.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    #[serde(default)]
    pub url: Option<String>,
    /// Relative to the definition file.
    #[serde(default)]
    pub path: Option<PathBuf>,
    pub sha256: String,
}

impl ArtifactInput {
    pub fn source(&self, arch: Arch) -> Option<&Source> {
        match arch {
            Arch::Amd64 => self.amd64.as_ref(),
            Arch::Arm64 => self.arm64.as_ref(),
        }
    }
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Definition {
    pub fn load(file: &Path) -> Result<Definition, DefinitionError> {
        let text = std::fs::read_to_string(file)
            .map_err(|e| DefinitionError::Read { file: file.to_path_buf(), message: e.to_string() })?;
        let def: Definition = toml::from_str(&text).map_err(|e| DefinitionError::Read {
            file: file.to_path_buf(),
            message: e.to_string().trim().replace('\n', " "),
        })?;
        def.check(file)?;
        Ok(def)
    }

    fn check(&self, file: &Path) -> Result<(), DefinitionError> {
        let bad = |key: String, message: &str| {
            Err(DefinitionError::Invalid { file: file.to_path_buf(), key, message: message.to_string() })
        };
        if self.format != FORMAT {
            return bad("format".into(), &format!("format {} is not {FORMAT}", self.format));
        }
        for (i, d) in self.debian.iter().enumerate() {
            if !is_sha256(&d.sha256) {
                return bad(format!("debian[{i}].sha256"), "must be 64 lowercase hex digits");
            }
            if d.name.is_empty() || d.version.is_empty() {
                return bad(format!("debian[{i}]"), "name and version are required");
            }
        }
        for (i, a) in self.artifact.iter().enumerate() {
            let arch = self.arch.as_str();
            match a.source(self.arch) {
                None if !a.optional => {
                    return bad(
                        format!("artifact[{i}].{arch}"),
                        "required artifact has no source for this architecture",
                    );
                }
                None => {}
                Some(s) => {
                    if let Some(why) = s.sha256.strip_prefix("UNPINNED") {
                        let msg = format!("{} {} is not pinned yet{why}", a.name, a.version);
                        return bad(format!("artifact[{i}].{arch}.sha256"), &msg);
                    }
                    if !is_sha256(&s.sha256) {
                        return bad(format!("artifact[{i}].{arch}.sha256"), "must be 64 lowercase hex digits");
                    }
                    if s.url.is_none() && s.path.is_none() {
                        return bad(format!("artifact[{i}].{arch}"), "needs a url, a path, or both");
                    }
                }
            }
            if !a.dest.starts_with('/') {
                return bad(format!("artifact[{i}].dest"), "must be an absolute path in the image");
            }
        }
        if let Some(disk) = &self.disk
            && (disk.esp_mib < 16 || disk.data_mib < 8 || disk.system_mib < 1)
        {
            return bad("disk".into(), "esp_mib must be at least 16, system_mib at least 1 and data_mib at least 8");
        }
        if let Some(lms) = &self.lms {
            let mut local: Vec<(String, &PathBuf)> = vec![
                ("lms.settings".into(), &lms.settings),
                ("lms.k3s_config".into(), &lms.k3s_config),
                ("lms.policies".into(), &lms.policies),
            ];
            local.extend(lms.credentials.iter().map(|p| ("lms.credentials".into(), p)));
            local.extend(lms.content.iter().map(|p| ("lms.content".into(), p)));
            if let Err(e) = lms.content_version.parse::<lms_bundle::Version>() {
                return bad("lms.content_version".into(), &e);
            }
            local.extend(lms.manifests.iter().map(|p| ("lms.manifests".into(), p)));
            local.extend(lms.trusted_keys.iter().enumerate().map(|(i, p)| (format!("lms.trusted_keys[{i}]"), p)));
            for (key, rel) in local {
                self.local(file, &key, rel)?;
            }
        }
        Ok(())
    }

    /// The `[disk]` and `[lms]` tables, which an image build needs.
    pub fn image_parts(&self, file: &Path) -> Result<(&Disk, &Lms), DefinitionError> {
        let missing = |key: &str| DefinitionError::Invalid {
            file: file.to_path_buf(),
            key: key.to_string(),
            message: "missing: an image build needs it".into(),
        };
        Ok((self.disk.as_ref().ok_or_else(|| missing("disk"))?, self.lms.as_ref().ok_or_else(|| missing("lms"))?))
    }

    /// A local file or directory the definition names, relative to the definition.
    pub fn local(&self, file: &Path, key: &str, rel: &Path) -> Result<PathBuf, DefinitionError> {
        let p = file.parent().unwrap_or(Path::new(".")).join(rel);
        if p.exists() {
            Ok(p)
        } else {
            Err(DefinitionError::Invalid {
                file: file.to_path_buf(),
                key: key.to_string(),
                message: format!("{}: no such file or directory", p.display()),
            })
        }
    }
}
