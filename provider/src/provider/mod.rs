//! The `tfplugin6.Provider` service: decodes values, dispatches to the
//! entity resources and data sources, encodes answers.

use std::{collections::BTreeMap, sync::Arc};

use sluice_proto::tfplugin6::{
    self as tf, DynamicValue, ServerCapabilities, apply_resource_change, configure_provider,
    get_metadata, get_provider_schema, import_resource_state, plan_resource_change,
    provider_server::Provider, read_data_source, read_resource, stop_provider,
    upgrade_resource_state, validate_data_resource_config, validate_provider_config,
    validate_resource_config,
};
use tokio::sync::Mutex;
use tonic::{Request, Response, Status};

use crate::{
    client::{self, Admin},
    data_sources::{self, DataSource},
    diagnostics::{self, diagnostic},
    plan::SecretMode,
    plugin::value::{self, Type, Value},
    schema::{self, Attr, ResourceSchema, Source},
    upgrade,
};

type Reply<T> = Result<Response<T>, Status>;

/// The Sluice provider.
pub struct SluiceProvider {
    admin: Arc<Mutex<Option<Admin>>>,
    /// StopProvider's signal, which every admin call watches.
    stop: client::Stop,
    /// Terraform before 1.11 (no write-only attributes): secret values are
    /// kept in state.
    secrets_in_state: Arc<std::sync::atomic::AtomicBool>,
    resources: BTreeMap<String, ResourceSchema>,
    data_sources: BTreeMap<String, DataSource>,
    config: Vec<Attr>,
}

fn config_attrs() -> Vec<Attr> {
    let mut template = schema::resource(sluice_proto::admin::v1::Kind::Gateway)
        .attrs
        .remove(0);
    template.source = Source::Common;
    template.optional = true;
    template.computed = false;
    let attr = |name: &str, sensitive: bool, description: &str| {
        let mut a = template.clone();
        a.name = name.into();
        a.sensitive = sensitive;
        a.description = description.into();
        a
    };
    vec![
        attr(
            "endpoint",
            false,
            "Admin API address, e.g. http://127.0.0.1:7600 (default: SLUICE_ENDPOINT).",
        ),
        attr("token", true, "Admin token (default: SLUICE_TOKEN)."),
        attr(
            "ca_certificate",
            false,
            "PEM CA for a TLS admin API (default: SLUICE_CA_CERTIFICATE).",
        ),
        {
            let mut a = attr(
                "request_timeout",
                false,
                "Seconds one admin API call may take, retries included (default: SLUICE_REQUEST_TIMEOUT, else 30).",
            );
            a.ty = Type::Number;
            a
        },
    ]
}

fn object_type(attrs: &[Attr]) -> Type {
    Type::Object(
        attrs
            .iter()
            .map(|a| (a.name.clone(), a.ty.clone()))
            .collect(),
    )
}

/// Unwraps a `Result<T, Vec<Diagnostic>>`, or returns `Ok` with a
/// response of type `$response` (any with `diagnostics` and `Default`)
/// carrying the diagnostics: `or_reply!(decode_or_diagnostic(..),
/// plan_resource_change::Response)`.
macro_rules! or_reply {
    ($result:expr, $response:ty) => {
        match $result {
            Ok(value) => value,
            Err(diagnostics) => {
                let mut reply = <$response>::default();
                reply.diagnostics = diagnostics;
                return Ok(Response::new(reply));
            }
        }
    };
}

mod lifecycle;

fn encode(value: &Value, ty: &Type) -> Result<DynamicValue, Status> {
    let msgpack = value::to_msgpack(value, ty).map_err(|e| Status::internal(format!("{e:#}")))?;
    Ok(DynamicValue {
        msgpack,
        json: Vec::new(),
    })
}

impl Default for SluiceProvider {
    fn default() -> Self {
        Self {
            admin: Arc::default(),
            stop: client::Stop::default(),
            secrets_in_state: Arc::default(),
            resources: schema::all_resources(),
            data_sources: data_sources::all(),
            config: config_attrs(),
        }
    }
}

/// Whether a Terraform version (`1.11.4`) has write-only attributes
/// (1.11 and later; an unreadable version is taken as current).
fn supports_write_only(version: &str) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u64>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) >= (1, 11),
        _ => true,
    }
}

impl SluiceProvider {
    /// Where secret values live for the Terraform that configured us.
    fn secret_mode(&self) -> SecretMode {
        match self
            .secrets_in_state
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            true => SecretMode::InState,
            false => SecretMode::WriteOnly,
        }
    }

    /// The resource schema of `name`, or a diagnostic saying there is none.
    fn resource_or_diagnostic(&self, name: &str) -> Result<&ResourceSchema, Vec<tf::Diagnostic>> {
        self.resources
            .get(name)
            .ok_or_else(|| diagnostics::unknown_type("resource type", name))
    }

    async fn admin(&self) -> Result<Admin, Vec<tf::Diagnostic>> {
        self.admin.lock().await.clone().ok_or_else(|| {
            vec![diagnostic(
                "provider not configured",
                "ConfigureProvider was not called",
                None,
            )]
        })
    }

    /// The provider's own configuration attributes.
    pub fn config_attrs(&self) -> &[Attr] {
        &self.config
    }

    /// Every resource schema, by type name.
    pub fn resources(&self) -> &BTreeMap<String, ResourceSchema> {
        &self.resources
    }

    /// Every data source, by type name.
    pub fn data_sources(&self) -> &BTreeMap<String, DataSource> {
        &self.data_sources
    }

    /// The schemas, for the docs generator too.
    pub fn schema(&self) -> get_provider_schema::Response {
        get_provider_schema::Response {
            provider: Some(schema::to_proto(
                &self.config,
                "Manages a Sluice gateway's configuration.",
            )),
            resource_schemas: self
                .resources
                .iter()
                .map(|(n, s)| {
                    let mut proto =
                        schema::to_proto(&s.attrs, &format!("A Sluice {}.", s.kind.slug()));
                    // Older state is brought to it by UpgradeResourceState.
                    proto.version = upgrade::SCHEMA_VERSION;
                    (n.clone(), proto)
                })
                .collect(),
            data_source_schemas: self
                .data_sources
                .iter()
                .map(|(n, d)| {
                    (
                        n.clone(),
                        schema::to_proto(&d.attrs, &format!("Reads {n}.")),
                    )
                })
                .collect(),
            server_capabilities: Some(ServerCapabilities {
                plan_destroy: false,
                get_provider_schema_optional: true,
                move_resource_state: false,
            }),
            ..Default::default()
        }
    }
}

#[tonic::async_trait]
impl Provider for SluiceProvider {
    async fn get_metadata(
        &self,
        _: Request<get_metadata::Request>,
    ) -> Reply<get_metadata::Response> {
        Ok(Response::new(get_metadata::Response {
            server_capabilities: self.schema().server_capabilities,
            resources: self
                .resources
                .keys()
                .map(|n| get_metadata::ResourceMetadata {
                    type_name: n.clone(),
                })
                .collect(),
            data_sources: self
                .data_sources
                .keys()
                .map(|n| get_metadata::DataSourceMetadata {
                    type_name: n.clone(),
                })
                .collect(),
            ..Default::default()
        }))
    }

    async fn get_provider_schema(
        &self,
        _: Request<get_provider_schema::Request>,
    ) -> Reply<get_provider_schema::Response> {
        Ok(Response::new(self.schema()))
    }

    async fn validate_provider_config(
        &self,
        request: Request<validate_provider_config::Request>,
    ) -> Reply<validate_provider_config::Response> {
        let config = or_reply!(
            diagnostics::decode_or_diagnostic(
                request.into_inner().config.as_ref(),
                &object_type(&self.config),
                "provider configuration",
            ),
            validate_provider_config::Response
        );
        let mut diagnostics = Vec::new();
        if let Some(endpoint) = config.get("endpoint").as_str()
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            diagnostics.push(diagnostic(
                "invalid endpoint",
                "must start with http:// or https://",
                Some(diagnostics::attribute_path("endpoint")),
            ));
        }
        if let Value::Number(seconds) = config.get("request_timeout")
            && let Err(e) = client::parse_timeout(*seconds)
        {
            diagnostics.push(diagnostic(
                "invalid request_timeout",
                &e,
                Some(diagnostics::attribute_path("request_timeout")),
            ));
        }
        Ok(Response::new(validate_provider_config::Response {
            diagnostics,
        }))
    }

    async fn validate_resource_config(
        &self,
        request: Request<validate_resource_config::Request>,
    ) -> Reply<validate_resource_config::Response> {
        let r = request.into_inner();
        let schema = or_reply!(
            self.resource_or_diagnostic(&r.type_name),
            validate_resource_config::Response
        );
        let config = or_reply!(
            diagnostics::decode_or_diagnostic(r.config.as_ref(), &schema.ty, "configuration"),
            validate_resource_config::Response
        );
        // What can be checked without the server: every value converts
        // (enum names, numbers), each error at its attribute.
        Ok(Response::new(validate_resource_config::Response {
            diagnostics: diagnostics::config_errors(schema, &config),
        }))
    }

    async fn validate_data_resource_config(
        &self,
        request: Request<validate_data_resource_config::Request>,
    ) -> Reply<validate_data_resource_config::Response> {
        let r = request.into_inner();
        let source = or_reply!(
            self.data_sources
                .get(&r.type_name)
                .ok_or_else(|| diagnostics::unknown_type("data source", &r.type_name)),
            validate_data_resource_config::Response
        );
        let config = or_reply!(
            diagnostics::decode_or_diagnostic(r.config.as_ref(), &source.ty, "configuration"),
            validate_data_resource_config::Response
        );
        Ok(Response::new(validate_data_resource_config::Response {
            diagnostics: data_sources::validate(source, &config),
        }))
    }

    async fn upgrade_resource_state(
        &self,
        request: Request<upgrade_resource_state::Request>,
    ) -> Reply<upgrade_resource_state::Response> {
        let r = request.into_inner();
        let schema = or_reply!(
            self.resource_or_diagnostic(&r.type_name),
            upgrade_resource_state::Response
        );
        let keep_secrets = matches!(self.secret_mode(), SecretMode::InState);
        let state = or_reply!(
            upgrade::upgrade(schema, r.version, r.raw_state.as_ref(), keep_secrets),
            upgrade_resource_state::Response
        );
        Ok(Response::new(upgrade_resource_state::Response {
            upgraded_state: Some(encode(&state, &schema.ty)?),
            diagnostics: Vec::new(),
        }))
    }

    async fn configure_provider(
        &self,
        request: Request<configure_provider::Request>,
    ) -> Reply<configure_provider::Response> {
        let request = request.into_inner();
        self.secrets_in_state.store(
            !supports_write_only(&request.terraform_version),
            std::sync::atomic::Ordering::Relaxed,
        );
        let config = or_reply!(
            diagnostics::decode_or_diagnostic(
                request.config.as_ref(),
                &object_type(&self.config),
                "provider configuration",
            ),
            configure_provider::Response
        );
        let settings = or_reply!(
            client::settings(&config, |name| std::env::var(name).ok()),
            configure_provider::Response
        );
        let mut diagnostics = Vec::new();
        match client::connect(&settings, &self.stop) {
            // Once here, so that a server down is one error, not one per
            // resource.
            Ok(connection) => match connection.check().await {
                Ok(()) => *self.admin.lock().await = Some(connection.admin),
                Err(e) => diagnostics.push(diagnostic(
                    "cannot reach the Sluice admin API",
                    &e,
                    Some(diagnostics::attribute_path("endpoint")),
                )),
            },
            Err(e) => diagnostics.push(diagnostic(
                "cannot use the endpoint",
                &format!("{e:#}"),
                Some(diagnostics::attribute_path("endpoint")),
            )),
        }
        Ok(Response::new(configure_provider::Response { diagnostics }))
    }

    async fn read_resource(
        &self,
        request: Request<read_resource::Request>,
    ) -> Reply<read_resource::Response> {
        self.read(request.into_inner()).await
    }

    async fn plan_resource_change(
        &self,
        request: Request<plan_resource_change::Request>,
    ) -> Reply<plan_resource_change::Response> {
        self.plan(request.into_inner()).await
    }

    async fn apply_resource_change(
        &self,
        request: Request<apply_resource_change::Request>,
    ) -> Reply<apply_resource_change::Response> {
        self.apply(request.into_inner()).await
    }

    async fn import_resource_state(
        &self,
        request: Request<import_resource_state::Request>,
    ) -> Reply<import_resource_state::Response> {
        self.import(request.into_inner()).await
    }

    async fn read_data_source(
        &self,
        request: Request<read_data_source::Request>,
    ) -> Reply<read_data_source::Response> {
        let r = request.into_inner();
        let source = or_reply!(
            self.data_sources
                .get(&r.type_name)
                .ok_or_else(|| diagnostics::unknown_type("data source", &r.type_name)),
            read_data_source::Response
        );
        let config = or_reply!(
            diagnostics::decode_or_diagnostic(r.config.as_ref(), &source.ty, "configuration"),
            read_data_source::Response
        );
        let (state, diagnostics) = match self.admin().await {
            Ok(mut admin) => match data_sources::read(&mut admin, source, &config).await {
                Ok(s) => (s, Vec::new()),
                Err(d) => (config.clone(), d),
            },
            Err(d) => (config.clone(), d),
        };
        Ok(Response::new(read_data_source::Response {
            state: Some(encode(&state, &source.ty)?),
            diagnostics,
            deferred: None,
        }))
    }

    async fn stop_provider(
        &self,
        _: Request<stop_provider::Request>,
    ) -> Reply<stop_provider::Response> {
        // Every admin call in flight ends with a "stopped" error, and so
        // does every later one.
        self.stop.stop();
        Ok(Response::new(stop_provider::Response {
            error: String::new(),
        }))
    }
}
