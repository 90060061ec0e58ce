//! A managed resource's lifecycle RPCs (read, plan, apply, import): values
//! decoded against the resource's schema, anything Terraform sent that
//! does not fit answered as diagnostics, the work done in
//! [`crate::resources`], the entity's revision kept as private state.

use sluice_proto::{
    admin::v1::Kind,
    tfplugin6::{
        apply_resource_change, import_resource_state, plan_resource_change, read_resource,
    },
};
use tonic::Response;

use super::{Reply, SluiceProvider, encode};
use crate::{
    diagnostics::{decode_or_diagnostic, diagnostic},
    plugin::value::Value,
    resources::{self, Private},
};

impl SluiceProvider {
    /// ReadResource: the entity as the server has it now.
    pub(super) async fn read(&self, r: read_resource::Request) -> Reply<read_resource::Response> {
        let schema = or_reply!(
            self.resource_or_diagnostic(&r.type_name),
            read_resource::Response
        );
        let current = or_reply!(
            decode_or_diagnostic(r.current_state.as_ref(), &schema.ty, "current state"),
            read_resource::Response
        );
        let id = current.get("id").as_str().unwrap_or_default().to_string();
        let mode = self.secret_mode();
        let (state, private, diagnostics) = match self.admin().await {
            Ok(mut admin) => match resources::read(&mut admin, schema, &id, &current, mode).await {
                Ok((s, p)) => (s, p.encode(), Vec::new()),
                Err(d) => (current.clone(), r.private.clone(), d),
            },
            Err(d) => (current.clone(), r.private.clone(), d),
        };
        Ok(Response::new(read_resource::Response {
            new_state: Some(encode(&state, &schema.ty)?),
            diagnostics,
            private,
            deferred: None,
        }))
    }

    /// PlanResourceChange: see [`crate::plan`].
    pub(super) async fn plan(
        &self,
        r: plan_resource_change::Request,
    ) -> Reply<plan_resource_change::Response> {
        let schema = or_reply!(
            self.resource_or_diagnostic(&r.type_name),
            plan_resource_change::Response
        );
        let decode = |v, what| decode_or_diagnostic(v, &schema.ty, what);
        let prior = or_reply!(
            decode(r.prior_state.as_ref(), "prior state"),
            plan_resource_change::Response
        );
        let proposed = or_reply!(
            decode(r.proposed_new_state.as_ref(), "proposed state"),
            plan_resource_change::Response
        );
        let config = or_reply!(
            decode(r.config.as_ref(), "configuration"),
            plan_resource_change::Response
        );
        if proposed.is_null() {
            return Ok(Response::new(plan_resource_change::Response {
                planned_state: Some(encode(&Value::Null, &schema.ty)?),
                planned_private: r.prior_private,
                ..Default::default()
            }));
        }
        let mut admin = self.admin().await.ok();
        let private = Private::decode(&r.prior_private);
        let mode = self.secret_mode();
        let plan = resources::plan(admin.as_mut(), schema, &prior, &config, private, mode).await;
        Ok(Response::new(plan_resource_change::Response {
            planned_state: Some(encode(&plan.planned, &schema.ty)?),
            requires_replace: plan.requires_replace,
            planned_private: plan.private.encode(),
            diagnostics: plan.diagnostics,
            ..Default::default()
        }))
    }

    /// ApplyResourceChange: create, update or delete, with the revision the
    /// plan saw.
    pub(super) async fn apply(
        &self,
        r: apply_resource_change::Request,
    ) -> Reply<apply_resource_change::Response> {
        let schema = or_reply!(
            self.resource_or_diagnostic(&r.type_name),
            apply_resource_change::Response
        );
        let decode = |v, what| decode_or_diagnostic(v, &schema.ty, what);
        let prior = or_reply!(
            decode(r.prior_state.as_ref(), "prior state"),
            apply_resource_change::Response
        );
        let planned = or_reply!(
            decode(r.planned_state.as_ref(), "planned state"),
            apply_resource_change::Response
        );
        let config = or_reply!(
            decode(r.config.as_ref(), "configuration"),
            apply_resource_change::Response
        );
        let private = Private::decode(&r.planned_private);
        let mode = self.secret_mode();
        let (state, private, diagnostics) = match self.admin().await {
            Ok(mut admin) => {
                match resources::apply(&mut admin, schema, &prior, &planned, &config, private, mode)
                    .await
                {
                    Ok((s, p)) => (s, p.encode(), Vec::new()),
                    Err(d) => (prior.clone(), r.planned_private.clone(), d),
                }
            }
            Err(d) => (prior.clone(), r.planned_private.clone(), d),
        };
        Ok(Response::new(apply_resource_change::Response {
            new_state: Some(encode(&state, &schema.ty)?),
            private,
            diagnostics,
            legacy_type_system: false,
        }))
    }

    /// ImportResourceState: `<gateway_id>/<id>` (a gateway: its id).
    pub(super) async fn import(
        &self,
        r: import_resource_state::Request,
    ) -> Reply<import_resource_state::Response> {
        let refuse = |summary: &str, detail: &str| {
            Ok(Response::new(import_resource_state::Response {
                diagnostics: vec![diagnostic(summary, detail, None)],
                ..Default::default()
            }))
        };
        let schema = or_reply!(
            self.resource_or_diagnostic(&r.type_name),
            import_resource_state::Response
        );
        let gateway = r.id.split_once('/').map(|(g, _)| g.to_string());
        let id = match (schema.kind, r.id.split_once('/')) {
            (Kind::Gateway, None) => r.id.clone(),
            (Kind::Gateway, Some(_)) => {
                return refuse("invalid import id", "a gateway is imported by its id alone");
            }
            (_, Some((_, id))) => id.to_string(),
            (_, None) => return refuse("invalid import id", "use <gateway_id>/<id>"),
        };
        let mut admin = or_reply!(self.admin().await, import_resource_state::Response);
        let read = resources::read(&mut admin, schema, &id, &Value::Null, self.secret_mode());
        match or_reply!(read.await, import_resource_state::Response) {
            (Value::Null, _) => refuse(
                "cannot import",
                &format!("no {} with id {id}", schema.kind.slug()),
            ),
            (state, _)
                if gateway
                    .as_deref()
                    .is_some_and(|g| state.get("gateway_id").as_str() != Some(g)) =>
            {
                refuse(
                    "cannot import",
                    &format!(
                        "{} {id} belongs to gateway {}, not {}: use <its gateway_id>/<id>",
                        schema.kind.slug(),
                        state.get("gateway_id").as_str().unwrap_or_default(),
                        gateway.as_deref().unwrap_or_default()
                    ),
                )
            }
            (state, private) => Ok(Response::new(import_resource_state::Response {
                imported_resources: vec![import_resource_state::ImportedResource {
                    type_name: r.type_name.clone(),
                    state: Some(encode(&state, &schema.ty)?),
                    private: private.encode(),
                }],
                ..Default::default()
            })),
        }
    }
}
