//! Every error Kinesis Analytics can return, mapped in one place to AWS's
//! `__type`, HTTP status and message: exactly the exceptions the model
//! lists, plus the protocol's own.

use riffle_wire::shape::Invalid;

/// An Analytics error, named as AWS names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnalyticsError {
    /// `ValidationException`: the model's constraints.
    #[error("{0}")]
    Validation(String),
    /// `SerializationException`; AWS sometimes sends no message.
    #[error("serialization: {0:?}")]
    Serialization(Option<String>),
    #[error("{0}")]
    CodeValidation(String),
    #[error("{0}")]
    ConcurrentModification(String),
    #[error("{0}")]
    InvalidApplicationConfiguration(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    ResourceInUse(String),
    #[error("{0}")]
    ResourceNotFound(String),
    #[error("{0}")]
    TooManyTags(String),
    #[error("{0}")]
    UnableToDetectSchema(String),
    #[error("{0}")]
    UnsupportedOperation(String),
    /// A fault: the caller may retry.
    #[error("{0}")]
    ServiceUnavailable(String),
    #[error("unknown operation")]
    UnknownOperation,
    /// `InternalFailure`, HTTP 500.
    #[error("internal failure: {0}")]
    Internal(String),
}

impl AnalyticsError {
    /// The `__type` clients branch on.
    pub fn error_type(&self) -> &'static str {
        match self {
            AnalyticsError::Validation(_) => "ValidationException",
            AnalyticsError::Serialization(_) => "SerializationException",
            AnalyticsError::CodeValidation(_) => "CodeValidationException",
            AnalyticsError::ConcurrentModification(_) => "ConcurrentModificationException",
            AnalyticsError::InvalidApplicationConfiguration(_) => {
                "InvalidApplicationConfigurationException"
            }
            AnalyticsError::InvalidArgument(_) => "InvalidArgumentException",
            AnalyticsError::LimitExceeded(_) => "LimitExceededException",
            AnalyticsError::ResourceInUse(_) => "ResourceInUseException",
            AnalyticsError::ResourceNotFound(_) => "ResourceNotFoundException",
            AnalyticsError::TooManyTags(_) => "TooManyTagsException",
            AnalyticsError::UnableToDetectSchema(_) => "UnableToDetectSchemaException",
            AnalyticsError::UnsupportedOperation(_) => "UnsupportedOperationException",
            AnalyticsError::ServiceUnavailable(_) => "ServiceUnavailableException",
            AnalyticsError::UnknownOperation => "UnknownOperationException",
            AnalyticsError::Internal(_) => "InternalFailure",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            AnalyticsError::ServiceUnavailable(_) => 503,
            AnalyticsError::Internal(_) => 500,
            _ => 400,
        }
    }

    /// The message to send, if any.
    pub fn message(&self) -> Option<String> {
        match self {
            AnalyticsError::Serialization(m) => m.clone(),
            AnalyticsError::UnknownOperation => None,
            AnalyticsError::Internal(_) => Some("Internal service failure.".into()),
            other => Some(other.to_string()),
        }
    }
}

impl From<riffle_wire::shape::Refused> for AnalyticsError {
    fn from(e: riffle_wire::shape::Refused) -> Self {
        match e {
            riffle_wire::shape::Refused::UnknownOperation => AnalyticsError::UnknownOperation,
            riffle_wire::shape::Refused::NotAnObject => AnalyticsError::Serialization(None),
            riffle_wire::shape::Refused::Invalid(e) => e.into(),
        }
    }
}

impl From<Invalid> for AnalyticsError {
    fn from(e: Invalid) -> Self {
        match e {
            Invalid::Serialization(m) => AnalyticsError::Serialization(Some(m)),
            Invalid::Validation(m) => AnalyticsError::Validation(m),
        }
    }
}

impl From<riffle_meta::MetaError> for AnalyticsError {
    fn from(e: riffle_meta::MetaError) -> Self {
        AnalyticsError::Internal(e.to_string())
    }
}

pub type Result<T, E = AnalyticsError> = std::result::Result<T, E>;
