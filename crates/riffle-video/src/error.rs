//! Every error Kinesis Video Streams can return, mapped in one place to
//! AWS's error type and HTTP status (each exception's `httpStatusCode` in
//! the model).

use riffle_wire::shape::Invalid;

/// A Kinesis Video error, named as AWS names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VideoError {
    /// `SerializationException`: a body that is not a JSON object, a member
    /// of the wrong type.
    #[error("{0}")]
    Serialization(String),
    #[error("{0}")]
    AccessDenied(String),
    #[error("{0}")]
    AccountChannelLimitExceeded(String),
    #[error("{0}")]
    AccountStreamLimitExceeded(String),
    #[error("{0}")]
    ClientLimitExceeded(String),
    /// Also the model's constraints (AWS's validation messages).
    #[error("{0}")]
    ConnectionLimitExceeded(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    InvalidEndpoint(String),
    #[error("{0}")]
    UnsupportedStreamMediaType(String),
    #[error("{0}")]
    MissingCodecPrivateData(String),
    #[error("{0}")]
    InvalidCodecPrivateData(String),
    #[error("{0}")]
    InvalidMediaFrame(String),
    /// A streaming session's token is unknown or expired: HTTP 403, as the
    /// playlist and segment URLs answer.
    #[error("{0}")]
    SessionExpired(String),
    #[error("{0}")]
    InvalidResourceFormat(String),
    #[error("{0}")]
    NoDataRetention(String),
    #[error("{0}")]
    NotAuthorized(String),
    #[error("{0}")]
    ResourceInUse(String),
    #[error("{0}")]
    ResourceNotFound(String),
    #[error("{0}")]
    StreamEdgeConfigurationNotFound(String),
    #[error("{0}")]
    TagsPerResourceExceededLimit(String),
    #[error("{0}")]
    VersionMismatch(String),
    /// An operation of the model Riffle does not serve yet.
    #[error("{0} is not supported by this endpoint.")]
    UnsupportedOperation(String),
    /// A path that names no operation.
    #[error("unknown operation")]
    UnknownOperation,
    /// `InternalFailure`, HTTP 500.
    #[error("internal failure: {0}")]
    Internal(String),
}

impl VideoError {
    /// The error type clients branch on (`x-amzn-ErrorType`).
    pub fn error_type(&self) -> &'static str {
        match self {
            VideoError::Serialization(_) => "SerializationException",
            VideoError::AccessDenied(_) => "AccessDeniedException",
            VideoError::AccountChannelLimitExceeded(_) => "AccountChannelLimitExceededException",
            VideoError::AccountStreamLimitExceeded(_) => "AccountStreamLimitExceededException",
            VideoError::ClientLimitExceeded(_) => "ClientLimitExceededException",
            VideoError::ConnectionLimitExceeded(_) => "ConnectionLimitExceededException",
            VideoError::InvalidArgument(_) => "InvalidArgumentException",
            VideoError::InvalidEndpoint(_) => "InvalidEndpointException",
            VideoError::UnsupportedStreamMediaType(_) => "UnsupportedStreamMediaTypeException",
            VideoError::MissingCodecPrivateData(_) => "MissingCodecPrivateDataException",
            VideoError::InvalidCodecPrivateData(_) => "InvalidCodecPrivateDataException",
            VideoError::InvalidMediaFrame(_) => "InvalidMediaFrameException",
            VideoError::SessionExpired(_) => "NotAuthorizedException",
            VideoError::InvalidResourceFormat(_) => "InvalidResourceFormatException",
            VideoError::NoDataRetention(_) => "NoDataRetentionException",
            VideoError::NotAuthorized(_) => "NotAuthorizedException",
            VideoError::ResourceInUse(_) => "ResourceInUseException",
            VideoError::ResourceNotFound(_) => "ResourceNotFoundException",
            VideoError::StreamEdgeConfigurationNotFound(_) => {
                "StreamEdgeConfigurationNotFoundException"
            }
            VideoError::TagsPerResourceExceededLimit(_) => "TagsPerResourceExceededLimitException",
            VideoError::VersionMismatch(_) => "VersionMismatchException",
            VideoError::UnsupportedOperation(_) => "UnsupportedOperationException",
            VideoError::UnknownOperation => "UnknownOperationException",
            VideoError::Internal(_) => "InternalFailure",
        }
    }

    /// The HTTP status: the model's `httpStatusCode` of the exception.
    pub fn status(&self) -> u16 {
        match self {
            VideoError::AccessDenied(_) | VideoError::NotAuthorized(_) => 401,
            VideoError::ResourceNotFound(_) | VideoError::StreamEdgeConfigurationNotFound(_) => 404,
            VideoError::UnknownOperation => 404,
            VideoError::Internal(_) => 500,
            VideoError::SessionExpired(_) => 403,
            _ => 400,
        }
    }

    /// The message to send.
    pub fn message(&self) -> Option<String> {
        match self {
            VideoError::UnknownOperation => None,
            VideoError::Internal(_) => Some("Internal service failure.".into()),
            other => Some(other.to_string()),
        }
    }
}

impl From<riffle_wire::shape::Refused> for VideoError {
    fn from(e: riffle_wire::shape::Refused) -> Self {
        match e {
            riffle_wire::shape::Refused::UnknownOperation => VideoError::UnknownOperation,
            riffle_wire::shape::Refused::NotAnObject => {
                VideoError::Serialization("The request body is not a JSON object.".into())
            }
            riffle_wire::shape::Refused::Invalid(e) => e.into(),
        }
    }
}

impl From<Invalid> for VideoError {
    fn from(e: Invalid) -> Self {
        match e {
            Invalid::Serialization(m) => VideoError::Serialization(m),
            Invalid::Validation(m) => VideoError::InvalidArgument(m),
        }
    }
}

impl From<riffle_meta::MetaError> for VideoError {
    fn from(e: riffle_meta::MetaError) -> Self {
        VideoError::Internal(e.to_string())
    }
}

pub type Result<T, E = VideoError> = std::result::Result<T, E>;
