//! The `sluice.admin.v1.AdminService` gRPC service: authenticates each call
//! and maps it onto the store.

use sluice_proto::admin::v1::{
    CreateEntityRequest, DeleteDataPlaneNodeRequest, DeleteDataPlaneNodeResponse,
    DeleteEntityRequest, DeleteEntityResponse, DiagnoseRequest, DiagnoseResponse, Entity,
    EventDelivery, GetEntityRequest, Kind, ListDataPlaneNodesRequest, ListDataPlaneNodesResponse,
    ListEntitiesRequest, ListEntitiesResponse, ListEventDeliveriesRequest,
    ListEventDeliveriesResponse, ListEventSourcesRequest, ListEventSourcesResponse,
    ListRevisionsRequest, ListRevisionsResponse, PingEventHookRequest, TestEventHookRequest,
    UpdateEntityRequest, ValidateRequest, ValidateResponse, admin_service_server::AdminService,
    validate_request::Operation,
};
use tonic::{Request, Response, Status};

use crate::{
    error::ApiError,
    events::{self, Event},
    store::{ListFilter, Mode, Store},
    sync::Registry,
    validate::known::Known,
};

/// The admin service over a store.
#[derive(Clone)]
pub struct AdminApi {
    store: Store,
    nodes: Registry,
}

impl AdminApi {
    /// Serves the admin API from `store`, with node status from `nodes`.
    pub fn new(store: Store, nodes: Registry) -> Self {
        Self { store, nodes }
    }

    /// Accepts the call only with `authorization: Bearer <valid token>`.
    async fn authorize<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let header = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .unwrap_or_default();
        if token.is_empty() {
            return Err(ApiError::Unauthenticated(
                "missing `authorization: Bearer <token>` metadata; create a token with \
                 `sluice-server token create --name NAME`"
                    .into(),
            )
            .into());
        }
        match self.store.check_token(token).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(ApiError::Unauthenticated(
                "unknown, expired or revoked admin token".into(),
            )
            .into()),
            Err(e) => Err(ApiError::Internal(e).into()),
        }
    }
}

fn kind_of(value: i32) -> Result<Kind, ApiError> {
    match Kind::try_from(value) {
        Ok(Kind::Unspecified) | Err(_) => Err(ApiError::invalid(
            "request",
            "kind",
            "must be one of the entity kinds",
        )),
        Ok(kind) => Ok(kind),
    }
}

fn entity_of(entity: Option<Entity>) -> Result<Entity, ApiError> {
    entity.ok_or_else(|| ApiError::invalid("request", "entity", "must be set"))
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl AdminService for AdminApi {
    async fn create_entity(&self, request: Request<CreateEntityRequest>) -> Reply<Entity> {
        self.authorize(&request).await?;
        let entity = entity_of(request.into_inner().entity)?;
        let created = self.store.create(entity, Mode::Commit).await?;
        tracing::info!(kind = created.kind().slug(), id = %created.id, revision = created.revision, "created");
        Ok(Response::new(created))
    }

    async fn get_entity(&self, request: Request<GetEntityRequest>) -> Reply<Entity> {
        self.authorize(&request).await?;
        let r = request.into_inner();
        Ok(Response::new(
            self.store.get(kind_of(r.kind)?, &r.id).await?,
        ))
    }

    async fn list_entities(
        &self,
        request: Request<ListEntitiesRequest>,
    ) -> Reply<ListEntitiesResponse> {
        self.authorize(&request).await?;
        let r = request.into_inner();
        let filter = ListFilter {
            kind: Some(kind_of(r.kind)?),
            gateway_id: r.gateway_id,
            parent_id: r.parent_id,
            name: r.name,
            page_size: r.page_size,
            page_token: r.page_token,
        };
        let (entities, next_page_token) = self.store.list(&filter).await?;
        Ok(Response::new(ListEntitiesResponse {
            entities,
            next_page_token,
        }))
    }

    async fn update_entity(&self, request: Request<UpdateEntityRequest>) -> Reply<Entity> {
        self.authorize(&request).await?;
        let r = request.into_inner();
        let updated = self
            .store
            .update(entity_of(r.entity)?, r.expected_revision, Mode::Commit)
            .await?;
        tracing::info!(kind = updated.kind().slug(), id = %updated.id, revision = updated.revision, "updated");
        Ok(Response::new(updated))
    }

    async fn delete_entity(
        &self,
        request: Request<DeleteEntityRequest>,
    ) -> Reply<DeleteEntityResponse> {
        self.authorize(&request).await?;
        let r = request.into_inner();
        let kind = kind_of(r.kind)?;
        if r.force && kind != Kind::Gateway {
            return Err(ApiError::invalid(
                "delete request",
                "force",
                "only a gateway delete takes force (it also deletes the gateway's \
                 data_plane_certificates); delete this entity without it",
            )
            .into());
        }
        let revision = self
            .store
            .delete_forced(kind, &r.id, r.expected_revision, r.force, Mode::Commit)
            .await?;
        // The delete is committed: what follows cannot fail it (Terraform
        // would retry destroying a gateway that is gone).
        if kind == Kind::Gateway
            && let Err(e) = self.nodes.forget_gateway(&r.id).await
        {
            tracing::warn!(gateway = %r.id, error = %e, "deleted the gateway but could not forget its node records");
        }
        tracing::info!(kind = kind.slug(), id = %r.id, revision, force = r.force, "deleted");
        Ok(Response::new(DeleteEntityResponse { revision }))
    }

    async fn validate(&self, request: Request<ValidateRequest>) -> Reply<ValidateResponse> {
        self.authorize(&request).await?;
        let r = request.into_inner();
        let (entity, store_warnings, known) = match r.operation {
            Some(Operation::Create(c)) => {
                let entity = entity_of(c.entity)?;
                let known = Known::parse(&entity, &r.unknown_fields)?;
                let replaces = (!r.replaces_id.is_empty()).then_some(r.replaces_id.as_str());
                let (checked, warnings) =
                    self.store.validate_create(entity, &known, replaces).await?;
                (checked, warnings, known)
            }
            Some(Operation::Update(u)) => {
                let entity = entity_of(u.entity)?;
                let known = Known::parse(&entity, &r.unknown_fields)?;
                if !known.is_known("id") {
                    return Err(ApiError::invalid(
                        "validate request",
                        "unknown_fields",
                        "the id of the entity to update must be known",
                    )
                    .into());
                }
                let (checked, warnings) = self
                    .store
                    .validate_update(entity, u.expected_revision, &known)
                    .await?;
                (checked, warnings, known)
            }
            None => {
                return Err(ApiError::invalid(
                    "validate request",
                    "operation",
                    "set create or update",
                )
                .into());
            }
        };
        let mut warnings = crate::validate::enforced::warnings(&entity);
        warnings.extend(crate::validate::risky::warnings(&entity));
        warnings.extend(store_warnings);
        Ok(Response::new(ValidateResponse {
            warnings: known.keep_warnings(warnings),
            entity: Some(entity),
        }))
    }

    async fn list_revisions(
        &self,
        request: Request<ListRevisionsRequest>,
    ) -> Reply<ListRevisionsResponse> {
        self.authorize(&request).await?;
        let r = request.into_inner();
        if r.gateway_id.is_empty() {
            return Err(ApiError::invalid("list request", "gateway_id", "must be set").into());
        }
        let (revisions, latest_revision) = self
            .store
            .revisions(&r.gateway_id, r.after_revision, r.page_size)
            .await?;
        Ok(Response::new(ListRevisionsResponse {
            revisions,
            latest_revision,
        }))
    }

    async fn list_data_plane_nodes(
        &self,
        request: Request<ListDataPlaneNodesRequest>,
    ) -> Reply<ListDataPlaneNodesResponse> {
        self.authorize(&request).await?;
        let r = request.into_inner();
        if r.gateway_id.is_empty() {
            return Err(ApiError::invalid("list request", "gateway_id", "must be set").into());
        }
        let nodes = self.nodes.list(&r.gateway_id).await?;
        Ok(Response::new(ListDataPlaneNodesResponse {
            nodes: nodes.iter().map(|n| n.to_proto()).collect(),
        }))
    }

    async fn delete_data_plane_node(
        &self,
        request: Request<DeleteDataPlaneNodeRequest>,
    ) -> Reply<DeleteDataPlaneNodeResponse> {
        self.authorize(&request).await?;
        let r = request.into_inner();
        let nodes = self.nodes.list(&r.gateway_id).await?;
        match nodes.iter().find(|n| n.id == r.id) {
            None => Err(ApiError::NotFound(format!(
                "no data-plane node {:?} in gateway {:?}",
                r.id, r.gateway_id
            ))
            .into()),
            Some(n) if n.connected => Err(ApiError::FailedPrecondition(format!(
                "data-plane node {:?} is connected; only disconnected nodes can be pruned",
                r.id
            ))
            .into()),
            Some(_) => {
                self.store.delete_node(&r.gateway_id, &r.id).await?;
                Ok(Response::new(DeleteDataPlaneNodeResponse {}))
            }
        }
    }

    async fn ping_event_hook(
        &self,
        request: Request<PingEventHookRequest>,
    ) -> Reply<EventDelivery> {
        self.authorize(&request).await?;
        let id = request.into_inner().id;
        Ok(Response::new(self.store.emit_to(&id, Event::ping).await?))
    }

    async fn test_event_hook(
        &self,
        request: Request<TestEventHookRequest>,
    ) -> Reply<EventDelivery> {
        self.authorize(&request).await?;
        let r = request.into_inner();
        let sample: serde_json::Value = serde_json::from_str(&r.sample_json).map_err(|e| {
            ApiError::invalid("test request", "sample_json", &format!("not JSON: {e}"))
        })?;
        Ok(Response::new(
            self.store
                .emit_to(&r.id, |hook| Event::test(hook, sample))
                .await?,
        ))
    }

    async fn list_event_sources(
        &self,
        request: Request<ListEventSourcesRequest>,
    ) -> Reply<ListEventSourcesResponse> {
        self.authorize(&request).await?;
        Ok(Response::new(ListEventSourcesResponse {
            sources: events::sources(),
        }))
    }

    async fn list_event_deliveries(
        &self,
        request: Request<ListEventDeliveriesRequest>,
    ) -> Reply<ListEventDeliveriesResponse> {
        self.authorize(&request).await?;
        let r = request.into_inner();
        if r.gateway_id.is_empty() {
            return Err(ApiError::invalid("list request", "gateway_id", "must be set").into());
        }
        if !["", "pending", "delivered", "dead"].contains(&r.status.as_str()) {
            return Err(ApiError::invalid(
                "list request",
                "status",
                "must be pending, delivered or dead",
            )
            .into());
        }
        let deliveries = self
            .store
            .deliveries(&r.gateway_id, &r.hook_id, &r.status, r.page_size)
            .await?;
        Ok(Response::new(ListEventDeliveriesResponse { deliveries }))
    }

    async fn diagnose(&self, request: Request<DiagnoseRequest>) -> Reply<DiagnoseResponse> {
        self.authorize(&request).await?;
        let response =
            crate::diagnose::diagnose(&self.store, &self.nodes, request.into_inner()).await?;
        Ok(Response::new(response))
    }
}
