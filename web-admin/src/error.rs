//! Errors of page handlers, rendered as friendly HTML pages with the right status.
//!
//! Another organization's id is `NotFound` like a missing one (the store cannot tell them
//! apart, on purpose). Validation errors are usually shown inside the form that caused them;
//! the ones that reach here become a 400 page naming the field.

use crate::templates::{self, RenderError};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use oncall_core::{StoreError, ValidationError};

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("not found")]
    NotFound,
    #[error("this page is for managers")]
    Forbidden,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Invalid(ValidationError),
    #[error("{0}")]
    Conflict(String),
    /// The body is over the route's limit (413).
    #[error("{0}")]
    TooLarge(String),
    #[error("internal error: {0}")]
    Internal(String),
}

pub type WebResult<T> = Result<T, WebError>;

impl From<StoreError> for WebError {
    fn from(e: StoreError) -> WebError {
        match e {
            StoreError::NotFound(_) => WebError::NotFound,
            StoreError::Invalid(v) => WebError::Invalid(v),
            StoreError::Conflict(m) => WebError::Conflict(format!("{m} already exists")),
            StoreError::Transition { current, wanted, .. } => {
                WebError::Conflict(format!("This request is {current} and cannot become {wanted}."))
            }
            other => WebError::Internal(other.to_string()),
        }
    }
}

impl From<ValidationError> for WebError {
    fn from(e: ValidationError) -> WebError {
        WebError::Invalid(e)
    }
}

impl From<tera::Error> for WebError {
    fn from(e: tera::Error) -> WebError {
        // Tera's Display hides the cause; the chain has the template line.
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            msg.push_str(": ");
            msg.push_str(&s.to_string());
            src = s.source();
        }
        WebError::Internal(msg)
    }
}

impl From<RenderError> for WebError {
    fn from(e: RenderError) -> WebError {
        match e {
            RenderError::Load(m) => WebError::Internal(format!("templates: {m}")),
            RenderError::Render(e) => e.into(),
        }
    }
}

impl WebError {
    pub fn status(&self) -> StatusCode {
        match self {
            WebError::NotFound => StatusCode::NOT_FOUND,
            WebError::Forbidden => StatusCode::FORBIDDEN,
            WebError::BadRequest(_) | WebError::Invalid(_) => StatusCode::BAD_REQUEST,
            WebError::Conflict(_) => StatusCode::CONFLICT,
            WebError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What the person sees: no internals.
    pub fn public_message(&self) -> String {
        match self {
            WebError::NotFound => "There is nothing here. The link may be old, or it belongs to another organization.".into(),
            WebError::Forbidden => "This page is for managers. Ask a manager of your organization if you need it.".into(),
            WebError::BadRequest(m) | WebError::Conflict(m) | WebError::TooLarge(m) => m.clone(),
            WebError::Invalid(v) => format!("{}: {}", v.field, v.message),
            WebError::Internal(_) => "Something went wrong on our side. It has been logged; please try again.".into(),
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let WebError::Internal(m) = &self {
            tracing::error!(error = %m, "web request failed");
        }
        let title = match status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::BAD_REQUEST => "Please check your input",
            StatusCode::CONFLICT => "That did not work",
            StatusCode::PAYLOAD_TOO_LARGE => "Too large",
            _ => "Something went wrong",
        };
        let html = templates::error_page(status.as_u16(), title, &self.public_message());
        (status, Html(html)).into_response()
    }
}
