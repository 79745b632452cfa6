//! Every error the Glue operations return, mapped in one place to AWS's
//! `__type`, HTTP status and message.

use riffle_wire::shape::Invalid;

/// A Glue error, named as AWS names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GlueError {
    /// `ValidationException`: the model's constraints.
    #[error("{0}")]
    Validation(String),
    #[error("serialization: {0:?}")]
    Serialization(Option<String>),
    #[error("{0}")]
    EntityNotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    InvalidInput(String),
    #[error("{0}")]
    ConcurrentModification(String),
    #[error("unknown operation")]
    UnknownOperation,
    /// `InternalServiceException`, HTTP 500.
    #[error("internal failure: {0}")]
    Internal(String),
}

impl GlueError {
    /// The `__type` clients branch on.
    pub fn error_type(&self) -> &'static str {
        match self {
            GlueError::Validation(_) => "ValidationException",
            GlueError::Serialization(_) => "SerializationException",
            GlueError::EntityNotFound(_) => "EntityNotFoundException",
            GlueError::AlreadyExists(_) => "AlreadyExistsException",
            GlueError::InvalidInput(_) => "InvalidInputException",
            GlueError::ConcurrentModification(_) => "ConcurrentModificationException",
            GlueError::UnknownOperation => "UnknownOperationException",
            GlueError::Internal(_) => "InternalServiceException",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            GlueError::Internal(_) => 500,
            _ => 400,
        }
    }

    /// The message to send, if any.
    pub fn message(&self) -> Option<String> {
        match self {
            GlueError::Serialization(m) => m.clone(),
            GlueError::UnknownOperation => None,
            GlueError::Internal(_) => Some("Internal service failure.".into()),
            other => Some(other.to_string()),
        }
    }

    pub(crate) fn database_not_found(name: &str) -> GlueError {
        GlueError::EntityNotFound(format!("Database {name} not found."))
    }

    pub(crate) fn table_not_found(name: &str) -> GlueError {
        GlueError::EntityNotFound(format!("Table {name} not found."))
    }
}

impl From<riffle_wire::shape::Refused> for GlueError {
    fn from(e: riffle_wire::shape::Refused) -> Self {
        match e {
            riffle_wire::shape::Refused::UnknownOperation => GlueError::UnknownOperation,
            riffle_wire::shape::Refused::NotAnObject => GlueError::Serialization(None),
            riffle_wire::shape::Refused::Invalid(e) => e.into(),
        }
    }
}

impl From<Invalid> for GlueError {
    fn from(e: Invalid) -> Self {
        match e {
            Invalid::Serialization(m) => GlueError::Serialization(Some(m)),
            Invalid::Validation(m) => GlueError::Validation(m),
        }
    }
}

impl From<riffle_meta::MetaError> for GlueError {
    fn from(e: riffle_meta::MetaError) -> Self {
        GlueError::Internal(e.to_string())
    }
}

pub type Result<T, E = GlueError> = std::result::Result<T, E>;
