//! API errors: every failure becomes `{"error": {"code", "message"}}` with its status code
//! (the shared [`ApiError`]). Store errors are internal: logged in full and answered with a
//! generic message (`kici_store::StoreError`'s `InternalError`).

pub use kici_telemetry::http_error::{ApiError, ApiResult};
