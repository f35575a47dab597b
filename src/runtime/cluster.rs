//! Ownership of live sessions across the servers of a cluster, and the way to reach the
//! owner of a session from any other server.
//!
//! - **One server** (SQLite, or Postgres without cluster settings): this server owns every
//!   session, writes unfenced and makes no store call for it, so the single-server path
//!   is exactly as fast as before clustering existed.
//! - **A cluster** (several servers on one Postgres): a session that goes live takes its
//!   lease row (`ClusterStore::acquire_lease`); the lease names the owner's advertised
//!   address and carries an epoch that every owner write is fenced with, so a paused or
//!   partitioned ex-owner can never overwrite the new owner's state. The owner renews
//!   its leases with its heartbeat every third of the TTL; a lease not renewed within the
//!   TTL (default 10 s) can be taken by any live server.
//! - Commands and event streams for a session owned elsewhere go to the owner through
//!   [`Peers`], implemented by the API layer over the internal gRPC service (the runtime
//!   never sees the wire).

use std::{pin::Pin, sync::Arc, time::Duration};

use futures::Stream;

use super::{
    chat::SendRequest,
    events::{Confirmation, Decision, Event, InputRequest},
};
use crate::domain::{
    Message, Result, Turn,
    cluster::{Fence, Lease},
    summary::Summary,
};
use crate::store::Store;

/// How this server takes part in a cluster.
#[derive(Clone, Debug)]
pub struct ClusterSettings {
    /// Unique per running process: a restarted server is a new member, so nothing it
    /// held before its crash is mistaken for its own.
    pub server_id: String,
    /// Where the other servers reach this one (`http://host:port`).
    pub address: String,
    /// How long a lease lives without renewal: the longest a dead server's sessions
    /// wait before another server takes them over.
    pub lease_ttl: Duration,
}

impl ClusterSettings {
    /// How often leases are renewed and orphaned sessions looked for: three renewals
    /// fit in one TTL, so one lost heartbeat never costs a lease.
    pub fn heartbeat_interval(&self) -> Duration {
        self.lease_ttl / 3
    }
}

/// Another server of the cluster, as a session's lease names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Remote {
    pub server_id: String,
    pub address: String,
}

/// Who runs a session's turns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owner {
    /// This server, writing with this fence.
    Here(Fence),
    Elsewhere(Remote),
}

/// Takes and gives back session leases for this server.
pub struct Ownership {
    store: Arc<dyn Store>,
    settings: Option<ClusterSettings>,
}

impl Ownership {
    /// One server: owns everything, no store calls.
    pub fn solo(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            settings: None,
        }
    }

    pub fn clustered(store: Arc<dyn Store>, settings: ClusterSettings) -> Self {
        Self {
            store,
            settings: Some(settings),
        }
    }

    pub fn settings(&self) -> Option<&ClusterSettings> {
        self.settings.as_ref()
    }

    /// Takes the session's lease unless another live server holds it.
    pub async fn claim(&self, session_id: &str) -> Result<Owner> {
        let Some(settings) = &self.settings else {
            return Ok(Owner::Here(Fence::NONE));
        };
        let lease = self
            .store
            .acquire_lease(session_id, &settings.server_id, settings.lease_ttl)
            .await?;
        Ok(self.owner_of(&lease))
    }

    /// The owner a lease names, from this server's point of view.
    fn owner_of(&self, lease: &Lease) -> Owner {
        match &self.settings {
            Some(settings) if lease.owner != settings.server_id => Owner::Elsewhere(Remote {
                server_id: lease.owner.clone(),
                address: lease.address.clone(),
            }),
            _ => Owner::Here(Fence(lease.epoch)),
        }
    }

    /// Gives a session back (it went idle here), so any server may take it at once.
    pub async fn release(&self, session_id: &str, fence: Fence) -> Result<()> {
        if let Some(settings) = &self.settings
            && !fence.is_none()
        {
            self.store
                .release_lease(session_id, &settings.server_id, fence.0)
                .await?;
        }
        Ok(())
    }

    /// Registers this server, so others can reach it.
    pub async fn join(&self) -> Result<()> {
        if let Some(settings) = &self.settings {
            self.store
                .register_server(&settings.server_id, &settings.address)
                .await?;
        }
        Ok(())
    }

    /// Deregisters this server and releases its leases (a clean shutdown), so other
    /// servers take its sessions at once instead of after the TTL.
    pub async fn leave(&self) -> Result<()> {
        if let Some(settings) = &self.settings {
            self.store.deregister_server(&settings.server_id).await?;
        }
        Ok(())
    }

    /// The other server holding the session's lease, if any. (An expired lease still
    /// names its holder: commands to it fail as unreachable until a live server takes
    /// the session over, within the TTL.)
    pub async fn holder(&self, session_id: &str) -> Result<Option<Remote>> {
        let Some(settings) = &self.settings else {
            return Ok(None);
        };
        Ok(self
            .store
            .get_lease(session_id)
            .await?
            .filter(|lease| !lease.owner.is_empty() && lease.owner != settings.server_id)
            .map(|lease| Remote {
                server_id: lease.owner,
                address: lease.address,
            }))
    }

    /// Renews this server's leases; returns the ones it still holds. Registers the
    /// server again first, in case its row was lost (a database restored, an operator
    /// cleaning up): others must be able to reach it.
    pub async fn heartbeat(&self) -> Result<Vec<Lease>> {
        let Some(settings) = &self.settings else {
            return Ok(Vec::new());
        };
        self.store
            .register_server(&settings.server_id, &settings.address)
            .await?;
        self.store
            .heartbeat(&settings.server_id, settings.lease_ttl)
            .await
    }
}

/// A session's events relayed from its owner, in the owner's sequence, each already
/// encoded for the wire (`Event::wire`) with its kind reduced to [`RelayedKind`].
pub type RemoteEvents = Pin<Box<dyn Stream<Item = Result<Event>> + Send>>;

/// Reaches the owner of a session on another server. Each call is the owner's answer
/// to the same command made there; `Error::Unavailable` with reason NOT_OWNER means the
/// lease moved meanwhile (look the owner up again).
#[async_trait::async_trait]
pub trait Peers: Send + Sync {
    async fn send(&self, owner: &Remote, request: &SendRequest) -> Result<(Message, Turn)>;
    async fn subscribe(
        &self,
        owner: &Remote,
        session_id: &str,
        after_sequence: i64,
    ) -> Result<RemoteEvents>;
    async fn cancel_turn(&self, owner: &Remote, session_id: &str, turn_id: &str) -> Result<Turn>;
    async fn clear_queue(&self, owner: &Remote, session_id: &str) -> Result<Vec<Turn>>;
    /// CompactSession on the owner. A summary relayed back carries what the API shows of
    /// it (not its `through_position`).
    async fn compact(&self, owner: &Remote, session_id: &str) -> Result<(bool, Option<Summary>)>;
    async fn respond(
        &self,
        owner: &Remote,
        session_id: &str,
        confirmation_id: &str,
        decision: Decision,
    ) -> Result<Confirmation>;
    async fn respond_to_input(
        &self,
        owner: &Remote,
        session_id: &str,
        request_id: &str,
        answer: &str,
    ) -> Result<InputRequest>;
    /// Ends the owner's live state of a session being deleted.
    async fn end_session(&self, owner: &Remote, session_id: &str) -> Result<()>;
}

/// No other servers: what a single server has.
pub struct NoPeers;

#[async_trait::async_trait]
impl Peers for NoPeers {
    async fn send(&self, owner: &Remote, _: &SendRequest) -> Result<(Message, Turn)> {
        Err(no_peers(owner))
    }
    async fn subscribe(&self, owner: &Remote, _: &str, _: i64) -> Result<RemoteEvents> {
        Err(no_peers(owner))
    }
    async fn cancel_turn(&self, owner: &Remote, _: &str, _: &str) -> Result<Turn> {
        Err(no_peers(owner))
    }
    async fn clear_queue(&self, owner: &Remote, _: &str) -> Result<Vec<Turn>> {
        Err(no_peers(owner))
    }
    async fn compact(&self, owner: &Remote, _: &str) -> Result<(bool, Option<Summary>)> {
        Err(no_peers(owner))
    }
    async fn respond(&self, owner: &Remote, _: &str, _: &str, _: Decision) -> Result<Confirmation> {
        Err(no_peers(owner))
    }
    async fn respond_to_input(
        &self,
        owner: &Remote,
        _: &str,
        _: &str,
        _: &str,
    ) -> Result<InputRequest> {
        Err(no_peers(owner))
    }
    async fn end_session(&self, owner: &Remote, _: &str) -> Result<()> {
        Err(no_peers(owner))
    }
}

fn no_peers(owner: &Remote) -> crate::domain::Error {
    crate::domain::Error::Internal(format!(
        "the session is owned by server {} but this server runs without a cluster",
        owner.server_id
    ))
}

/// The error an owner gives when it no longer owns the session.
pub fn not_owner(session_id: &str) -> crate::domain::Error {
    crate::domain::Error::Unavailable {
        reason: crate::domain::reason::NOT_OWNER,
        message: format!("sessions/{session_id} is owned by another server now; retry"),
        retry_after: Some(Duration::from_millis(100)),
    }
}

/// Whether `err` says the session moved (retry at once after looking the owner up).
pub fn is_moved(err: &crate::domain::Error) -> bool {
    matches!(
        err,
        crate::domain::Error::Unavailable { reason, .. }
            if *reason == crate::domain::reason::NOT_OWNER || *reason == crate::domain::cluster::LEASE_LOST
    )
}

/// Whether `err` may pass by waiting: the session moved, or its owner cannot be
/// reached (it may be dead; a live server takes its sessions within the lease TTL).
pub fn is_transient(err: &crate::domain::Error) -> bool {
    matches!(err, crate::domain::Error::Unavailable { .. })
}
