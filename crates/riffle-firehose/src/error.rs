//! Every error Firehose can return, mapped in one place to AWS's `__type`,
//! HTTP status and message. The service-specific ones are exactly the
//! exceptions the model lists.

use riffle_wire::shape::Invalid;

/// A Firehose error, named as AWS names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FirehoseError {
    /// `ValidationException`: the model's constraints.
    #[error("{0}")]
    Validation(String),
    /// `SerializationException`; AWS sometimes sends no message.
    #[error("serialization: {0:?}")]
    Serialization(Option<String>),
    #[error("{0}")]
    ConcurrentModification(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    InvalidKmsResource(String),
    #[error("{0}")]
    InvalidSource(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    ResourceInUse(String),
    #[error("{0}")]
    ResourceNotFound(String),
    /// A fault: the caller may retry.
    #[error("{0}")]
    ServiceUnavailable(String),
    #[error("unknown operation")]
    UnknownOperation,
    /// `InternalFailure`, HTTP 500.
    #[error("internal failure: {0}")]
    Internal(String),
}

impl FirehoseError {
    /// The `__type` clients branch on.
    pub fn error_type(&self) -> &'static str {
        match self {
            FirehoseError::Validation(_) => "ValidationException",
            FirehoseError::Serialization(_) => "SerializationException",
            FirehoseError::ConcurrentModification(_) => "ConcurrentModificationException",
            FirehoseError::InvalidArgument(_) => "InvalidArgumentException",
            FirehoseError::InvalidKmsResource(_) => "InvalidKMSResourceException",
            FirehoseError::InvalidSource(_) => "InvalidSourceException",
            FirehoseError::LimitExceeded(_) => "LimitExceededException",
            FirehoseError::ResourceInUse(_) => "ResourceInUseException",
            FirehoseError::ResourceNotFound(_) => "ResourceNotFoundException",
            FirehoseError::ServiceUnavailable(_) => "ServiceUnavailableException",
            FirehoseError::UnknownOperation => "UnknownOperationException",
            FirehoseError::Internal(_) => "InternalFailure",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            FirehoseError::ServiceUnavailable(_) => 503,
            FirehoseError::Internal(_) => 500,
            _ => 400,
        }
    }

    /// The message to send, if any.
    pub fn message(&self) -> Option<String> {
        match self {
            FirehoseError::Serialization(m) => m.clone(),
            FirehoseError::UnknownOperation => None,
            FirehoseError::Internal(_) => Some("Internal service failure.".into()),
            other => Some(other.to_string()),
        }
    }
}

impl From<riffle_wire::shape::Refused> for FirehoseError {
    fn from(e: riffle_wire::shape::Refused) -> Self {
        match e {
            riffle_wire::shape::Refused::UnknownOperation => FirehoseError::UnknownOperation,
            riffle_wire::shape::Refused::NotAnObject => FirehoseError::Serialization(None),
            riffle_wire::shape::Refused::Invalid(e) => e.into(),
        }
    }
}

impl From<Invalid> for FirehoseError {
    fn from(e: Invalid) -> Self {
        match e {
            Invalid::Serialization(m) => FirehoseError::Serialization(Some(m)),
            Invalid::Validation(m) => FirehoseError::Validation(m),
        }
    }
}

impl From<riffle_meta::MetaError> for FirehoseError {
    fn from(e: riffle_meta::MetaError) -> Self {
        FirehoseError::Internal(e.to_string())
    }
}

impl From<riffle_log::LogError> for FirehoseError {
    fn from(e: riffle_log::LogError) -> Self {
        FirehoseError::Internal(e.to_string())
    }
}

pub type Result<T, E = FirehoseError> = std::result::Result<T, E>;
