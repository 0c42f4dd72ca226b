//! The slice of containerd's gRPC API cgscope calls (list namespaces, list containers,
//! subscribe to events), as prost messages and tonic calls written here, so the build needs
//! no `protoc` and no generated code. Only the fields cgscope reads are declared: protobuf
//! skips the others on the wire. Field numbers are those of containerd's API (v1.6 to v2.x).

use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};
use tonic::{IntoRequest, Response, Status, Streaming};
use tonic_prost::ProstCodec;

/// A channel to the containerd socket. The URI is only a placeholder that tonic requires:
/// every connection is the unix socket.
pub async fn connect(socket: &Path) -> Result<Channel, tonic::transport::Error> {
    let socket: PathBuf = socket.to_path_buf();
    Endpoint::from_static("http://[::]")
        .connect_with_connector(tower::service_fn(move |_| {
            let socket = socket.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(
                    tokio::net::UnixStream::connect(socket).await?,
                ))
            }
        }))
        .await
}

/// `containerd.services.namespaces.v1.ListNamespacesRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListNamespacesRequest {
    #[prost(string, tag = "1")]
    pub filter: String,
}

/// `containerd.services.namespaces.v1.ListNamespacesResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListNamespacesResponse {
    #[prost(message, repeated, tag = "1")]
    pub namespaces: Vec<Namespace>,
}

/// `containerd.services.namespaces.v1.Namespace` (its labels are not read).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Namespace {
    #[prost(string, tag = "1")]
    pub name: String,
}

/// `containerd.services.containers.v1.ListContainersRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListContainersRequest {
    #[prost(string, repeated, tag = "1")]
    pub filters: Vec<String>,
}

/// `containerd.services.containers.v1.ListContainersResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListContainersResponse {
    #[prost(message, repeated, tag = "1")]
    pub containers: Vec<Container>,
}

/// `containerd.services.containers.v1.Container`: id, labels, image, the OCI spec (JSON in
/// an `Any`) and the creation time; runtime, snapshot and extensions are not read.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Container {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(map = "string, string", tag = "2")]
    pub labels: HashMap<String, String>,
    #[prost(string, tag = "3")]
    pub image: String,
    #[prost(message, optional, tag = "5")]
    pub spec: Option<prost_types::Any>,
    #[prost(message, optional, tag = "8")]
    pub created_at: Option<prost_types::Timestamp>,
}

/// `containerd.services.events.v1.SubscribeRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SubscribeRequest {
    #[prost(string, repeated, tag = "1")]
    pub filters: Vec<String>,
}

/// `containerd.types.Envelope` (`containerd.services.events.v1.Envelope` before 2.0; the
/// same wire form): one event. cgscope only needs to know that one happened.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Envelope {
    #[prost(string, tag = "2")]
    pub namespace: String,
    #[prost(string, tag = "3")]
    pub topic: String,
}

/// A unary or streaming call on `channel`, once it is ready.
async fn ready(channel: Channel) -> Result<tonic::client::Grpc<Channel>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(format!("containerd is not ready: {e}")))?;
    Ok(grpc)
}

/// `containerd.services.namespaces.v1.Namespaces`.
pub struct NamespacesClient(Channel);

impl NamespacesClient {
    pub fn new(channel: Channel) -> Self {
        NamespacesClient(channel)
    }

    /// `Namespaces/List`.
    pub async fn list(
        &mut self,
        req: impl IntoRequest<ListNamespacesRequest>,
    ) -> Result<Response<ListNamespacesResponse>, Status> {
        let path = PathAndQuery::from_static("/containerd.services.namespaces.v1.Namespaces/List");
        ready(self.0.clone())
            .await?
            .unary(req.into_request(), path, ProstCodec::default())
            .await
    }
}

/// `containerd.services.containers.v1.Containers`.
pub struct ContainersClient(Channel);

impl ContainersClient {
    pub fn new(channel: Channel) -> Self {
        ContainersClient(channel)
    }

    /// `Containers/List` in the namespace the request's `containerd-namespace` header names.
    pub async fn list(
        &mut self,
        req: impl IntoRequest<ListContainersRequest>,
    ) -> Result<Response<ListContainersResponse>, Status> {
        let path = PathAndQuery::from_static("/containerd.services.containers.v1.Containers/List");
        ready(self.0.clone())
            .await?
            .unary(req.into_request(), path, ProstCodec::default())
            .await
    }
}

/// `containerd.services.events.v1.Events`.
pub struct EventsClient(Channel);

impl EventsClient {
    pub fn new(channel: Channel) -> Self {
        EventsClient(channel)
    }

    /// `Events/Subscribe`: a stream of envelopes matching the filters.
    pub async fn subscribe(
        &mut self,
        req: impl IntoRequest<SubscribeRequest>,
    ) -> Result<Response<Streaming<Envelope>>, Status> {
        let path = PathAndQuery::from_static("/containerd.services.events.v1.Events/Subscribe");
        ready(self.0.clone())
            .await?
            .server_streaming(req.into_request(), path, ProstCodec::default())
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    /// A `Container` as containerd encodes it, fields this module skips included (runtime,
    /// snapshotter, updated_at, sandbox): only the declared ones come out, the rest is
    /// skipped without error.
    #[test]
    fn a_full_container_record_decodes_into_the_fields_cgscope_reads() {
        // Hand-encoded: tag/wire-type bytes then lengths, per the protobuf encoding.
        let mut wire = Vec::new();
        let mut field = |tag: u8, bytes: &[u8]| {
            wire.push(tag << 3 | 2);
            wire.push(bytes.len() as u8);
            wire.extend_from_slice(bytes);
        };
        field(1, b"abc");
        // labels: map entry {key=1, value=2}
        field(2, &[0x0a, 1, b'k', 0x12, 1, b'v']);
        field(3, b"docker.io/library/busybox:latest");
        field(4, &[0x0a, 4, b'r', b'u', b'n', b'c']); // runtime { name }
        field(5, &[0x0a, 1, b't', 0x12, 2, b'{', b'}']); // spec Any { type_url, value }
        field(6, b"overlayfs");
        field(8, &[0x08, 0x96, 0x01]); // created_at { seconds: 150 }
        field(11, b"sandbox-id");
        let c = Container::decode(wire.as_slice()).unwrap();
        assert_eq!(c.id, "abc");
        assert_eq!(c.labels.get("k").map(String::as_str), Some("v"));
        assert_eq!(c.image, "docker.io/library/busybox:latest");
        assert_eq!(c.spec.unwrap().value, b"{}");
        assert_eq!(c.created_at.unwrap().seconds, 150);
    }
}
