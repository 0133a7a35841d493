//! The saved login: server URL, device token and who we are, in
//! `session.json` inside the config directory, readable only by its owner.

use anyhow::{bail, Context};
use hark_proto::{Device, Pos, User};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What `hark login` remembers for the other commands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Session {
    pub(crate) server: String,
    pub(crate) token: String,
    pub(crate) user: User,
    pub(crate) device: Device,
    /// The last event position `hark chat` applied, so the next one catches
    /// up from there instead of replaying the whole stream.
    #[serde(default = "zero")]
    pub(crate) cursor: Pos,
    /// A CA file the server's certificate is verified against (besides the
    /// system's roots), as given at login with `--ca-file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ca_file: Option<PathBuf>,
    /// The key this device's end-to-end encryption store is encrypted with
    /// (hex, 32 bytes), made the first time an encrypted chat is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) crypto_key: Option<String>,
}

impl Session {
    /// The roots for `https://` / `wss://` (`None`: the system's).
    pub(crate) fn tls(&self) -> anyhow::Result<Option<hark_sdk::Tls>> {
        self.ca_file
            .as_deref()
            .map(hark_sdk::Tls::with_ca_file)
            .transpose()
            .map_err(Into::into)
    }
}

impl Session {
    /// Where this device's end-to-end encryption store lives.
    pub(crate) fn crypto_dir(&self) -> anyhow::Result<PathBuf> {
        Ok(config_dir()?
            .join("crypto")
            .join(format!("{}-{}", self.user.id, self.device.id)))
    }
}

fn zero() -> Pos {
    Pos(0)
}

/// `$HARK_CONFIG_DIR`, else `$XDG_CONFIG_HOME/hark`, else `~/.config/hark`.
pub(crate) fn config_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("HARK_CONFIG_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("hark"));
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".config").join("hark")),
        None => bail!("cannot find a config directory: set HARK_CONFIG_DIR or HOME"),
    }
}

fn session_path() -> anyhow::Result<PathBuf> {
    Ok(config_dir()?.join("session.json"))
}

impl Session {
    /// The saved session, or a clear error telling the user to log in.
    pub(crate) fn load() -> anyhow::Result<Session> {
        let path = session_path()?;
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!("not logged in: run `hark login <username>` first")
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// Write the session atomically with mode 0600 (it holds a bearer token).
    pub(crate) fn save(&self) -> anyhow::Result<()> {
        let path = session_path()?;
        let dir = path.parent().unwrap_or(Path::new("."));
        create_private_dir(dir)?;
        let tmp = dir.join(".session.json.tmp");
        let json = serde_json::to_vec_pretty(self)?;
        write_private(&tmp, &json).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }

    /// Forget the session (after logout) and this device's encryption
    /// store; a missing file is fine.
    pub(crate) fn remove() -> anyhow::Result<()> {
        if let Ok(session) = Session::load() {
            let store = session.crypto_dir()?;
            if store.exists() {
                std::fs::remove_dir_all(&store)
                    .with_context(|| format!("removing {}", store.display()))?;
            }
        }
        let path = session_path()?;
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("removing {}", path.display()))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // The mode above only applies to new files; tighten a leftover one too.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}
