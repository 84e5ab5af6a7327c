//! `GET /openapi.json`: the API description, generated from the handler and type annotations.

use super::{admin, dashboard, error, labels, lists, predict};
use axum::Json;
use utoipa::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};

#[derive(OpenApi)]
#[openapi(
    info(title = "Aegis", description = "Real-time card fraud scoring: score, action and reasons for every transaction."),
    paths(
        predict::one,
        predict::batch,
        admin::health,
        admin::ready,
        admin::metrics,
        admin::reload,
        admin::promote,
        labels::post,
        lists::get,
        lists::post,
        lists::delete,
        dashboard::stats,
        dashboard::transactions,
        dashboard::flagged,
        dashboard::review,
        dashboard::case,
        dashboard::countries,
        dashboard::events
    ),
    components(schemas(crate::domain::TransactionIn, error::ErrorBody, error::ErrorDetail, labels::LabelBatchResponse, labels::LabelItem)),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

/// Declares the bearer-token scheme that `/predict*` and `/admin/*` use when a token is set.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

pub async fn spec() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
