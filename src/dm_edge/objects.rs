//! Object bytes for the engine and from it: the window of a value the next reply needs (a
//! ranged read of the blob store, or a slice of an inline value), and the publication of a
//! device's Large Object result from its staged chunks into the blob store.

use bytes::Bytes;
use futures_util::StreamExt as _;

use super::DmError;
use crate::blob::{BlobError, BlobKey, BlobStore, PutOptions};
use crate::dm::large_object::{B64Stream, chain_digest};
use crate::dm::session::{ValueData, WindowRequest};
use crate::store::{StoreError, Tx};

/// Where published results go: `dm-results/<sha256 of the content>`.
const RESULTS_PREFIX: &str = "dm-results/";
/// Staged chunks read per database round trip while publishing.
const CHUNKS_PER_READ: u64 = 8;

/// What a window read found.
pub(super) enum WindowRead {
    Bytes(Vec<u8>),
    /// The value is gone (its blob was deleted, or the operation's row): the operation
    /// cannot be delivered.
    Missing(String),
}

/// Reads the bytes `request` names: a ranged get for a blob value, a slice of an inline one.
pub(super) async fn read_window(
    store: &crate::store::Store,
    blobs: &BlobStore,
    request: &WindowRequest,
    queued: Option<&crate::dm::session::Operation>,
) -> Result<WindowRead, DmError> {
    let id = parse_op_id(&request.op_id)?;
    // A queued operation is at hand (and may have been queued by this very message's
    // transaction, invisible to the pool); one in flight is read from the store.
    let stored;
    let operation = match queued {
        Some(op) => op,
        None => {
            let Some(record) = store.operations().get(id).await? else {
                return Ok(WindowRead::Missing(format!(
                    "operation {id} no longer exists"
                )));
            };
            stored = record.operation;
            &stored
        }
    };
    let Some(value) = operation.value() else {
        return Ok(WindowRead::Missing(format!(
            "operation {id} carries no value"
        )));
    };
    let end = request.offset + request.len;
    match &value.data {
        ValueData::Blob(b) => {
            if request.len == 0 {
                return Ok(WindowRead::Bytes(Vec::new()));
            }
            let key = BlobKey::new(b.key.clone()).map_err(DmError::Blob)?;
            let mut stream = match blobs.get_range(&key, request.offset..end).await {
                Ok(s) => s,
                Err(BlobError::NotFound | BlobError::RangeNotSatisfiable) => {
                    return Ok(WindowRead::Missing(format!(
                        "the value's object {} is missing or shorter than {} bytes",
                        b.key, b.size
                    )));
                }
                Err(e) => return Err(DmError::Blob(e)),
            };
            let mut bytes = Vec::with_capacity(request.len as usize);
            while let Some(part) = stream.next().await {
                bytes.extend_from_slice(&part.map_err(DmError::Blob)?);
            }
            if bytes.len() as u64 != request.len {
                return Ok(WindowRead::Missing(format!(
                    "the value's object {} is shorter than {} bytes",
                    b.key, b.size
                )));
            }
            Ok(WindowRead::Bytes(bytes))
        }
        inline => {
            let data = inline.inline().unwrap_or_default();
            let range = request.offset as usize..(end as usize).min(data.len());
            match data.get(range) {
                Some(slice) => Ok(WindowRead::Bytes(slice.to_vec())),
                None => Ok(WindowRead::Missing(format!(
                    "operation {id}'s value is shorter than offset {}",
                    request.offset
                ))),
            }
        }
    }
}

/// A staged Large Object result, as the engine described it on its last chunk.
pub(super) struct StagedObject<'a> {
    pub op_id: i64,
    pub b64: bool,
    pub transmitted_len: u64,
    pub chunks: u32,
    pub chain: &'a str,
}

/// The published object: where it is and what it holds.
pub(super) struct Published {
    pub key: String,
    pub size: u64,
    pub sha256: String,
}

/// Why staged chunks cannot be published.
#[derive(Debug, thiserror::Error)]
pub(super) enum PublishError {
    #[error("staged chunks differ from the ones accepted ({0})")]
    Mismatch(String),
    #[error("the object's base64 does not decode: {0}")]
    BadBase64(base64::DecodeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Blob(#[from] BlobError),
}

/// Streams the staged chunks of `obj` (read in pages from the unit of work, which already
/// holds this message's last chunk) into the blob store, checking them against the digest
/// chain and length the engine kept, decoding base64 on the way.
pub(super) async fn publish(
    tx: &Tx,
    blobs: &BlobStore,
    obj: &StagedObject<'_>,
) -> Result<Published, PublishError> {
    struct Reader<'t> {
        tx: &'t Tx,
        op_id: i64,
        next: u32,
        page: std::vec::IntoIter<(u32, Vec<u8>)>,
        chain: String,
        transmitted: u64,
        decoder: Option<B64Stream>,
        done: bool,
    }
    let reader = Reader {
        tx,
        op_id: obj.op_id,
        next: 0,
        page: Vec::new().into_iter(),
        chain: String::new(),
        transmitted: 0,
        decoder: obj.b64.then(B64Stream::default),
        done: false,
    };
    let failure: std::sync::Arc<std::sync::Mutex<Option<PublishError>>> = Default::default();
    let fail = failure.clone();
    let stream = futures_util::stream::unfold(reader, move |mut r| {
        let fail = fail.clone();
        async move {
            if r.done {
                return None;
            }
            let step: Result<Option<Vec<u8>>, PublishError> = async {
                if r.next == obj.chunks {
                    r.done = true;
                    if r.chain != obj.chain || r.transmitted != obj.transmitted_len {
                        return Err(PublishError::Mismatch(format!(
                            "{} bytes staged, {} accepted",
                            r.transmitted, obj.transmitted_len
                        )));
                    }
                    return match r.decoder.take() {
                        Some(d) => d.finish().map(Some).map_err(PublishError::BadBase64),
                        None => Ok(None),
                    };
                }
                let (seq, bytes) = match r.page.next() {
                    Some(c) => c,
                    None => {
                        let page =
                            r.tx.operations()
                                .staged_chunks(r.op_id, r.next, CHUNKS_PER_READ)
                                .await?;
                        r.page = page.into_iter();
                        r.page.next().ok_or_else(|| {
                            PublishError::Mismatch(format!("chunk {} is missing", r.next))
                        })?
                    }
                };
                if seq != r.next {
                    return Err(PublishError::Mismatch(format!(
                        "chunk {} is missing",
                        r.next
                    )));
                }
                r.next += 1;
                r.chain = chain_digest(&r.chain, &bytes);
                r.transmitted += bytes.len() as u64;
                match &mut r.decoder {
                    Some(d) => d.push(&bytes).map(Some).map_err(PublishError::BadBase64),
                    None => Ok(Some(bytes)),
                }
            }
            .await;
            match step {
                Ok(Some(bytes)) => Some((Ok(Bytes::from(bytes)), r)),
                Ok(None) => None,
                Err(e) => {
                    let msg = e.to_string();
                    *fail.lock().expect("not poisoned") = Some(e);
                    r.done = true;
                    Some((Err(std::io::Error::other(msg)), r))
                }
            }
        }
    });
    let put = blobs
        .put_content_addressed(RESULTS_PREFIX, Box::pin(stream), &PutOptions::default())
        .await;
    if let Some(e) = failure.lock().expect("not poisoned").take() {
        return Err(e);
    }
    let meta = put?;
    // Content-addressed: the key ends in the content's sha256.
    let key = meta.key.as_str().to_owned();
    let sha256 = key[RESULTS_PREFIX.len()..].to_owned();
    Ok(Published {
        key,
        size: meta.size,
        sha256,
    })
}

/// Operation ids in the engine's state and effects are our own database keys.
pub(super) fn parse_op_id(op_id: &str) -> Result<i64, DmError> {
    op_id.parse().map_err(|_| {
        tracing::error!(
            dm.op_id = op_id,
            "operation id in the DM session is not a database key"
        );
        DmError::Store(StoreError::Corrupt(format!(
            "operation id {op_id:?} is not a database key"
        )))
    })
}
