//! The local-folder backend: `objects/<key>` holds the bytes, `meta/<key>.json` caches size and sha256.
//!
//! Atomicity comes from rename(2): an upload is written and fsynced under `tmp/`
//! and renamed into place, so a crash leaves at worst an orphan in `tmp/` (swept on
//! open), never a half object under its key. The metadata file is a cache keyed by
//! the data file's identity (inode, size, mtime); when it does not match (a crash
//! between the two renames) the digest is recomputed from the bytes.

use std::io::SeekFrom;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use futures_util::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::fs;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio_util::io::ReaderStream;

use super::hashing::UploadDigest;
use super::{
    BlobEntry, BlobError, BlobKey, BlobMeta, BlobStream, ByteSource, PutOptions, PutTarget,
};

/// Orphaned temporary files older than this are removed when the store opens.
const TMP_MAX_AGE: Duration = Duration::from_secs(3600);
const READ_CHUNK: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct LocalBlobs {
    root: PathBuf,
}

/// The cached facts about one data file, valid while its identity is unchanged.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct MetaFile {
    size: u64,
    sha256: String,
    identity: FileIdentity,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq, Clone, Copy)]
struct FileIdentity {
    inode: u64,
    mtime_ns: i128,
}

impl FileIdentity {
    fn of(metadata: &std::fs::Metadata) -> FileIdentity {
        use std::os::unix::fs::MetadataExt;
        FileIdentity {
            inode: metadata.ino(),
            mtime_ns: i128::from(metadata.mtime()) * 1_000_000_000
                + i128::from(metadata.mtime_nsec()),
        }
    }
}

impl LocalBlobs {
    /// Opens (creating if needed) the blob folder and sweeps stale temporary files.
    pub async fn open(root: impl Into<PathBuf>) -> Result<LocalBlobs, BlobError> {
        let root = root.into();
        for sub in ["objects", "meta", "tmp"] {
            fs::create_dir_all(root.join(sub)).await?;
        }
        let blobs = LocalBlobs { root };
        blobs.sweep_tmp().await?;
        Ok(blobs)
    }

    async fn sweep_tmp(&self) -> Result<(), BlobError> {
        let mut entries = fs::read_dir(self.root.join("tmp")).await?;
        let now = SystemTime::now();
        while let Some(entry) = entries.next_entry().await? {
            let stale = entry
                .metadata()
                .await
                .and_then(|m| m.modified())
                .map(|modified| now.duration_since(modified).unwrap_or_default() > TMP_MAX_AGE)
                .unwrap_or(false);
            if stale {
                let _ = fs::remove_file(entry.path()).await;
            }
        }
        Ok(())
    }

    fn object_path(&self, key: &BlobKey) -> PathBuf {
        self.root.join("objects").join(key.as_str())
    }

    fn meta_path(&self, key: &BlobKey) -> PathBuf {
        self.root
            .join("meta")
            .join(format!("{}.json", key.as_str()))
    }

    fn tmp_path(&self) -> PathBuf {
        self.root.join("tmp").join(uuid::Uuid::new_v4().to_string())
    }

    pub async fn put(
        &self,
        target: PutTarget<'_>,
        mut body: impl ByteSource,
        options: &PutOptions,
    ) -> Result<BlobMeta, BlobError> {
        let tmp = self.tmp_path();
        let result = async {
            let mut file = fs::File::create(&tmp).await?;
            let mut digest = UploadDigest::new(options);
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(BlobError::Source)?;
                digest.update(&chunk)?;
                file.write_all(&chunk).await?;
            }
            file.sync_all().await?;
            drop(file);
            digest.finish(options)
        }
        .await;
        let (size, sha256) = match result {
            Ok(done) => done,
            Err(err) => {
                let _ = fs::remove_file(&tmp).await;
                return Err(err);
            }
        };

        let key = &match target.resolve(&sha256) {
            Ok(key) => key,
            Err(err) => {
                let _ = fs::remove_file(&tmp).await;
                return Err(err);
            }
        };
        let object = self.object_path(key);
        if let Err(err) = self.publish(&tmp, &object).await {
            let _ = fs::remove_file(&tmp).await;
            return Err(err);
        }
        let identity = FileIdentity::of(&fs::metadata(&object).await?);
        self.write_meta(
            key,
            &MetaFile {
                size,
                sha256: sha256.clone(),
                identity,
            },
        )
        .await?;
        Ok(BlobMeta {
            key: key.clone(),
            size,
            sha256: Some(sha256),
        })
    }

    /// Renames a complete temporary file into place and makes the rename durable.
    async fn publish(&self, tmp: &Path, target: &Path) -> Result<(), BlobError> {
        let parent = target.parent().expect("object paths have a parent");
        fs::create_dir_all(parent).await?;
        fs::rename(tmp, target).await?;
        fs::File::open(parent).await?.sync_all().await?;
        Ok(())
    }

    async fn write_meta(&self, key: &BlobKey, meta: &MetaFile) -> Result<(), BlobError> {
        let tmp = self.tmp_path();
        let json = serde_json::to_vec(meta).expect("meta serialises");
        fs::write(&tmp, json).await?;
        let result = self.publish(&tmp, &self.meta_path(key)).await;
        if result.is_err() {
            let _ = fs::remove_file(&tmp).await;
        }
        result
    }

    pub async fn head(&self, key: &BlobKey) -> Result<BlobMeta, BlobError> {
        let object = self.object_path(key);
        let metadata = match fs::metadata(&object).await {
            Ok(m) if m.is_file() => m,
            Ok(_) => return Err(BlobError::NotFound),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(BlobError::NotFound),
            Err(e) => return Err(e.into()),
        };
        let identity = FileIdentity::of(&metadata);
        let cached = fs::read(self.meta_path(key))
            .await
            .ok()
            .and_then(|bytes| serde_json::from_slice::<MetaFile>(&bytes).ok())
            .filter(|m| m.identity == identity && m.size == metadata.len());
        let meta = match cached {
            Some(meta) => meta,
            None => {
                let (size, sha256) = digest_file(&object).await?;
                let meta = MetaFile {
                    size,
                    sha256,
                    identity,
                };
                self.write_meta(key, &meta).await?;
                meta
            }
        };
        Ok(BlobMeta {
            key: key.clone(),
            size: meta.size,
            sha256: Some(meta.sha256),
        })
    }

    pub async fn get(&self, key: &BlobKey) -> Result<(BlobMeta, BlobStream), BlobError> {
        let meta = self.head(key).await?;
        let file = open_existing(&self.object_path(key)).await?;
        let stream = ReaderStream::with_capacity(file, READ_CHUNK)
            .map_err(BlobError::Io)
            .boxed();
        Ok((meta, stream))
    }

    pub async fn get_range(
        &self,
        key: &BlobKey,
        range: Range<u64>,
    ) -> Result<BlobStream, BlobError> {
        let mut file = open_existing(&self.object_path(key)).await?;
        let size = file.metadata().await?.len();
        if range.start >= size {
            return Err(BlobError::RangeNotSatisfiable);
        }
        let end = range.end.min(size);
        file.seek(SeekFrom::Start(range.start)).await?;
        let limited = file.take(end - range.start);
        Ok(ReaderStream::with_capacity(limited, READ_CHUNK)
            .map_err(BlobError::Io)
            .boxed())
    }

    pub async fn stream_range(
        &self,
        key: &BlobKey,
        range: Range<u64>,
        chunk: usize,
    ) -> Result<BlobStream, BlobError> {
        let file = open_existing(&self.object_path(key))
            .await?
            .into_std()
            .await;
        let size = file.metadata()?.len();
        if range.start >= size {
            return Err(BlobError::RangeNotSatisfiable);
        }
        Ok(super::file_stream::stream(
            file,
            range.start..range.end.min(size),
            chunk,
        ))
    }

    pub async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        for path in [self.object_path(key), self.meta_path(key)] {
            match fs::remove_file(&path).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    pub async fn list(&self, prefix: &str) -> Result<Vec<BlobEntry>, BlobError> {
        let objects = self.root.join("objects");
        let prefix = prefix.to_owned();
        // A directory walk is a burst of blocking syscalls: keep it off the async workers.
        tokio::task::spawn_blocking(move || {
            let mut found = Vec::new();
            walk(&objects, &objects, &prefix, &mut found)?;
            found.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(found)
        })
        .await
        .map_err(|e| BlobError::Backend(format!("listing task failed: {e}")))?
    }

    pub async fn check(&self) -> Result<(), BlobError> {
        let metadata = fs::metadata(self.root.join("objects")).await?;
        if !metadata.is_dir() {
            return Err(BlobError::Backend(
                "objects folder is not a directory".into(),
            ));
        }
        Ok(())
    }
}

async fn open_existing(path: &Path) -> Result<fs::File, BlobError> {
    match fs::File::open(path).await {
        Ok(file) => Ok(file),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(BlobError::NotFound),
        Err(e) => Err(e.into()),
    }
}

async fn digest_file(path: &Path) -> Result<(u64, String), BlobError> {
    let mut file = open_existing(path).await?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; READ_CHUNK];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((size, hex::encode(hasher.finalize())))
}

fn walk(
    root: &Path,
    dir: &Path,
    prefix: &str,
    found: &mut Vec<BlobEntry>,
) -> Result<(), BlobError> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let relative = path
            .strip_prefix(root)
            .expect("walked paths are under the root")
            .to_string_lossy()
            .into_owned();
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            // Only descend where keys with the prefix can live.
            let as_dir = format!("{relative}/");
            if as_dir.starts_with(prefix) || prefix.starts_with(&as_dir) {
                walk(root, &path, prefix, found)?;
            }
        } else if file_type.is_file()
            && relative.starts_with(prefix)
            && let Ok(key) = BlobKey::new(relative)
        {
            found.push(BlobEntry {
                key,
                size: entry.metadata()?.len(),
            });
        }
    }
    Ok(())
}
