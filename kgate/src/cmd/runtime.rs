//! The gateways this user runs on this machine, as `kgate serve --gateway-token auto` leaves word of
//! them, the way Jupyter keeps its runtime files: so that `kgate urls` and `kgate open` can
//! reach a gateway that needs its token, and nobody else can.
//!
//! Contract: [`publish`] writes `<dir>/gateway-<port>.json` (`{"port":..,"pid":..,"token":..}`)
//! with mode `0600` in a directory of mode `0700`, atomically (a temporary file renamed), and
//! [`Published`] removes it when dropped. [`lookup`] reads the entry for a port, and believes
//! it only while its process lives (`/proc/<pid>`), so a gateway killed without cleaning up is
//! not trusted. The directory is `$XDG_RUNTIME_DIR/kgate` (a per-user tmpfs on systemd
//! machines), else `$HOME/.kube/cache/kgate`. [`generate`] makes a token from 24 bytes of the
//! kernel's CSPRNG (`/dev/urandom`), as 48 hex digits.

use std::fs;
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use gateway::AccessToken;

/// What `--gateway-token` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub(crate) enum TokenMode {
    /// No token: any local program may use the gateway, as with `kubectl proxy`.
    #[default]
    Off,
    /// A random token, printed in the URLs and required from every request.
    Auto,
}

impl TokenMode {
    /// The token this mode asks for: a fresh one for `auto`.
    pub(crate) fn token(self) -> io::Result<Option<AccessToken>> {
        match self {
            Self::Off => Ok(None),
            Self::Auto => generate().map(Some),
        }
    }
}

/// A fresh token; see the module contract.
pub(crate) fn generate() -> io::Result<AccessToken> {
    let mut bytes = [0u8; 24];
    fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    AccessToken::new(&hex).map_err(io::Error::other)
}

/// `url` with the token as its `kgate-token` parameter, when there is one.
pub(crate) fn with_token(url: &str, token: Option<&AccessToken>) -> String {
    let Some(token) = token else {
        return url.to_owned();
    };
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{}={}", gateway::TOKEN_NAME, token.expose())
}

/// Where the runtime files live; `None` when neither variable is set.
pub(crate) fn dir() -> Option<PathBuf> {
    if let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(runtime).join("kgate"));
    }
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
    Some(
        PathBuf::from(home)
            .join(".kube")
            .join("cache")
            .join("kgate"),
    )
}

fn file_for(dir: &Path, port: u16) -> PathBuf {
    dir.join(format!("gateway-{port}.json"))
}

/// A published entry, removed when dropped.
#[derive(Debug)]
pub(crate) struct Published {
    path: PathBuf,
}

impl Drop for Published {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Entry {
    port: u16,
    pid: u32,
    token: String,
}

/// Leaves word that this process serves `port` with `token`; see the module contract.
pub(crate) fn publish(port: u16, token: &AccessToken) -> io::Result<Published> {
    let dir = dir().ok_or_else(|| {
        io::Error::other("neither XDG_RUNTIME_DIR nor HOME is set: nowhere to keep the token")
    })?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)?;
    // An existing directory keeps its mode; make sure only this user can list it.
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
    let entry = Entry {
        port,
        pid: std::process::id(),
        token: token.expose().to_owned(),
    };
    let text = serde_json::to_vec(&entry).map_err(io::Error::other)?;
    let path = file_for(&dir, port);
    let temporary = dir.join(format!(".gateway-{port}.{}.tmp", std::process::id()));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)?;
    file.write_all(&text)?;
    file.sync_all()?;
    fs::rename(&temporary, &path)?;
    Ok(Published { path })
}

/// The token of the gateway this user runs on `port`, if one left word and still runs.
pub(crate) fn lookup(port: u16) -> Option<AccessToken> {
    let text = fs::read(file_for(&dir()?, port)).ok()?;
    let entry: Entry = serde_json::from_slice(&text).ok()?;
    let alive = Path::new("/proc").join(entry.pid.to_string()).exists();
    if entry.port != port || !alive {
        return None;
    }
    AccessToken::new(&entry.token).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_fresh_hex_and_urls_carry_them() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 48);
        assert!(a.expose().bytes().all(|c| c.is_ascii_hexdigit()));
        let url = with_token("http://localhost:8001/.kgate/", Some(&a));
        assert_eq!(
            url,
            format!("http://localhost:8001/.kgate/?kgate-token={}", a.expose())
        );
        assert!(with_token("http://x/?a=1", Some(&a)).contains("?a=1&kgate-token="));
        assert_eq!(with_token("http://x/", None), "http://x/");
    }
}
