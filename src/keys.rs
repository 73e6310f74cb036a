//! Package-signing keys: private keys in a key folder (or one from configuration), public
//! keys registered in the store, and the key ring uploaded packages are checked against.
//!
//! A private key never enters the database. Generated keys are written to
//! `<keys_dir>/<key id>.key` (mode 0600, the `updraft package keygen` format); the key given
//! as `UPDRAFT_SIGNING_KEY` / `UPDRAFT_SIGNING_KEY_FILE` is kept in memory only.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;

use crate::config::Config;
use crate::package::signing::KeyError;
use crate::package::{KeyRing, PublicKey, SecretKey};
use crate::store::{SigningKeyRecord, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("key folder {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("private key {path} is unreadable: {source}")]
    BadFile { path: PathBuf, source: KeyError },
    #[error("the configured signing key is not a private key file's text: {0}")]
    BadConfigured(KeyError),
    #[error("no randomness for a new key: {0}")]
    Random(String),
    #[error("no active signing key: generate one with POST /api/v1/keys")]
    NoActiveKey,
    #[error(
        "the private half of the active key {0} is not in this replica's key folder (share the folder or set UPDRAFT_SIGNING_KEY_FILE)"
    )]
    PrivateKeyMissing(String),
}

/// Where private keys live. Cheap to clone.
#[derive(Debug, Clone)]
pub struct KeyFolder {
    dir: PathBuf,
    configured: Option<Arc<SecretKey>>,
}

impl KeyFolder {
    pub fn new(dir: impl Into<PathBuf>, configured: Option<SecretKey>) -> KeyFolder {
        KeyFolder {
            dir: dir.into(),
            configured: configured.map(Arc::new),
        }
    }

    pub fn from_config(config: &Config) -> Result<KeyFolder, KeysError> {
        let configured = config
            .keys
            .signing_key
            .as_ref()
            .map(|text| SecretKey::from_file_text(text.expose_secret()))
            .transpose()
            .map_err(KeysError::BadConfigured)?;
        Ok(KeyFolder::new(config.keys_dir(), configured))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The key given by configuration, if any.
    pub fn configured(&self) -> Option<&SecretKey> {
        self.configured.as_deref()
    }

    fn path_of(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.key"))
    }

    /// Makes a new key and writes its private half to the folder (atomically, mode 0600).
    pub fn generate(&self) -> Result<SecretKey, KeysError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeysError::Random(e.to_string()))?;
        let key = SecretKey::from_seed(seed);
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| KeysError::Io { path, source }
        };
        create_private_dir(&self.dir).map_err(io(&self.dir))?;
        let path = self.path_of(&key.public().id().to_string());
        let temp = self
            .dir
            .join(format!(".{}.tmp", uuid::Uuid::new_v4().simple()));
        write_private(&temp, key.to_file_text().as_bytes()).map_err(io(&temp))?;
        std::fs::rename(&temp, &path).map_err(io(&path))?;
        Ok(key)
    }

    /// The private key with this id: the configured one, or `<dir>/<id>.key`.
    pub fn load(&self, id: &str) -> Result<Option<SecretKey>, KeysError> {
        if let Some(key) = self.configured()
            && key.public().id().to_string() == id
        {
            return Ok(Some(
                SecretKey::from_file_text(&key.to_file_text()).expect("round trip"),
            ));
        }
        let path = self.path_of(id);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(KeysError::Io { path, source }),
        };
        let key = SecretKey::from_file_text(&text).map_err(|source| KeysError::BadFile {
            path: path.clone(),
            source,
        })?;
        if key.public().id().to_string() != id {
            return Ok(None);
        }
        Ok(Some(key))
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Registers the configured key (if any) as the active key. Run at start; idempotent.
pub async fn register_configured(
    store: &Store,
    folder: &KeyFolder,
    now: DateTime<Utc>,
) -> Result<(), KeysError> {
    if let Some(key) = folder.configured() {
        let public = key.public();
        store
            .signing_keys()
            .activate(
                &public.id().to_string(),
                &hex::encode(public.to_bytes()),
                now,
            )
            .await?;
    }
    Ok(())
}

/// Generates a key, stores its private half, and makes it the active signing key; the
/// previously active key stays valid for verification.
pub async fn rotate(
    store: &Store,
    folder: &KeyFolder,
    now: DateTime<Utc>,
) -> Result<SigningKeyRecord, KeysError> {
    let folder2 = folder.clone();
    let key = tokio::task::spawn_blocking(move || folder2.generate())
        .await
        .map_err(|e| KeysError::Random(e.to_string()))??;
    let public = key.public();
    Ok(store
        .signing_keys()
        .activate(
            &public.id().to_string(),
            &hex::encode(public.to_bytes()),
            now,
        )
        .await?)
}

/// The key that signs new builds, with its private half.
pub async fn active_signing_key(store: &Store, folder: &KeyFolder) -> Result<SecretKey, KeysError> {
    let active = store
        .signing_keys()
        .active()
        .await?
        .ok_or(KeysError::NoActiveKey)?;
    folder
        .load(&active.id)?
        .ok_or(KeysError::PrivateKeyMissing(active.id))
}

/// Every registered key that is not retired.
pub async fn trusted_ring(store: &Store) -> Result<KeyRing, StoreError> {
    let mut ring = KeyRing::default();
    for record in store.signing_keys().trusted().await? {
        if let Some(key) = public_from_hex(&record.public_key) {
            ring.add(key);
        }
    }
    Ok(ring)
}

/// A public key from 64 hex characters.
pub fn public_from_hex(hex_text: &str) -> Option<PublicKey> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(hex_text, &mut bytes).ok()?;
    PublicKey::from_bytes(&bytes).ok()
}
