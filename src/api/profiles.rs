//! ProfileService: validate the request, call the runtime's profiles, convert the answer.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::convert::{self, parse_name};
use crate::{
    domain::{
        Error, Result, page,
        profile::{Profile, ProfileField},
    },
    pb::{self, profile_service_server::ProfileService},
    runtime::Profiles,
};

const COLLECTION: &str = "profiles";

pub struct ProfileApi {
    profiles: Arc<Profiles>,
}

impl ProfileApi {
    pub fn new(profiles: Arc<Profiles>) -> Self {
        Self { profiles }
    }
}

/// The list order as a sortable key: the default first, then by creation.
type ListKey = (u8, i64, String);

fn list_key(p: &Profile) -> ListKey {
    (
        u8::from(!p.is_default),
        p.create_time.as_micros(),
        p.id.clone(),
    )
}

fn profile_pb(p: &Profile) -> pb::Profile {
    pb::Profile {
        name: convert::profile_name(&p.id),
        display_name: p.display_name.clone(),
        system_prompt: p.system_prompt.clone(),
        model: p
            .model
            .as_deref()
            .map(convert::model_name)
            .unwrap_or_default(),
        reasoning_effort: convert::reasoning_effort_pb(p.reasoning_effort) as i32,
        permission_mode: p
            .permission_mode
            .map_or(pb::PermissionMode::Unspecified, convert::permission_mode_pb)
            as i32,
        mcp_servers: p.mcp_servers.as_ref().map(|ids| pb::McpServerSelection {
            names: ids.iter().map(|id| format!("mcpServers/{id}")).collect(),
        }),
        working_dir_template: p.working_dir_template.clone(),
        is_default: p.is_default,
        create_time: convert::timestamp(p.create_time),
        update_time: convert::timestamp(p.update_time),
        etag: convert::etag(p.revision),
    }
}

/// The client-settable fields of a profile; violations are relative to it.
fn profile(given: &pb::Profile) -> Result<Profile> {
    // The fields a session has too are read as a session's are.
    let as_session = pb::Session {
        model: given.model.clone(),
        reasoning_effort: given.reasoning_effort,
        permission_mode: given.permission_mode,
        mcp_servers: given.mcp_servers.clone(),
        ..Default::default()
    };
    let settings = convert::session_settings(&as_session)?;
    let mut profile = Profile::new("");
    profile.display_name = given.display_name.clone();
    profile.system_prompt = given.system_prompt.clone();
    profile.model = settings.model;
    profile.reasoning_effort = settings.reasoning_effort;
    profile.permission_mode = settings.permission_mode;
    profile.mcp_servers = settings.mcp_servers;
    profile.working_dir_template = given.working_dir_template.clone();
    profile.is_default = given.is_default;
    Ok(profile)
}

/// The fields an update changes: the mask's paths, `*` for all, or (no mask, AIP-134)
/// the fields the client populated.
fn update_fields(
    mask: Option<&prost_types::FieldMask>,
    p: &pb::Profile,
) -> Result<Vec<ProfileField>> {
    if let Some(fields) = convert::mask_fields(mask)? {
        return Ok(fields);
    }
    let populated = ProfileField::ALL.into_iter().filter(|field| match field {
        ProfileField::DisplayName => !p.display_name.is_empty(),
        ProfileField::SystemPrompt => !p.system_prompt.is_empty(),
        ProfileField::Model => !p.model.is_empty(),
        ProfileField::ReasoningEffort => p.reasoning_effort != 0,
        ProfileField::PermissionMode => p.permission_mode != 0,
        ProfileField::McpServers => p.mcp_servers.is_some(),
        ProfileField::WorkingDirTemplate => !p.working_dir_template.is_empty(),
        ProfileField::IsDefault => p.is_default,
    });
    Ok(populated.collect())
}

#[tonic::async_trait]
impl ProfileService for ProfileApi {
    async fn list_profiles(
        &self,
        request: Request<pb::ListProfilesRequest>,
    ) -> Result<Response<pb::ListProfilesResponse>, Status> {
        let req = request.into_inner();
        let all = self.profiles.list().await?;
        let (profiles, next_page_token) = page::page_of(
            &all,
            list_key,
            req.page_size,
            &req.page_token,
            page::fingerprint(&[COLLECTION]),
        )?;
        Ok(Response::new(pb::ListProfilesResponse {
            profiles: profiles.into_iter().map(profile_pb).collect(),
            next_page_token,
        }))
    }

    async fn get_profile(
        &self,
        request: Request<pb::GetProfileRequest>,
    ) -> Result<Response<pb::Profile>, Status> {
        let req = request.into_inner();
        let id = parse_name(&req.name, COLLECTION, "name")?;
        Ok(Response::new(profile_pb(&self.profiles.get(id).await?)))
    }

    async fn create_profile(
        &self,
        request: Request<pb::CreateProfileRequest>,
    ) -> Result<Response<pb::Profile>, Status> {
        let req = request.into_inner();
        let given = req
            .profile
            .ok_or_else(|| Error::invalid("profile", "is required"))?;
        let mut profile = profile(&given).map_err(|e| e.within("profile."))?;
        profile.id = req.profile_id;
        let created = self.profiles.create(profile).await?;
        Ok(Response::new(profile_pb(&created)))
    }

    async fn update_profile(
        &self,
        request: Request<pb::UpdateProfileRequest>,
    ) -> Result<Response<pb::Profile>, Status> {
        let req = request.into_inner();
        let given = req
            .profile
            .ok_or_else(|| Error::invalid("profile", "is required"))?;
        let id = parse_name(&given.name, COLLECTION, "profile.name")?;
        let fields = update_fields(req.update_mask.as_ref(), &given)?;
        let changes = profile(&given).map_err(|e| e.within("profile."))?;
        let updated = self
            .profiles
            .update(
                id,
                &changes,
                &fields,
                convert::expected_revision(&given.etag),
            )
            .await?;
        Ok(Response::new(profile_pb(&updated)))
    }

    async fn delete_profile(
        &self,
        request: Request<pb::DeleteProfileRequest>,
    ) -> Result<Response<()>, Status> {
        let req = request.into_inner();
        let id = parse_name(&req.name, COLLECTION, "name")?;
        self.profiles
            .delete(id, convert::expected_revision(&req.etag))
            .await?;
        Ok(Response::new(()))
    }
}
