//! ModelService: validate the request, call the runtime's models, convert the answer.

use std::{pin::Pin, sync::Arc, time::Duration};

use futures::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use super::convert::{self, model_pb, parse_name};
use crate::{
    domain::{
        Error, Model, Result,
        model::{ModelField, PROVIDER_PRESETS},
        page,
    },
    pb::{self, model_service_server::ModelService},
    runtime::{
        Models,
        models::{ModelBenchmark, PROBE_PROMPT},
    },
};

/// The per-model limit of BenchmarkModels when the request sets none, and the most a
/// request may set.
const DEFAULT_BENCHMARK_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_BENCHMARK_TIMEOUT: Duration = Duration::from_secs(600);

pub struct ModelApi {
    models: Arc<Models>,
}

impl ModelApi {
    pub fn new(models: Arc<Models>) -> Self {
        Self { models }
    }
}

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// The list order as a sortable key: the default first, then by creation.
type ListKey = (u8, i64, String);

fn list_key(m: &Model) -> ListKey {
    (
        u8::from(!m.is_default),
        m.create_time.as_micros(),
        m.id.clone(),
    )
}

/// The fields an update changes: the mask's paths, `*` for all, or (no mask, AIP-134)
/// the fields the client populated.
fn update_fields(mask: Option<&prost_types::FieldMask>, m: &pb::Model) -> Result<Vec<ModelField>> {
    if let Some(fields) = convert::mask_fields(mask)? {
        return Ok(fields);
    }
    let populated = ModelField::ALL.into_iter().filter(|field| match field {
        ModelField::DisplayName => !m.display_name.is_empty(),
        ModelField::Provider => m.provider != 0,
        ModelField::ProviderModel => !m.provider_model.is_empty(),
        ModelField::BaseUrl => !m.base_url.is_empty(),
        ModelField::ApiKey => !m.api_key.is_empty(),
        ModelField::ApiKeyEnv => !m.api_key_env.is_empty(),
        ModelField::Capabilities => m.capabilities.is_some(),
        ModelField::ContextWindow => m.context_window != 0,
        ModelField::MaxOutputTokens => m.max_output_tokens != 0,
        ModelField::IsDefault => m.is_default,
        ModelField::ExtraHeaders => !m.extra_headers.is_empty(),
        ModelField::ProviderOptions => m.provider_options.is_some(),
    });
    Ok(populated.collect())
}

fn benchmark_pb(b: ModelBenchmark) -> pb::BenchmarkModelsResponse {
    pb::BenchmarkModelsResponse {
        model: convert::model_name(&b.model),
        ok: b.ok,
        time_to_first_token: b.time_to_first_token.and_then(convert::std_duration),
        total_time: convert::std_duration(b.total_time),
        error: b.error,
    }
}

#[tonic::async_trait]
impl ModelService for ModelApi {
    async fn list_models(
        &self,
        request: Request<pb::ListModelsRequest>,
    ) -> Result<Response<pb::ListModelsResponse>, Status> {
        let req = request.into_inner();
        let all = self.models.list();
        let (models, next_page_token) = page::page_of(
            &all,
            list_key,
            req.page_size,
            &req.page_token,
            page::fingerprint(&["models"]),
        )?;
        Ok(Response::new(pb::ListModelsResponse {
            models: models.into_iter().map(model_pb).collect(),
            next_page_token,
        }))
    }

    async fn get_model(
        &self,
        request: Request<pb::GetModelRequest>,
    ) -> Result<Response<pb::Model>, Status> {
        let req = request.into_inner();
        let id = parse_name(&req.name, "models", "name")?;
        Ok(Response::new(model_pb(&self.models.get(id).await?)))
    }

    async fn create_model(
        &self,
        request: Request<pb::CreateModelRequest>,
    ) -> Result<Response<pb::Model>, Status> {
        let req = request.into_inner();
        let given = req
            .model
            .ok_or_else(|| Error::invalid("model", "is required"))?;
        let mut model = convert::model(&given, true).map_err(|e| e.within("model."))?;
        model.id = req.model_id;
        let created = self.models.create(model).await?;
        tracing::info!(model = %created.id, provider = ?created.provider, "model created");
        Ok(Response::new(model_pb(&created)))
    }

    async fn update_model(
        &self,
        request: Request<pb::UpdateModelRequest>,
    ) -> Result<Response<pb::Model>, Status> {
        let req = request.into_inner();
        let given = req
            .model
            .ok_or_else(|| Error::invalid("model", "is required"))?;
        let id = parse_name(&given.name, "models", "model.name")?;
        let fields = update_fields(req.update_mask.as_ref(), &given)?;
        let changes = convert::model(&given, fields.contains(&ModelField::Provider))
            .map_err(|e| e.within("model."))?;
        let updated = self
            .models
            .update(
                id,
                &changes,
                &fields,
                convert::expected_revision(&given.etag),
            )
            .await?;
        Ok(Response::new(model_pb(&updated)))
    }

    async fn delete_model(
        &self,
        request: Request<pb::DeleteModelRequest>,
    ) -> Result<Response<()>, Status> {
        let req = request.into_inner();
        let id = parse_name(&req.name, "models", "name")?;
        self.models
            .delete(id, convert::expected_revision(&req.etag), req.force)
            .await?;
        tracing::info!(model = %id, force = req.force, "model deleted");
        Ok(Response::new(()))
    }

    async fn list_providers(
        &self,
        _request: Request<pb::ListProvidersRequest>,
    ) -> Result<Response<pb::ListProvidersResponse>, Status> {
        let providers = PROVIDER_PRESETS
            .iter()
            .map(|p| pb::Provider {
                id: p.id.into(),
                display_name: p.display_name.into(),
                kind: convert::provider_kind_pb(p.kind) as i32,
                base_url: p.base_url.into(),
                api_key_env: p.api_key_env.into(),
                suggested_models: p.suggested_models.iter().map(|m| (*m).into()).collect(),
                docs_url: p.docs_url.into(),
            })
            .collect();
        Ok(Response::new(pb::ListProvidersResponse { providers }))
    }

    async fn test_model(
        &self,
        request: Request<pb::TestModelRequest>,
    ) -> Result<Response<pb::TestModelResponse>, Status> {
        use pb::test_model_request::Target;
        let model = match request.into_inner().target {
            Some(Target::Name(name)) => {
                self.models
                    .get(parse_name(&name, "models", "name")?)
                    .await?
            }
            Some(Target::Model(given)) => {
                let mut model = convert::model(&given, true).map_err(|e| e.within("model."))?;
                model.id = "unsaved".into();
                model.validate().map_err(|e| e.within("model."))?;
                model
            }
            None => {
                return Err(Error::invalid("target", "set name (a stored model) or model").into());
            }
        };
        let test = self.models.test(&model).await;
        tracing::info!(model = %model.id, ok = test.ok, latency_ms = test.latency.as_millis() as u64, "model tested");
        Ok(Response::new(pb::TestModelResponse {
            ok: test.ok,
            latency: convert::std_duration(test.latency),
            error: test.error,
            reply_preview: test.reply_preview,
        }))
    }

    type BenchmarkModelsStream = ResponseStream<pb::BenchmarkModelsResponse>;

    async fn benchmark_models(
        &self,
        request: Request<pb::BenchmarkModelsRequest>,
    ) -> Result<Response<Self::BenchmarkModelsStream>, Status> {
        let req = request.into_inner();
        let timeout = match convert::from_duration(&req.timeout) {
            None | Some(0) => DEFAULT_BENCHMARK_TIMEOUT,
            Some(micros) if micros < 0 => {
                return Err(Error::invalid("timeout", "must be positive").into());
            }
            Some(micros) => Duration::from_micros(micros as u64).min(MAX_BENCHMARK_TIMEOUT),
        };
        let models = if req.names.is_empty() {
            self.models.list().to_vec()
        } else {
            let mut models = Vec::with_capacity(req.names.len());
            for (i, name) in req.names.iter().enumerate() {
                let id = parse_name(name, "models", &format!("names[{i}]"))?;
                models.push(self.models.get(id).await?);
            }
            models
        };
        let prompt = if req.prompt.trim().is_empty() {
            PROBE_PROMPT.to_owned()
        } else {
            req.prompt
        };
        let results = self
            .models
            .benchmark(models, timeout, prompt)
            .map(|result| Ok(benchmark_pb(result)));
        Ok(Response::new(Box::pin(results)))
    }
}
