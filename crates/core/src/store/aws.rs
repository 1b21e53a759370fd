//! S3 through aws-sdk-s3: the same endpoint, bucket, region and credentials
//! the host's s3db.js client uses. Retries are left to `RetryStore` so every
//! backend retries the same way.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, RequestChecksumCalculation};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use aws_sdk_s3::Client;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;

use super::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Config {
    /// `None` for AWS itself; `Some("http://127.0.0.1:9000")` for a compatible server.
    pub endpoint: Option<String>,
    pub region: String,
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    pub force_path_style: bool,
    /// Bound on one HTTP attempt; a stalled server becomes a retryable timeout.
    pub attempt_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
}

impl S3Store {
    pub fn new(cfg: &S3Config) -> Self {
        let creds = Credentials::new(
            cfg.access_key_id.clone(),
            cfg.secret_access_key.clone(),
            cfg.session_token.clone(),
            None,
            "s3db-connection-string",
        );
        let mut builder = aws_sdk_s3::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(cfg.region.clone()))
            .credentials_provider(creds)
            .force_path_style(cfg.force_path_style)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_attempt_timeout(cfg.attempt_timeout)
                    .build(),
            );
        if let Some(endpoint) = &cfg.endpoint {
            builder = builder.endpoint_url(endpoint.clone());
        }
        S3Store { client: Client::from_conf(builder.build()), bucket: cfg.bucket.clone() }
    }
}

fn classify<E, R>(op: &str, key: &str, err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug + HttpStatus,
{
    let (kind, detail) = match &err {
        SdkError::TimeoutError(_) => (StoreErrorKind::Transient, "timed out".to_string()),
        SdkError::DispatchFailure(e) => (StoreErrorKind::Transient, format!("connection failed: {e:?}")),
        SdkError::ResponseError(e) => (StoreErrorKind::Transient, format!("bad response: {e:?}")),
        SdkError::ServiceError(e) => {
            let status = e.raw().status_code();
            let code = e.err().code().unwrap_or("");
            let kind = match status {
                412 => StoreErrorKind::Precondition,
                409 if code == "ConditionalRequestConflict" || code == "OperationAborted" => StoreErrorKind::Precondition,
                404 => StoreErrorKind::NotFound,
                429 | 500..=599 => StoreErrorKind::Transient,
                _ => StoreErrorKind::Permanent,
            };
            (kind, format!("HTTP {status} {code} {}", e.err().message().unwrap_or("")))
        }
        other => (StoreErrorKind::Permanent, format!("{other:?}")),
    };
    StoreError::new(kind, format!("S3 {op} {key}: {}", detail.trim()))
}

/// The HTTP status of a raw response, for error classification.
pub trait HttpStatus {
    fn status_code(&self) -> u16;
}

impl HttpStatus for aws_smithy_runtime_api::http::Response {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn put(&self, key: &str, req: PutRequest) -> StoreResult<String> {
        let mut op = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .set_metadata(Some(req.metadata.into_iter().collect()))
            .body(ByteStream::from(req.body))
            .set_content_type(req.content_type);
        op = match req.condition {
            Condition::None => op,
            Condition::Absent => op.if_none_match("*"),
            Condition::Matches(etag) => op.if_match(format!("\"{}\"", normalize_etag(&etag))),
        };
        let out = op.send().await.map_err(|e| classify("PutObject", key, e))?;
        Ok(normalize_etag(out.e_tag().unwrap_or_default()))
    }

    async fn get(&self, key: &str) -> StoreResult<Option<Object>> {
        let out = match self.client.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => out,
            Err(SdkError::ServiceError(e)) if e.err().is_no_such_key() || e.raw().status().as_u16() == 404 => {
                return Ok(None)
            }
            Err(e) => return Err(classify("GetObject", key, e)),
        };
        let etag = normalize_etag(out.e_tag().unwrap_or_default());
        let content_type = out.content_type().map(str::to_string);
        let metadata = out.metadata().cloned().unwrap_or_default().into_iter().collect();
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| StoreError::new(StoreErrorKind::Transient, format!("S3 GetObject {key}: body read failed: {e}")))?
            .into_bytes();
        Ok(Some(Object { metadata, body, etag, content_type }))
    }

    async fn delete(&self, key: &str, condition: Condition) -> StoreResult<()> {
        let mut op = self.client.delete_object().bucket(&self.bucket).key(key);
        match condition {
            Condition::None => {}
            Condition::Matches(etag) => op = op.if_match(format!("\"{}\"", normalize_etag(&etag))),
            Condition::Absent => return Err(StoreError::new(StoreErrorKind::Permanent, "delete cannot require absence")),
        }
        match op.send().await {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) if e.raw().status().as_u16() == 404 => Ok(()),
            Err(e) => Err(classify("DeleteObject", key, e)),
        }
    }

    async fn delete_many(&self, keys: &[String]) -> StoreResult<()> {
        for chunk in keys.chunks(1000) {
            let objects = chunk
                .iter()
                .map(|k| ObjectIdentifier::builder().key(k).build().expect("key is set"))
                .collect::<Vec<_>>();
            let delete = Delete::builder().set_objects(Some(objects)).quiet(true).build().expect("objects are set");
            let out = self
                .client
                .delete_objects()
                .bucket(&self.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| classify("DeleteObjects", &chunk[0], e))?;
            if let Some(err) = out.errors().first() {
                return Err(StoreError::new(
                    StoreErrorKind::Transient,
                    format!(
                        "S3 DeleteObjects: {} of {} keys failed, first {}: {}",
                        out.errors().len(),
                        chunk.len(),
                        err.key().unwrap_or(""),
                        err.message().unwrap_or("")
                    ),
                ));
            }
        }
        Ok(())
    }

    async fn list(&self, prefix: &str, cursor: Option<&str>, max_keys: usize) -> StoreResult<ListPage> {
        let out = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .max_keys(max_keys.min(1000) as i32)
            .set_continuation_token(cursor.map(str::to_string))
            .send()
            .await
            .map_err(|e| classify("ListObjectsV2", prefix, e))?;
        let keys = out.contents().iter().filter_map(|o| o.key().map(str::to_string)).collect();
        let next = if out.is_truncated().unwrap_or(false) {
            out.next_continuation_token().map(str::to_string)
        } else {
            None
        };
        Ok(ListPage { keys, next })
    }
}
