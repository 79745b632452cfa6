//! Every S3 error: its code, HTTP status and message, in one place.

/// An S3 error, named as AWS names it. `Code`, status and message are
/// mapped here only; the extra elements AWS adds to the XML (`BucketName`,
/// `Key`, `Condition`, ...) come from [`S3Error::details`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum S3Error {
    #[error("NoSuchBucket")]
    NoSuchBucket(String),
    #[error("NoSuchKey")]
    NoSuchKey(String),
    #[error("NoSuchUpload")]
    NoSuchUpload(String),
    #[error("BucketAlreadyOwnedByYou")]
    BucketAlreadyOwnedByYou(String),
    #[error("BucketNotEmpty")]
    BucketNotEmpty(String),
    #[error("InvalidBucketName")]
    InvalidBucketName(String),
    #[error("InvalidLocationConstraint")]
    InvalidLocationConstraint,
    #[error("KeyTooLongError")]
    KeyTooLong,
    #[error("EntityTooSmall")]
    EntityTooSmall { size: u64, min: u64 },
    #[error("EntityTooLarge")]
    EntityTooLarge { size: u64, max: u64 },
    #[error("InvalidPart")]
    InvalidPart { part: u32, etag: String },
    #[error("InvalidPartOrder")]
    InvalidPartOrder,
    #[error("BadDigest")]
    BadDigest,
    /// A trailing or header checksum (`x-amz-checksum-<algorithm>`) that
    /// does not match the body.
    #[error("BadDigest")]
    BadChecksum(&'static str),
    #[error("InvalidDigest")]
    InvalidDigest,
    #[error("XAmzContentSHA256Mismatch")]
    ContentSha256Mismatch { client: String, computed: String },
    #[error("PreconditionFailed")]
    PreconditionFailed(&'static str),
    /// 304: a GET or HEAD whose condition says the client's copy is current.
    #[error("NotModified")]
    NotModified,
    #[error("InvalidRange")]
    InvalidRange { range: String, size: u64 },
    #[error("MalformedXML")]
    MalformedXml,
    #[error("InvalidArgument")]
    InvalidArgument {
        message: String,
        name: String,
        value: String,
    },
    #[error("InvalidRequest")]
    InvalidRequest(String),
    #[error("IncompleteBody")]
    IncompleteBody,
    #[error("MissingContentLength")]
    MissingContentLength,
    #[error("MethodNotAllowed")]
    MethodNotAllowed { method: String, resource: String },
    #[error("NotImplemented")]
    NotImplemented,
    #[error("AccessDenied")]
    AccessDenied,
    #[error("InvalidAccessKeyId")]
    InvalidAccessKeyId(String),
    #[error("SignatureDoesNotMatch")]
    SignatureDoesNotMatch,
    #[error("AuthorizationHeaderMalformed")]
    AuthorizationHeaderMalformed(String),
    #[error("AuthorizationQueryParametersError")]
    AuthorizationQueryParametersError(String),
    #[error("RequestTimeTooSkewed")]
    RequestTimeTooSkewed,
    #[error("ExpiredToken")]
    Expired(String),
    #[error("SlowDown")]
    SlowDown,
    /// A storage failure: logged with its detail, answered as AWS's
    /// `InternalError`.
    #[error("InternalError: {0}")]
    Internal(String),
}

impl S3Error {
    /// The `Code` element.
    pub fn code(&self) -> &'static str {
        use S3Error::*;
        match self {
            NoSuchBucket(_) => "NoSuchBucket",
            NoSuchKey(_) => "NoSuchKey",
            NoSuchUpload(_) => "NoSuchUpload",
            BucketAlreadyOwnedByYou(_) => "BucketAlreadyOwnedByYou",
            BucketNotEmpty(_) => "BucketNotEmpty",
            InvalidBucketName(_) => "InvalidBucketName",
            InvalidLocationConstraint => "InvalidLocationConstraint",
            KeyTooLong => "KeyTooLongError",
            EntityTooSmall { .. } => "EntityTooSmall",
            EntityTooLarge { .. } => "EntityTooLarge",
            InvalidPart { .. } => "InvalidPart",
            InvalidPartOrder => "InvalidPartOrder",
            BadDigest | BadChecksum(_) => "BadDigest",
            InvalidDigest => "InvalidDigest",
            ContentSha256Mismatch { .. } => "XAmzContentSHA256Mismatch",
            PreconditionFailed(_) => "PreconditionFailed",
            NotModified => "NotModified",
            InvalidRange { .. } => "InvalidRange",
            MalformedXml => "MalformedXML",
            InvalidArgument { .. } => "InvalidArgument",
            InvalidRequest(_) => "InvalidRequest",
            IncompleteBody => "IncompleteBody",
            MissingContentLength => "MissingContentLength",
            MethodNotAllowed { .. } => "MethodNotAllowed",
            NotImplemented => "NotImplemented",
            AccessDenied => "AccessDenied",
            InvalidAccessKeyId(_) => "InvalidAccessKeyId",
            SignatureDoesNotMatch => "SignatureDoesNotMatch",
            AuthorizationHeaderMalformed(_) => "AuthorizationHeaderMalformed",
            AuthorizationQueryParametersError(_) => "AuthorizationQueryParametersError",
            RequestTimeTooSkewed => "RequestTimeTooSkewed",
            Expired(_) => "AccessDenied",
            SlowDown => "SlowDown",
            Internal(_) => "InternalError",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        use S3Error::*;
        match self {
            NoSuchBucket(_) | NoSuchKey(_) | NoSuchUpload(_) => 404,
            BucketAlreadyOwnedByYou(_) | BucketNotEmpty(_) => 409,
            PreconditionFailed(_) => 412,
            NotModified => 304,
            InvalidRange { .. } => 416,
            MissingContentLength => 411,
            MethodNotAllowed { .. } => 405,
            NotImplemented => 501,
            AccessDenied
            | InvalidAccessKeyId(_)
            | SignatureDoesNotMatch
            | RequestTimeTooSkewed
            | Expired(_) => 403,
            SlowDown => 503,
            Internal(_) => 500,
            _ => 400,
        }
    }

    /// The `Message` element.
    pub fn message(&self) -> String {
        use S3Error::*;
        match self {
            NoSuchBucket(_) => "The specified bucket does not exist".into(),
            NoSuchKey(_) => "The specified key does not exist.".into(),
            NoSuchUpload(_) => "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.".into(),
            BucketAlreadyOwnedByYou(_) => "Your previous request to create the named bucket succeeded and you already own it.".into(),
            BucketNotEmpty(_) => "The bucket you tried to delete is not empty".into(),
            InvalidBucketName(_) => "The specified bucket is not valid.".into(),
            InvalidLocationConstraint => "The specified location-constraint is not valid".into(),
            KeyTooLong => "Your key is too long".into(),
            EntityTooSmall { .. } => "Your proposed upload is smaller than the minimum allowed object size.".into(),
            EntityTooLarge { .. } => "Your proposed upload exceeds the maximum allowed size".into(),
            InvalidPart { .. } => "One or more of the specified parts could not be found.  The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.".into(),
            InvalidPartOrder => "The list of parts was not in ascending order. Parts must be ordered by part number.".into(),
            BadDigest => "The Content-MD5 you specified did not match what we received.".into(),
            BadChecksum(algorithm) => format!("The {algorithm} you specified did not match the calculated checksum."),
            InvalidDigest => "The Content-MD5 you specified was invalid.".into(),
            ContentSha256Mismatch { .. } => "The provided 'x-amz-content-sha256' header does not match what was computed.".into(),
            PreconditionFailed(_) => "At least one of the pre-conditions you specified did not hold".into(),
            NotModified => "Not Modified".into(),
            InvalidRange { .. } => "The requested range is not satisfiable".into(),
            MalformedXml => "The XML you provided was not well-formed or did not validate against our published schema".into(),
            InvalidArgument { message, .. } => message.clone(),
            InvalidRequest(m) => m.clone(),
            IncompleteBody => "You did not provide the number of bytes specified by the Content-Length HTTP header".into(),
            MissingContentLength => "You must provide the Content-Length HTTP header.".into(),
            MethodNotAllowed { .. } => "The specified method is not allowed against this resource.".into(),
            NotImplemented => "A header you provided implies functionality that is not implemented".into(),
            AccessDenied => "Access Denied".into(),
            InvalidAccessKeyId(_) => "The AWS Access Key Id you provided does not exist in our records.".into(),
            SignatureDoesNotMatch => "The request signature we calculated does not match the signature you provided. Check your key and signing method.".into(),
            AuthorizationHeaderMalformed(m) | AuthorizationQueryParametersError(m) => m.clone(),
            RequestTimeTooSkewed => "The difference between the request time and the current time is too large.".into(),
            Expired(m) => m.clone(),
            SlowDown => "Please reduce your request rate.".into(),
            Internal(_) => "We encountered an internal error. Please try again.".into(),
        }
    }

    /// The extra elements of the error document, in AWS's order.
    pub fn details(&self) -> Vec<(&'static str, String)> {
        use S3Error::*;
        match self {
            NoSuchBucket(b)
            | BucketAlreadyOwnedByYou(b)
            | BucketNotEmpty(b)
            | InvalidBucketName(b) => vec![("BucketName", b.clone())],
            NoSuchKey(k) => vec![("Key", k.clone())],
            NoSuchUpload(u) => vec![("UploadId", u.clone())],
            EntityTooSmall { size, min } => vec![
                ("ProposedSize", size.to_string()),
                ("MinSizeAllowed", min.to_string()),
            ],
            EntityTooLarge { size, max } => vec![
                ("ProposedSize", size.to_string()),
                ("MaxSizeAllowed", max.to_string()),
            ],
            InvalidPart { part, etag } => {
                vec![("PartNumber", part.to_string()), ("ETag", etag.clone())]
            }
            ContentSha256Mismatch { client, computed } => vec![
                ("ClientComputedContentSHA256", client.clone()),
                ("S3ComputedContentSHA256", computed.clone()),
            ],
            PreconditionFailed(c) => vec![("Condition", (*c).to_owned())],
            InvalidRange { range, size } => vec![
                ("RangeRequested", range.clone()),
                ("ActualObjectSize", size.to_string()),
            ],
            InvalidArgument { name, value, .. } => vec![
                ("ArgumentName", name.clone()),
                ("ArgumentValue", value.clone()),
            ],
            MethodNotAllowed { method, resource } => vec![
                ("Method", method.clone()),
                ("ResourceType", resource.clone()),
            ],
            InvalidAccessKeyId(k) => vec![("AWSAccessKeyId", k.clone())],
            _ => vec![],
        }
    }

    pub(crate) fn internal(what: &str, e: impl std::fmt::Display) -> S3Error {
        S3Error::Internal(format!("{what}: {e}"))
    }
}

impl From<riffle_meta::MetaError> for S3Error {
    fn from(e: riffle_meta::MetaError) -> Self {
        S3Error::internal("metadata store", e)
    }
}

impl From<std::io::Error> for S3Error {
    fn from(e: std::io::Error) -> Self {
        S3Error::internal("storage", e)
    }
}
