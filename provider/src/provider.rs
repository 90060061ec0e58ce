//! The `tfplugin6.Provider` service: decodes values, dispatches to the
//! entity resources and data sources, encodes answers.

use std::{collections::BTreeMap, sync::Arc};

use sluice_proto::{
    admin::v1::Kind,
    tfplugin6::{
        self as tf, DynamicValue, ServerCapabilities, apply_resource_change, configure_provider,
        get_metadata, get_provider_schema, import_resource_state, plan_resource_change,
        provider_server::Provider, read_data_source, read_resource, stop_provider,
        upgrade_resource_state, validate_data_resource_config, validate_provider_config,
        validate_resource_config,
    },
};
use tokio::sync::Mutex;
use tonic::{Request, Response, Status};

use crate::{
    client::{self, Admin},
    data_sources::{self, DataSource},
    diagnostics::{self, diagnostic},
    plugin::value::{self, Type, Value},
    resources,
    schema::{self, Attr, ResourceSchema, Source},
};

type Reply<T> = Result<Response<T>, Status>;

/// The Sluice provider.
pub struct SluiceProvider {
    admin: Arc<Mutex<Option<Admin>>>,
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

fn decode(value: Option<&DynamicValue>, ty: &Type) -> Result<Value, Status> {
    let Some(v) = value else {
        return Ok(Value::Null);
    };
    if !v.msgpack.is_empty() {
        return value::from_msgpack(&v.msgpack, ty)
            .map_err(|e| Status::invalid_argument(format!("{e:#}")));
    }
    if !v.json.is_empty() {
        let json: serde_json::Value =
            serde_json::from_slice(&v.json).map_err(|e| Status::invalid_argument(e.to_string()))?;
        return value::from_json(&json, ty).map_err(|e| Status::invalid_argument(format!("{e:#}")));
    }
    Ok(Value::Null)
}

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
            resources: schema::all_resources(),
            data_sources: data_sources::all(),
            config: config_attrs(),
        }
    }
}

impl SluiceProvider {
    fn resource(&self, name: &str) -> Result<&ResourceSchema, Status> {
        self.resources
            .get(name)
            .ok_or_else(|| Status::not_found(format!("no resource type {name}")))
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
                    (
                        n.clone(),
                        schema::to_proto(&s.attrs, &format!("A Sluice {}.", s.kind.slug())),
                    )
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
        let config = decode(
            request.into_inner().config.as_ref(),
            &object_type(&self.config),
        )?;
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
        Ok(Response::new(validate_provider_config::Response {
            diagnostics,
        }))
    }

    async fn validate_resource_config(
        &self,
        request: Request<validate_resource_config::Request>,
    ) -> Reply<validate_resource_config::Response> {
        let r = request.into_inner();
        let schema = self.resource(&r.type_name)?;
        let config = decode(r.config.as_ref(), &schema.ty)?;
        let mut diagnostics = Vec::new();
        // What can be checked without the server: every value converts
        // (enum names, numbers); the error's outer context is the path.
        if let Err(e) = crate::convert::to_entity(schema, &config) {
            let path = e.to_string();
            let cause = e.root_cause().to_string();
            let at =
                (!path.is_empty() && path != cause).then(|| diagnostics::attribute_path(&path));
            diagnostics.push(diagnostic(&format!("invalid {path}"), &cause, at));
        }
        Ok(Response::new(validate_resource_config::Response {
            diagnostics,
        }))
    }

    async fn validate_data_resource_config(
        &self,
        _: Request<validate_data_resource_config::Request>,
    ) -> Reply<validate_data_resource_config::Response> {
        Ok(Response::new(
            validate_data_resource_config::Response::default(),
        ))
    }

    async fn upgrade_resource_state(
        &self,
        request: Request<upgrade_resource_state::Request>,
    ) -> Reply<upgrade_resource_state::Response> {
        let r = request.into_inner();
        let schema = self.resource(&r.type_name)?;
        let json = r.raw_state.map(|s| s.json).unwrap_or_default();
        let state = if json.is_empty() {
            Value::Null
        } else {
            let parsed: serde_json::Value = serde_json::from_slice(&json)
                .map_err(|e| Status::invalid_argument(format!("stored state: {e}")))?;
            value::from_json(&parsed, &schema.ty)
                .map_err(|e| Status::invalid_argument(format!("{e:#}")))?
        };
        Ok(Response::new(upgrade_resource_state::Response {
            upgraded_state: Some(encode(&state, &schema.ty)?),
            diagnostics: Vec::new(),
        }))
    }

    async fn configure_provider(
        &self,
        request: Request<configure_provider::Request>,
    ) -> Reply<configure_provider::Response> {
        let config = decode(
            request.into_inner().config.as_ref(),
            &object_type(&self.config),
        )?;
        let pick = |name: &str, env: &str| {
            config
                .get(name)
                .as_str()
                .map(str::to_string)
                .or_else(|| std::env::var(env).ok())
                .unwrap_or_default()
        };
        let endpoint = pick("endpoint", "SLUICE_ENDPOINT");
        let token = pick("token", "SLUICE_TOKEN");
        let ca = pick("ca_certificate", "SLUICE_CA_CERTIFICATE");
        let mut diagnostics = Vec::new();
        if endpoint.is_empty() {
            diagnostics.push(diagnostic(
                "missing endpoint",
                "set endpoint or SLUICE_ENDPOINT",
                Some(diagnostics::attribute_path("endpoint")),
            ));
        }
        if token.is_empty() {
            diagnostics.push(diagnostic(
                "missing token",
                "set token or SLUICE_TOKEN",
                Some(diagnostics::attribute_path("token")),
            ));
        }
        if diagnostics.is_empty() {
            match client::connect(&endpoint, &token, Some(&ca)) {
                Ok(admin) => *self.admin.lock().await = Some(admin),
                Err(e) => diagnostics.push(diagnostic(
                    "cannot use the endpoint",
                    &format!("{e:#}"),
                    Some(diagnostics::attribute_path("endpoint")),
                )),
            }
        }
        Ok(Response::new(configure_provider::Response { diagnostics }))
    }

    async fn read_resource(
        &self,
        request: Request<read_resource::Request>,
    ) -> Reply<read_resource::Response> {
        let r = request.into_inner();
        let schema = self.resource(&r.type_name)?;
        let current = decode(r.current_state.as_ref(), &schema.ty)?;
        let id = current.get("id").as_str().unwrap_or_default().to_string();
        let (state, diagnostics) = match self.admin().await {
            Ok(mut admin) => {
                match resources::read(&mut admin, schema, schema.kind, &id, &current).await {
                    Ok(s) => (s, Vec::new()),
                    Err(d) => (current.clone(), d),
                }
            }
            Err(d) => (current.clone(), d),
        };
        Ok(Response::new(read_resource::Response {
            new_state: Some(encode(&state, &schema.ty)?),
            diagnostics,
            private: r.private,
            deferred: None,
        }))
    }

    async fn plan_resource_change(
        &self,
        request: Request<plan_resource_change::Request>,
    ) -> Reply<plan_resource_change::Response> {
        let r = request.into_inner();
        let schema = self.resource(&r.type_name)?;
        let prior = decode(r.prior_state.as_ref(), &schema.ty)?;
        let proposed = decode(r.proposed_new_state.as_ref(), &schema.ty)?;
        let config = decode(r.config.as_ref(), &schema.ty)?;
        if proposed.is_null() {
            return Ok(Response::new(plan_resource_change::Response {
                planned_state: Some(encode(&Value::Null, &schema.ty)?),
                planned_private: r.prior_private,
                ..Default::default()
            }));
        }
        let mut admin = self.admin().await.ok();
        let plan = resources::plan(admin.as_mut(), schema, &prior, &proposed, &config).await;
        Ok(Response::new(plan_resource_change::Response {
            planned_state: Some(encode(&plan.planned, &schema.ty)?),
            requires_replace: plan.requires_replace,
            planned_private: r.prior_private,
            diagnostics: plan.diagnostics,
            ..Default::default()
        }))
    }

    async fn apply_resource_change(
        &self,
        request: Request<apply_resource_change::Request>,
    ) -> Reply<apply_resource_change::Response> {
        let r = request.into_inner();
        let schema = self.resource(&r.type_name)?;
        let prior = decode(r.prior_state.as_ref(), &schema.ty)?;
        let planned = decode(r.planned_state.as_ref(), &schema.ty)?;
        let (state, diagnostics) = match self.admin().await {
            Ok(mut admin) => match resources::apply(&mut admin, schema, &prior, &planned).await {
                Ok(s) => (s, Vec::new()),
                Err(d) => (prior.clone(), d),
            },
            Err(d) => (prior.clone(), d),
        };
        Ok(Response::new(apply_resource_change::Response {
            new_state: Some(encode(&state, &schema.ty)?),
            private: r.planned_private,
            diagnostics,
            legacy_type_system: false,
        }))
    }

    async fn import_resource_state(
        &self,
        request: Request<import_resource_state::Request>,
    ) -> Reply<import_resource_state::Response> {
        let r = request.into_inner();
        let schema = self.resource(&r.type_name)?;
        let id = match (schema.kind, r.id.split_once('/')) {
            (Kind::Gateway, None) => r.id.clone(),
            (Kind::Gateway, Some(_)) => {
                return Ok(Response::new(import_resource_state::Response {
                    diagnostics: vec![diagnostic(
                        "invalid import id",
                        "a gateway is imported by its id alone",
                        None,
                    )],
                    ..Default::default()
                }));
            }
            (_, Some((_, id))) => id.to_string(),
            (_, None) => {
                return Ok(Response::new(import_resource_state::Response {
                    diagnostics: vec![diagnostic(
                        "invalid import id",
                        "use <gateway_id>/<id>",
                        None,
                    )],
                    ..Default::default()
                }));
            }
        };
        let mut admin = match self.admin().await {
            Ok(a) => a,
            Err(diagnostics) => {
                return Ok(Response::new(import_resource_state::Response {
                    diagnostics,
                    ..Default::default()
                }));
            }
        };
        match resources::read(&mut admin, schema, schema.kind, &id, &Value::Null).await {
            Ok(Value::Null) => Ok(Response::new(import_resource_state::Response {
                diagnostics: vec![diagnostic(
                    "cannot import",
                    &format!("no {} with id {id}", schema.kind.slug()),
                    None,
                )],
                ..Default::default()
            })),
            Ok(state) => Ok(Response::new(import_resource_state::Response {
                imported_resources: vec![import_resource_state::ImportedResource {
                    type_name: r.type_name.clone(),
                    state: Some(encode(&state, &schema.ty)?),
                    private: Vec::new(),
                }],
                ..Default::default()
            })),
            Err(diagnostics) => Ok(Response::new(import_resource_state::Response {
                diagnostics,
                ..Default::default()
            })),
        }
    }

    async fn read_data_source(
        &self,
        request: Request<read_data_source::Request>,
    ) -> Reply<read_data_source::Response> {
        let r = request.into_inner();
        let source = self
            .data_sources
            .get(&r.type_name)
            .ok_or_else(|| Status::not_found(format!("no data source {}", r.type_name)))?;
        let config = decode(r.config.as_ref(), &source.ty)?;
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
        Ok(Response::new(stop_provider::Response {
            error: String::new(),
        }))
    }
}
