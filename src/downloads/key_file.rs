//! The download-token key of the embedded default: generated once into the data folder, then reused.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// File name of the generated key inside the data folder.
pub const FILE_NAME: &str = "download-token.key";

#[derive(Debug, thiserror::Error)]
#[error("download token key file {path}: {source}")]
pub struct KeyFileError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Reads `<data_dir>/download-token.key`, creating it (64 hex digits, mode 0600) when
/// missing. Two processes starting at once on one data folder agree on one key: the
/// file is written whole under a temporary name and linked into place, which fails
/// for the loser, who then reads the winner's.
pub fn load_or_generate(data_dir: &Path) -> Result<Vec<u8>, KeyFileError> {
    let path = data_dir.join(FILE_NAME);
    let error = |source| KeyFileError {
        path: path.clone(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => return checked(&path, text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(error(e)),
    }
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| error(std::io::Error::other(e.to_string())))?;
    let text = format!("{}\n", hex::encode(secret));
    let tmp = data_dir.join(format!(".{FILE_NAME}.{}", uuid::Uuid::new_v4().simple()));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::hard_link(&tmp, &path)
    })();
    let _ = std::fs::remove_file(&tmp);
    match written {
        Ok(()) => {
            tracing::info!(path = %path.display(), "generated the download token key");
            Ok(text.trim_end().as_bytes().to_vec())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = std::fs::read_to_string(&path).map_err(error)?;
            checked(&path, text)
        }
        Err(e) => Err(error(e)),
    }
}

fn checked(path: &Path, text: String) -> Result<Vec<u8>, KeyFileError> {
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(path = %path.display(), "the download token key file is readable by others; chmod 600 it");
    }
    let key = text.trim_end_matches(['\r', '\n']).as_bytes().to_vec();
    if key.len() < super::token::MIN_KEY_LEN {
        return Err(KeyFileError {
            path: path.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the key is shorter than 32 characters",
            ),
        });
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_generated_once_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_generate(dir.path()).unwrap();
        assert_eq!(first.len(), 64);
        let mode = std::fs::metadata(dir.path().join(FILE_NAME))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(load_or_generate(dir.path()).unwrap(), first);
        let other = tempfile::tempdir().unwrap();
        assert_ne!(load_or_generate(other.path()).unwrap(), first);
        // Nothing but the key is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
