//! One error type for the core. Each variant maps to a stable `code` the JS
//! layer turns into a TypeError/RangeError/Error with that code.

use std::fmt;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A plugin option is wrong (type, range, unknown name).
    Config,
    /// A call argument has the wrong type or shape (JS TypeError).
    InvalidArgument,
    /// A call argument is out of range: NaN, Infinity, empty id (JS RangeError).
    OutOfRange,
    /// A transaction older than the consolidation window, with `lateArrivalStrategy: 'ignore'`.
    LateArrival,
    /// The user's reducer threw or returned something that is not a finite number.
    Reducer,
    /// Reading or writing the record through the host failed.
    Record,
    /// The object store failed after retries.
    Storage,
    /// A lock could not be taken within its bound.
    LockTimeout,
    /// This holder lost its lease; it stopped before writing.
    Fenced,
    /// The plugin was stopped.
    Stopped,
}

impl ErrorKind {
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::Config => "EC_INVALID_CONFIG",
            ErrorKind::InvalidArgument => "EC_INVALID_ARGUMENT",
            ErrorKind::OutOfRange => "EC_OUT_OF_RANGE",
            ErrorKind::LateArrival => "EC_LATE_ARRIVAL",
            ErrorKind::Reducer => "EC_REDUCER_FAILED",
            ErrorKind::Record => "EC_RECORD_FAILED",
            ErrorKind::Storage => "EC_STORAGE_FAILED",
            ErrorKind::LockTimeout => "EC_LOCK_TIMEOUT",
            ErrorKind::Fenced => "EC_FENCED",
            ErrorKind::Stopped => "EC_STOPPED",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into() }
    }
    pub fn config(option: &str, message: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Config, format!("EventualConsistencyPlugin option '{option}': {message}"))
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }
    pub fn range(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::OutOfRange, message)
    }
    pub fn storage(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Storage, message)
    }
    pub fn record(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Record, message)
    }
    pub fn reducer(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Reducer, message)
    }
    pub fn code(&self) -> &'static str {
        self.kind.code()
    }
    /// Prefixes the message with what was being done.
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}
