//! The S3 backend (aws-sdk-s3): AWS itself or any S3-compatible server (endpoint override, path-style addressing).
//!
//! Uploads: one `PutObject` below the multipart threshold, otherwise `CreateMultipartUpload` + `UploadPart`s read
//! straight from the file + `CompleteMultipartUpload` (an abandoned upload is aborted, best effort). Every request
//! carries `Content-MD5`, so the server refuses a corrupted body; the object carries its SHA-256 as metadata
//! (`x-amz-meta-sha256`); and after the upload a `HeadObject` must show the right size, that SHA-256 and (unless
//! SSE-KMS, where ETags are not MD5s) the ETag S3 computes for exactly these bytes. Before sending, a `HeadObject`
//! that already shows this SHA-256 and size skips the upload: the retry after a crash between "uploaded" and
//! "recorded in the database" sends nothing twice.
//!
//! Credentials: the configured key pair if given, else the standard AWS chain (environment, profile files, web
//! identity, ECS/EC2 metadata). TLS is rustls on *ring*. The SDK's own retries are kept small: the uploader owns
//! the long retry schedule. Not here: lifecycle rules, object lock, versioning (configure those on the bucket).

use std::path::Path;
use std::time::Duration;

use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation, SharedCredentialsProvider,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, ServerSideEncryption};
use aws_sdk_s3::Client;
use aws_smithy_http_client::tls;

use super::{Body, ByteRange, FileDigest, ObjectInfo, ObjectKey, PutOutcome, RecordingStore, StorageError, StoreFuture};

/// S3's smallest part (except the last).
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
const SHA256_META: &str = "sha256";

/// Server-side encryption to request on every upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sse {
    /// SSE-S3 (`AES256`).
    S3Managed,
    /// SSE-KMS with the given key id or ARN, or the bucket's default KMS key when `None`.
    Kms(Option<String>),
}

#[derive(Debug, Clone)]
pub struct S3Config {
    pub bucket: String,
    /// Prepended to every key ("recordings/" → `recordings/acme/2024/06/x-message.wav`); "" for none.
    pub prefix: String,
    /// Region; `None` takes the chain's (AWS_REGION, profile), or `us-east-1` with a custom endpoint.
    pub region: Option<String>,
    /// Endpoint URL of an S3-compatible server, e.g. `http://127.0.0.1:9000`.
    pub endpoint: Option<String>,
    /// `http://host/bucket/key` instead of `http://bucket.host/key`; most S3-compatible servers need it.
    pub path_style: bool,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub sse: Option<Sse>,
    /// Files of at least this many bytes go up in parts.
    pub multipart_threshold: u64,
    /// Size of each part (at least 5 MiB).
    pub part_size: u64,
}

impl S3Config {
    pub fn new(bucket: impl Into<String>) -> S3Config {
        S3Config {
            bucket: bucket.into(),
            prefix: String::new(),
            region: None,
            endpoint: None,
            path_style: false,
            access_key_id: None,
            secret_access_key: None,
            sse: None,
            multipart_threshold: 16 * 1024 * 1024,
            part_size: 8 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    prefix: String,
    sse: Option<Sse>,
    multipart_threshold: u64,
    part_size: u64,
}

impl S3Store {
    /// Builds the client. Makes no request: a bucket that is unreachable now is retried by the uploader later.
    pub async fn connect(cfg: S3Config) -> Result<S3Store, StorageError> {
        if cfg.bucket.trim().is_empty() {
            return Err(StorageError::Config("storage.s3.bucket must not be empty".into()));
        }
        if cfg.part_size < MIN_PART_SIZE {
            return Err(StorageError::Config(format!("the S3 part size must be at least {MIN_PART_SIZE} bytes")));
        }
        if cfg.access_key_id.is_some() != cfg.secret_access_key.is_some() {
            return Err(StorageError::Config(
                "storage.s3.access_key_id and storage.s3.secret_access_key must be set together".into(),
            ));
        }
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring))
            .build_https();
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http.clone());
        if let Some(region) = &cfg.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let (Some(id), Some(secret)) = (&cfg.access_key_id, &cfg.secret_access_key) {
            loader = loader.credentials_provider(Credentials::new(id, secret, None, None, "oncall-config"));
        }
        let shared = loader.load().await;
        let mut builder = aws_sdk_s3::config::Builder::from(&shared)
            .http_client(http)
            .force_path_style(cfg.path_style)
            // Only what S3 requires: some S3-compatible servers reject the SDK's default CRC32 trailers. Integrity
            // is covered by Content-MD5 and the verification after the upload.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .retry_config(aws_sdk_s3::config::retry::RetryConfig::standard().with_max_attempts(2))
            .timeout_config(
                aws_sdk_s3::config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .read_timeout(Duration::from_secs(60))
                    .build(),
            );
        if let Some(endpoint) = &cfg.endpoint {
            builder = builder.endpoint_url(endpoint);
            if shared.region().is_none() {
                builder = builder.region(Region::new("us-east-1"));
            }
        } else if shared.region().is_none() {
            return Err(StorageError::Config("storage.s3.region is not set and AWS_REGION is not either".into()));
        }
        if shared.credentials_provider().is_none() {
            builder = builder.credentials_provider(SharedCredentialsProvider::new(Credentials::new("", "", None, None, "none")));
        }
        let mut prefix = cfg.prefix.trim_matches('/').to_string();
        if !prefix.is_empty() {
            prefix.push('/');
        }
        Ok(S3Store {
            client: Client::from_conf(builder.build()),
            bucket: cfg.bucket,
            prefix,
            sse: cfg.sse,
            multipart_threshold: cfg.multipart_threshold.max(1),
            part_size: cfg.part_size,
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The full S3 key of `key`, with the prefix.
    pub fn s3_key(&self, key: &ObjectKey) -> String {
        format!("{}{}", self.prefix, key.as_str())
    }

    fn sse_type(&self) -> Option<ServerSideEncryption> {
        match self.sse {
            None => None,
            Some(Sse::S3Managed) => Some(ServerSideEncryption::Aes256),
            Some(Sse::Kms(_)) => Some(ServerSideEncryption::AwsKms),
        }
    }

    fn kms_key(&self) -> Option<String> {
        match &self.sse {
            Some(Sse::Kms(k)) => k.clone(),
            _ => None,
        }
    }

    async fn head_raw(&self, key: &ObjectKey) -> Result<Option<(u64, Option<String>, Option<String>)>, StorageError> {
        match self.client.head_object().bucket(&self.bucket).key(self.s3_key(key)).send().await {
            Ok(out) => {
                let size = out.content_length().unwrap_or(0).max(0) as u64;
                let sha = out.metadata().and_then(|m| m.get(SHA256_META)).cloned();
                let etag = out.e_tag().map(|e| e.trim_matches('"').to_string());
                Ok(Some((size, sha, etag)))
            }
            Err(e) if status_of(&e) == Some(404) => Ok(None),
            Err(e) => Err(backend("HeadObject", e)),
        }
    }

    async fn put_single(&self, key: &ObjectKey, local: &Path, digest: &FileDigest) -> Result<(), StorageError> {
        let body = ByteStream::from_path(local).await.map_err(|e| StorageError::Backend(format!("reading {}: {e}", local.display())))?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(self.s3_key(key))
            .content_type("audio/wav")
            .content_length(digest.size as i64)
            .content_md5(base64(&digest.md5))
            .metadata(SHA256_META, digest.sha256_hex())
            .set_server_side_encryption(self.sse_type())
            .set_ssekms_key_id(self.kms_key())
            .body(body)
            .send()
            .await
            .map_err(|e| backend("PutObject", e))?;
        Ok(())
    }

    async fn put_multipart(&self, key: &ObjectKey, local: &Path, digest: &FileDigest) -> Result<(), StorageError> {
        let s3_key = self.s3_key(key);
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(&s3_key)
            .content_type("audio/wav")
            .metadata(SHA256_META, digest.sha256_hex())
            .set_server_side_encryption(self.sse_type())
            .set_ssekms_key_id(self.kms_key())
            .send()
            .await
            .map_err(|e| backend("CreateMultipartUpload", e))?;
        let upload_id = created.upload_id().ok_or_else(|| StorageError::Backend("no multipart upload id".into()))?.to_string();
        let result = self.upload_parts(&s3_key, &upload_id, local, digest).await;
        if result.is_err() {
            // Best effort: the server may be the thing that failed. Leftover parts are invisible to readers; a
            // bucket lifecycle rule (AbortIncompleteMultipartUpload) cleans them up.
            let abort = self.client.abort_multipart_upload().bucket(&self.bucket).key(&s3_key).upload_id(&upload_id).send();
            if let Err(e) = abort.await {
                tracing::debug!(key = %key, error = %backend("AbortMultipartUpload", e), "could not abort the multipart upload");
            }
        }
        result
    }

    async fn upload_parts(&self, s3_key: &str, upload_id: &str, local: &Path, digest: &FileDigest) -> Result<(), StorageError> {
        let mut parts = Vec::with_capacity(digest.part_md5s.len());
        for (i, md5) in digest.part_md5s.iter().enumerate() {
            let offset = i as u64 * self.part_size;
            let len = self.part_size.min(digest.size - offset);
            let body = ByteStream::read_from()
                .path(local)
                .offset(offset)
                .length(Length::Exact(len))
                .build()
                .await
                .map_err(|e| StorageError::Backend(format!("reading {}: {e}", local.display())))?;
            let number = i as i32 + 1;
            let out = self
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(s3_key)
                .upload_id(upload_id)
                .part_number(number)
                .content_length(len as i64)
                .content_md5(base64(md5))
                .body(body)
                .send()
                .await
                .map_err(|e| backend("UploadPart", e))?;
            parts.push(CompletedPart::builder().part_number(number).set_e_tag(out.e_tag().map(str::to_string)).build());
        }
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(s3_key)
            .upload_id(upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await
            .map_err(|e| backend("CompleteMultipartUpload", e))?;
        Ok(())
    }

    async fn put_verified(&self, key: &ObjectKey, local: &Path) -> Result<PutOutcome, StorageError> {
        let digest = FileDigest::of_file_async(local.to_path_buf(), self.part_size).await?;
        let sha = digest.sha256_hex();
        let outcome = |already_present| PutOutcome { key: key.clone(), size: digest.size, sha256: sha.clone(), already_present };
        if let Some((size, Some(stored_sha), _)) = self.head_raw(key).await? {
            if size == digest.size && stored_sha == sha {
                return Ok(outcome(true));
            }
        }
        let multipart = digest.size >= self.multipart_threshold && digest.size > self.part_size;
        if multipart {
            self.put_multipart(key, local, &digest).await?;
        } else {
            self.put_single(key, local, &digest).await?;
        }
        let integrity = |detail: String| StorageError::Integrity { key: key.to_string(), detail };
        let Some((size, stored_sha, etag)) = self.head_raw(key).await? else {
            return Err(integrity("the object is missing right after the upload".into()));
        };
        if size != digest.size {
            return Err(integrity(format!("stored {size} bytes, the file has {}", digest.size)));
        }
        if stored_sha.as_deref().is_some_and(|s| s != sha) {
            return Err(integrity("the stored SHA-256 differs".into()));
        }
        if !matches!(self.sse, Some(Sse::Kms(_))) {
            let expected = if multipart { digest.multipart_etag() } else { digest.single_etag() };
            if let Some(etag) = etag.filter(|e| !e.is_empty()) {
                if etag != expected {
                    return Err(integrity(format!("ETag {etag}, expected {expected}")));
                }
            }
        }
        Ok(outcome(false))
    }
}

impl RecordingStore for S3Store {
    fn backend_name(&self) -> &'static str {
        "s3"
    }

    fn put<'a>(&'a self, key: &'a ObjectKey, local: &'a Path) -> StoreFuture<'a, PutOutcome> {
        Box::pin(self.put_verified(key, local))
    }

    fn head<'a>(&'a self, key: &'a ObjectKey) -> StoreFuture<'a, Option<ObjectInfo>> {
        Box::pin(async move {
            Ok(self.head_raw(key).await?.map(|(size, sha256, _)| ObjectInfo { key: key.clone(), size, sha256 }))
        })
    }

    fn get<'a>(&'a self, key: &'a ObjectKey, range: Option<ByteRange>) -> StoreFuture<'a, Body> {
        Box::pin(async move {
            let req = self.client.get_object().bucket(&self.bucket).key(self.s3_key(key));
            let req = match range {
                Some(r) => req.range(r.to_string()),
                None => req,
            };
            match req.send().await {
                Ok(out) => Ok(Box::pin(out.body.into_async_read()) as Body),
                Err(e) if status_of(&e) == Some(404) => Err(StorageError::NotFound(key.to_string())),
                Err(e) => Err(backend("GetObject", e)),
            }
        })
    }

    fn delete<'a>(&'a self, key: &'a ObjectKey) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.client
                .delete_object()
                .bucket(&self.bucket)
                .key(self.s3_key(key))
                .send()
                .await
                .map_err(|e| backend("DeleteObject", e))?;
            Ok(())
        })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> StoreFuture<'a, Vec<ObjectInfo>> {
        Box::pin(async move {
            let mut out = Vec::new();
            let mut token = None;
            loop {
                let page = self
                    .client
                    .list_objects_v2()
                    .bucket(&self.bucket)
                    .prefix(format!("{}{prefix}", self.prefix))
                    .set_continuation_token(token.take())
                    .send()
                    .await
                    .map_err(|e| backend("ListObjectsV2", e))?;
                for obj in page.contents() {
                    let Some(full) = obj.key() else { continue };
                    let Some(rel) = full.strip_prefix(&self.prefix) else { continue };
                    match ObjectKey::new(rel) {
                        Ok(key) => out.push(ObjectInfo { key, size: obj.size().unwrap_or(0).max(0) as u64, sha256: None }),
                        Err(_) => tracing::debug!(key = full, "skipping an object whose key is not a recording key"),
                    }
                }
                match page.next_continuation_token() {
                    Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
                    _ => break,
                }
            }
            out.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(out)
        })
    }

    fn presign_get<'a>(&'a self, key: &'a ObjectKey, ttl: Duration) -> StoreFuture<'a, Option<String>> {
        Box::pin(async move {
            let cfg = PresigningConfig::expires_in(ttl).map_err(|e| StorageError::Config(format!("presign TTL: {e}")))?;
            let req = self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(self.s3_key(key))
                .presigned(cfg)
                .await
                .map_err(|e| backend("presign GetObject", e))?;
            Ok(Some(req.uri().to_string()))
        })
    }
}

fn status_of<E, R: HasStatus>(e: &SdkError<E, R>) -> Option<u16> {
    e.raw_response().map(|r| r.status_code())
}

/// `SdkError`'s raw response type, for its status.
trait HasStatus {
    fn status_code(&self) -> u16;
}

impl HasStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

fn backend<E: ProvideErrorMetadata + std::error::Error + 'static, R: HasStatus + std::fmt::Debug>(
    op: &str,
    e: SdkError<E, R>,
) -> StorageError {
    let status = status_of(&e).map(|s| format!(" (HTTP {s})")).unwrap_or_default();
    let detail = match &e {
        SdkError::ServiceError(se) => {
            let err = se.err();
            format!("{}: {}", err.code().unwrap_or("error"), err.message().unwrap_or(""))
        }
        other => format!("{}", aws_smithy_types::error::display::DisplayErrorContext(other)),
    };
    StorageError::Backend(format!("{op} failed{status}: {detail}"))
}

fn base64(bytes: &[u8]) -> String {
    aws_smithy_types::base64::encode(bytes)
}
