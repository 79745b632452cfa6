//! Every error Data Streams can return, mapped in one place to AWS's
//! `__type`, HTTP status and message.

use riffle_wire::shape::Invalid;

/// A Data Streams error, named as AWS names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KinesisError {
    #[error("{0}")]
    Validation(String),
    /// `SerializationException`; AWS sometimes sends no message.
    #[error("serialization: {0:?}")]
    Serialization(Option<String>),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    ResourceNotFound(String),
    #[error("{0}")]
    ResourceInUse(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    ExpiredIterator(String),
    #[error("{0}")]
    ExpiredNextToken(String),
    #[error("{0}")]
    ProvisionedThroughputExceeded(String),
    #[error("{0}")]
    AccessDenied(String),
    #[error("{0}")]
    DryRunOperation(String),
    #[error("unknown operation")]
    UnknownOperation,
    /// `InternalFailure`, HTTP 500.
    #[error("internal failure: {0}")]
    Internal(String),
}

impl KinesisError {
    /// The `__type` clients branch on.
    pub fn error_type(&self) -> &'static str {
        match self {
            KinesisError::Validation(_) => "ValidationException",
            KinesisError::Serialization(_) => "SerializationException",
            KinesisError::InvalidArgument(_) => "InvalidArgumentException",
            KinesisError::ResourceNotFound(_) => "ResourceNotFoundException",
            KinesisError::ResourceInUse(_) => "ResourceInUseException",
            KinesisError::LimitExceeded(_) => "LimitExceededException",
            KinesisError::ExpiredIterator(_) => "ExpiredIteratorException",
            KinesisError::ExpiredNextToken(_) => "ExpiredNextTokenException",
            KinesisError::ProvisionedThroughputExceeded(_) => {
                "ProvisionedThroughputExceededException"
            }
            KinesisError::AccessDenied(_) => "AccessDeniedException",
            KinesisError::DryRunOperation(_) => "DryRunOperationException",
            KinesisError::UnknownOperation => "UnknownOperationException",
            KinesisError::Internal(_) => "InternalFailure",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            KinesisError::Internal(_) => 500,
            _ => 400,
        }
    }

    /// The message to send, if any.
    pub fn message(&self) -> Option<String> {
        match self {
            KinesisError::Serialization(m) => m.clone(),
            KinesisError::UnknownOperation => None,
            KinesisError::Internal(_) => Some("Internal service failure.".into()),
            other => Some(other.to_string()),
        }
    }
}

impl From<riffle_wire::shape::Refused> for KinesisError {
    fn from(e: riffle_wire::shape::Refused) -> Self {
        match e {
            riffle_wire::shape::Refused::UnknownOperation => KinesisError::UnknownOperation,
            riffle_wire::shape::Refused::NotAnObject => KinesisError::Serialization(None),
            riffle_wire::shape::Refused::Invalid(e) => e.into(),
        }
    }
}

impl From<Invalid> for KinesisError {
    fn from(e: Invalid) -> Self {
        match e {
            Invalid::Serialization(m) => KinesisError::Serialization(Some(m)),
            Invalid::Validation(m) => KinesisError::Validation(m),
        }
    }
}

impl From<riffle_meta::MetaError> for KinesisError {
    fn from(e: riffle_meta::MetaError) -> Self {
        KinesisError::Internal(e.to_string())
    }
}

impl From<riffle_log::LogError> for KinesisError {
    fn from(e: riffle_log::LogError) -> Self {
        KinesisError::Internal(e.to_string())
    }
}

pub type Result<T, E = KinesisError> = std::result::Result<T, E>;
