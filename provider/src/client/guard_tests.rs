use std::sync::atomic::{AtomicU32, Ordering};

use prost::Message;
use sluice_proto::admin::v1::{
    CreateEntityRequest, Entity, GetEntityRequest, admin_service_client::AdminServiceClient,
};
use tonic::Code;
use tower::util::BoxCloneService;

use super::*;

/// What the stand-in server does with one call.
#[derive(Clone, Copy)]
enum Does {
    Answer,
    Unavailable,
    Refuse,
    Hang,
}

/// A stand-in for the channel: answers from `script` (its last step
/// repeats) and counts the calls.
fn stand_in(script: Vec<Does>, calls: Arc<AtomicU32>) -> Inner {
    BoxCloneService::new(tower::service_fn(move |request: Request<Body>| {
        let n = calls.fetch_add(1, Ordering::SeqCst) as usize;
        let does = script[n.min(script.len() - 1)];
        let bearer = request.headers().get(AUTHORIZATION).cloned();
        async move {
            assert_eq!(bearer.unwrap(), "Bearer secret");
            match does {
                Does::Answer => Ok(answer()),
                Does::Unavailable => Ok(Response::builder()
                    .header("content-type", "application/grpc")
                    .header("grpc-status", "14")
                    .header("grpc-message", "draining")
                    .body(Body::empty())
                    .unwrap()),
                Does::Refuse => Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionRefused,
                    "tcp connect error: Connection refused",
                )),
                Does::Hang => std::future::pending().await,
            }
        }
    }))
}

/// A gRPC answer: one Entity, then `grpc-status: 0` in the trailers.
fn answer() -> Response<Body> {
    use http_body::Frame;
    let entity = Entity {
        id: "gw-1".into(),
        ..Default::default()
    }
    .encode_to_vec();
    let mut data = vec![0u8];
    data.extend((entity.len() as u32).to_be_bytes());
    data.extend(entity);
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let frames: Vec<Result<Frame<tonic::codegen::Bytes>, Status>> =
        vec![Ok(Frame::data(data.into())), Ok(Frame::trailers(trailers))];
    Response::builder()
        .header("content-type", "application/grpc")
        .body(Body::new(http_body_util::StreamBody::new(
            tokio_stream::iter(frames),
        )))
        .unwrap()
}

fn policy(timeout: Duration) -> Policy {
    Policy {
        endpoint: "http://sluice.test:7600".into(),
        authorization: HeaderValue::from_static("Bearer secret"),
        timeout,
        backoff: Backoff {
            attempts: 3,
            first: Duration::from_millis(5),
            max: Duration::from_millis(20),
        },
    }
}

type Inner = BoxCloneService<Request<Body>, Response<Body>, std::io::Error>;

fn client(
    script: Vec<Does>,
    timeout: Duration,
    stop: &Stop,
) -> (AdminServiceClient<Guarded<Inner>>, Arc<AtomicU32>) {
    let calls = Arc::new(AtomicU32::new(0));
    let guarded = Guarded::new(
        stand_in(script, calls.clone()),
        policy(timeout),
        stop.clone(),
    );
    (AdminServiceClient::new(guarded), calls)
}

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test]
async fn reads_are_retried_on_unavailable_with_the_token() {
    let (mut c, calls) = client(
        vec![Does::Unavailable, Does::Refuse, Does::Answer],
        SECOND,
        &Stop::default(),
    );
    let entity = c.get_entity(GetEntityRequest::default()).await.unwrap();
    assert_eq!(entity.into_inner().id, "gw-1");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn retries_are_bounded() {
    let (mut c, calls) = client(vec![Does::Unavailable], SECOND, &Stop::default());
    let err = c.get_entity(GetEntityRequest::default()).await.unwrap_err();
    assert_eq!((err.code(), err.message()), (Code::Unavailable, "draining"));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn writes_are_never_retried() {
    let (mut c, calls) = client(
        vec![Does::Unavailable, Does::Answer],
        SECOND,
        &Stop::default(),
    );
    let err = c
        .create_entity(CreateEntityRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let (mut c, calls) = client(vec![Does::Refuse, Does::Answer], SECOND, &Stop::default());
    assert!(
        c.create_entity(CreateEntityRequest::default())
            .await
            .is_err()
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_unreachable_server_is_reported_once_then_briefly_without_trying() {
    let (mut c, calls) = client(vec![Does::Refuse], SECOND, &Stop::default());
    let first = c.get_entity(GetEntityRequest::default()).await.unwrap_err();
    assert_eq!(first.code(), Code::Unavailable);
    assert!(
        first
            .message()
            .starts_with("cannot reach the Sluice admin API at http://sluice.test:7600: ")
            && first.message().contains("Connection refused")
            && first.message().contains("SLUICE_ENDPOINT"),
        "{first:?}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let later = c.get_entity(GetEntityRequest::default()).await.unwrap_err();
    assert_eq!(
        later.message(),
        "the Sluice admin API at http://sluice.test:7600 is unreachable (reported above)"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_call_without_answer_times_out() {
    let (mut c, _) = client(
        vec![Does::Hang],
        Duration::from_millis(100),
        &Stop::default(),
    );
    let started = std::time::Instant::now();
    let err = c.get_entity(GetEntityRequest::default()).await.unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    assert!(err.message().contains("request_timeout"), "{err:?}");
    assert!(started.elapsed() < 10 * SECOND);
}

#[tokio::test]
async fn stop_cancels_calls_in_flight_and_to_come() {
    let stop = Stop::default();
    let (mut c, calls) = client(vec![Does::Hang], 60 * SECOND, &stop);
    let mut in_flight = c.clone();
    let call = tokio::spawn(async move {
        in_flight
            .create_entity(CreateEntityRequest::default())
            .await
    });
    while calls.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.stop();
    let err = tokio::time::timeout(10 * SECOND, call)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert_eq!(err.code(), Code::Cancelled);
    assert!(err.message().starts_with("stopped"), "{err:?}");
    let later = c.get_entity(GetEntityRequest::default()).await.unwrap_err();
    assert_eq!(later.code(), Code::Cancelled);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn backoff_doubles_up_to_its_bound() {
    let b = Backoff::default();
    let ms = |n| b.delay(n).as_millis();
    assert_eq!(
        [ms(1), ms(2), ms(3), ms(4), ms(40)],
        [250, 500, 1000, 2000, 2000]
    );
    assert!(is_idempotent("/sluice.admin.v1.AdminService/ListEntities"));
    assert!(is_idempotent("/grpc.health.v1.Health/Check"));
    assert!(is_idempotent("/sluice.admin.v1.AdminService/Diagnose"));
    for write in [
        "CreateEntity",
        "UpdateEntity",
        "DeleteEntity",
        "DeleteDataPlaneNode",
        "PingEventHook",
        "TestEventHook",
    ] {
        assert!(!is_idempotent(&format!(
            "/sluice.admin.v1.AdminService/{write}"
        )));
    }
}
