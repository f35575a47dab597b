//! RPCs of the contract whose implementation has not landed yet. Each answers
//! UNIMPLEMENTED with a message naming the work it waits for, so clients generated from
//! the full contract get a clear answer instead of a missing service.

use std::pin::Pin;

use futures::Stream;
use tonic::{Request, Response, Status};

use crate::pb::{
    self, model_service_server::ModelService, schedule_service_server::ScheduleService,
};

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

fn planned(rpc: &str, work: &str) -> Status {
    crate::api::error::to_status(crate::domain::Error::Unimplemented(format!(
        "{rpc} is part of the v1 contract but not implemented yet (planned with {work})"
    )))
}

/// Implements a service whose every RPC answers UNIMPLEMENTED. Generates the whole impl
/// block so `async_trait` sees the expanded methods.
macro_rules! planned_service {
    (
        $service:ident for $ty:ident, $work:literal;
        unary { $($method:ident($req:ty) -> $resp:ty;)* }
        streams { $($smethod:ident($sreq:ty) -> $stream:ident of $sresp:ty;)* }
    ) => {
        pub struct $ty;

        #[tonic::async_trait]
        impl $service for $ty {
            $(
                async fn $method(&self, _request: Request<$req>) -> Result<Response<$resp>, Status> {
                    Err(planned(stringify!($method), $work))
                }
            )*
            $(
                type $stream = ResponseStream<$sresp>;
                async fn $smethod(&self, _request: Request<$sreq>) -> Result<Response<Self::$stream>, Status> {
                    Err(planned(stringify!($smethod), $work))
                }
            )*
        }
    };
}

planned_service! {
    ModelService for PlannedModelApi, "models and schedules";
    unary {
        list_models(pb::ListModelsRequest) -> pb::ListModelsResponse;
        get_model(pb::GetModelRequest) -> pb::Model;
        create_model(pb::CreateModelRequest) -> pb::Model;
        update_model(pb::UpdateModelRequest) -> pb::Model;
        delete_model(pb::DeleteModelRequest) -> ();
        list_providers(pb::ListProvidersRequest) -> pb::ListProvidersResponse;
        test_model(pb::TestModelRequest) -> pb::TestModelResponse;
    }
    streams {
        benchmark_models(pb::BenchmarkModelsRequest) -> BenchmarkModelsStream of pb::BenchmarkModelsResponse;
    }
}

planned_service! {
    ScheduleService for PlannedScheduleApi, "models and schedules";
    unary {
        create_schedule(pb::CreateScheduleRequest) -> pb::Schedule;
        get_schedule(pb::GetScheduleRequest) -> pb::Schedule;
        list_schedules(pb::ListSchedulesRequest) -> pb::ListSchedulesResponse;
        update_schedule(pb::UpdateScheduleRequest) -> pb::Schedule;
        delete_schedule(pb::DeleteScheduleRequest) -> ();
        run_schedule(pb::RunScheduleRequest) -> pb::ScheduleRun;
        list_schedule_runs(pb::ListScheduleRunsRequest) -> pb::ListScheduleRunsResponse;
        get_schedule_run(pb::GetScheduleRunRequest) -> pb::ScheduleRun;
    }
    streams {}
}
