//! Every error the Secrets Manager operations return, mapped in one place
//! to AWS's `__type`, HTTP status and message.

use riffle_wire::shape::Invalid;

/// A Secrets Manager error, named as AWS names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretsError {
    /// `ValidationException`: the model's constraints.
    #[error("{0}")]
    Validation(String),
    #[error("serialization: {0:?}")]
    Serialization(Option<String>),
    #[error("{0}")]
    ResourceNotFound(String),
    #[error("{0}")]
    ResourceExists(String),
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    InvalidNextToken(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("unknown operation")]
    UnknownOperation,
    /// `InternalServiceError`, HTTP 500.
    #[error("internal failure: {0}")]
    Internal(String),
}

impl SecretsError {
    /// The `__type` clients branch on.
    pub fn error_type(&self) -> &'static str {
        match self {
            SecretsError::Validation(_) => "ValidationException",
            SecretsError::Serialization(_) => "SerializationException",
            SecretsError::ResourceNotFound(_) => "ResourceNotFoundException",
            SecretsError::ResourceExists(_) => "ResourceExistsException",
            SecretsError::InvalidParameter(_) => "InvalidParameterException",
            SecretsError::InvalidRequest(_) => "InvalidRequestException",
            SecretsError::InvalidNextToken(_) => "InvalidNextTokenException",
            SecretsError::LimitExceeded(_) => "LimitExceededException",
            SecretsError::UnknownOperation => "UnknownOperationException",
            SecretsError::Internal(_) => "InternalServiceError",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            SecretsError::Internal(_) => 500,
            _ => 400,
        }
    }

    /// The message to send, if any.
    pub fn message(&self) -> Option<String> {
        match self {
            SecretsError::Serialization(m) => m.clone(),
            SecretsError::UnknownOperation => None,
            SecretsError::Internal(_) => Some("An error occurred on the server side.".into()),
            other => Some(other.to_string()),
        }
    }

    /// The secret a SecretId names does not exist.
    pub fn not_found() -> SecretsError {
        SecretsError::ResourceNotFound("Secrets Manager can't find the specified secret.".into())
    }

    /// The secret is scheduled for deletion.
    pub(crate) fn marked_deleted() -> SecretsError {
        SecretsError::InvalidRequest(
            "You tried to perform the operation on a secret that's currently marked deleted."
                .into(),
        )
    }
}

impl From<riffle_wire::shape::Refused> for SecretsError {
    fn from(e: riffle_wire::shape::Refused) -> Self {
        match e {
            riffle_wire::shape::Refused::UnknownOperation => SecretsError::UnknownOperation,
            riffle_wire::shape::Refused::NotAnObject => SecretsError::Serialization(None),
            riffle_wire::shape::Refused::Invalid(Invalid::Serialization(m)) => {
                SecretsError::Serialization(Some(m))
            }
            riffle_wire::shape::Refused::Invalid(Invalid::Validation(m)) => {
                SecretsError::Validation(m)
            }
        }
    }
}

impl From<riffle_meta::MetaError> for SecretsError {
    fn from(e: riffle_meta::MetaError) -> Self {
        SecretsError::Internal(e.to_string())
    }
}

pub type Result<T, E = SecretsError> = std::result::Result<T, E>;
