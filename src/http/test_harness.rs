//! The routes' state over the v1 fixture for the HTTP layer's unit tests: one sampler whose
//! ticks a test publishes when it wants, and an in-process client of the router.

#![allow(clippy::unwrap_used)]

use super::{router, AppState};
use crate::export::prometheus::RenderOptions;
use crate::identity::MetadataStore;
use crate::model::Tick;
use crate::process_list::ProcessLister;
use crate::sampler::filter::CgroupFilter;
use crate::sampler::{Handle, Heartbeat, Sampler, SamplerConfig};
use crate::scan::{Roots, Scanner};
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use bytes::Bytes;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tower::ServiceExt as _;

pub fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1-docker-host")
}

/// The routes' state over the v1 fixture, and the sender that publishes its ticks.
pub struct Served {
    pub state: Arc<AppState>,
    sampler: Sampler,
    publish: watch::Sender<Option<Arc<Tick>>>,
}

impl Served {
    /// The state, with no tick published yet: data routes answer 503.
    pub fn new() -> Served {
        let dir = fixture();
        let scanner = Scanner::open(&Roots {
            cgroup_root: dir.join("cgroup"),
            proc_root: dir.join("proc"),
            machine_id_file: None,
        })
        .unwrap();
        let sampler = Sampler::new(
            scanner,
            MetadataStore::new(),
            SamplerConfig {
                interval: Duration::from_secs(1),
                history: Duration::from_secs(60),
                history_points: 10,
                filter: CgroupFilter::default(),
            },
        );
        let (publish, latest) = watch::channel(None);
        let handle = Handle {
            latest,
            history: sampler.history(),
            heartbeat: Heartbeat::new(Duration::from_secs(1)),
        };
        let state = AppState::new(
            handle,
            RenderOptions {
                version: "test",
                ..RenderOptions::default()
            },
            ProcessLister::open(&dir.join("cgroup"), &dir.join("proc")).unwrap(),
        );
        Served {
            state,
            sampler,
            publish,
        }
    }

    /// The state with one tick of the fixture published.
    pub fn ready() -> Served {
        let mut served = Served::new();
        served.tick(1_700_000_000_000);
        served
    }

    /// Samples the fixture and publishes the tick.
    pub fn tick(&mut self, now_ms: u64) {
        let tick = self.sampler.sample_once(now_ms);
        self.publish.send_replace(Some(Arc::new(tick)));
    }

    pub fn renders(&self, body: &str) -> u64 {
        let cache = self.state.cache.lock().unwrap();
        cache.renders.get(body).copied().unwrap_or(0)
    }

    pub async fn get(&self, target: &str, headers: &[(&str, &str)]) -> (StatusCode, Bytes) {
        let mut request = Request::get(target);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut request = request.body(Body::empty()).unwrap();
        // As from a loopback client (process lists are for them).
        request
            .extensions_mut()
            .insert(ConnectInfo(std::net::SocketAddr::from(([127, 0, 0, 1], 1))));
        let response = router(Arc::clone(&self.state))
            .oneshot(request)
            .await
            .unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, body)
    }
}
