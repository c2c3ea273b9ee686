//! How many S3 requests a publish keeps in flight: up to the step's `concurrency`, halved when
//! the bucket answers `SlowDown` (503) or 429, and grown back by one per window of requests
//! that went through, as TCP paces a connection. The SDK still retries each throttled request
//! with its own back-off; the window keeps the publish from sending the next ones at the rate
//! that was just refused.

use aws_sdk_s3::config::interceptors::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::error::BoxError;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// The request window of one publish.
pub(super) struct RequestWindow {
    /// One permit per request in flight.
    permits: Semaphore,
    /// The step's `concurrency`.
    max: usize,
    /// The limit and its history.
    state: Mutex<WindowState>,
}

/// The window's limit and what moved it.
struct WindowState {
    /// Requests allowed in flight now.
    limit: usize,
    /// Permits to retire as requests finish (the window shrank below what is in flight).
    debt: usize,
    /// Requests that finished unthrottled since the window last changed.
    successes: usize,
    /// Bumped on every cut; a throttle from a request sent before the latest cut is the same
    /// burst and does not cut again.
    epoch: u64,
    /// Throttles seen.
    throttles: usize,
    /// The lowest limit reached.
    lowest: usize,
}

/// What the window did during a publish, for its summary and debug log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct WindowReport {
    /// The step's `concurrency`.
    pub max: usize,
    /// The lowest limit reached.
    pub lowest: usize,
    /// Throttles seen.
    pub throttles: usize,
}

impl RequestWindow {
    /// A window of `max` requests.
    pub fn new(max: usize) -> Arc<Self> {
        let max = max.max(1);
        Arc::new(Self {
            permits: Semaphore::new(max),
            max,
            state: Mutex::new(WindowState {
                limit: max,
                debt: 0,
                successes: 0,
                epoch: 0,
                throttles: 0,
                lowest: max,
            }),
        })
    }

    /// The state, under its lock.
    fn state(&self) -> std::sync::MutexGuard<'_, WindowState> {
        // The state stays consistent under every update; a panic elsewhere does not poison it
        // in a way that matters.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for room for one more request.
    pub async fn slot(self: &Arc<Self>) -> Result<Slot, tokio::sync::AcquireError> {
        self.permits.acquire().await?.forget();
        Ok(Slot {
            window: self.clone(),
        })
    }

    /// `client` with this window's signal on every request: each attempt tells the window
    /// whether it was throttled.
    pub fn paced(self: &Arc<Self>, client: &aws_sdk_s3::Client) -> aws_sdk_s3::Client {
        let config = client
            .config()
            .to_builder()
            .interceptor(WindowSignal {
                window: self.clone(),
            })
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// Requests allowed in flight now.
    #[cfg(test)]
    fn limit(&self) -> usize {
        self.state().limit
    }

    /// What the window did, for the summary.
    pub fn report(&self) -> WindowReport {
        let state = self.state();
        WindowReport {
            max: self.max,
            lowest: state.lowest,
            throttles: state.throttles,
        }
    }

    /// The current epoch (bumped by every cut).
    fn epoch(&self) -> u64 {
        self.state().epoch
    }

    /// An attempt sent during `epoch` was throttled.
    fn throttled(&self, epoch: u64) {
        let mut state = self.state();
        state.throttles += 1;
        if epoch != state.epoch {
            return;
        }
        let cut = state.limit - (state.limit / 2).max(1);
        state.limit -= cut;
        state.lowest = state.lowest.min(state.limit);
        state.successes = 0;
        state.epoch += 1;
        let retired = self.permits.forget_permits(cut);
        state.debt += cut - retired;
    }

    /// An attempt went through: a full window of them grows the window by one.
    fn succeeded(&self) {
        let mut state = self.state();
        state.successes += 1;
        if state.successes >= state.limit && state.limit < self.max {
            state.limit += 1;
            state.successes = 0;
            self.give_back(&mut state);
        }
    }

    /// One permit back: it pays a debt first, else opens a slot.
    fn give_back(&self, state: &mut WindowState) {
        if state.debt > 0 {
            state.debt -= 1;
        } else {
            self.permits.add_permits(1);
        }
    }
}

/// Room for one request; gives it back when dropped.
pub(super) struct Slot {
    /// The window the attempts count against.
    window: Arc<RequestWindow>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = self.window.state();
        self.window.give_back(&mut state);
    }
}

/// The window's interceptor: notes the window's epoch when an attempt is sent and reports
/// how the attempt went.
#[derive(Clone)]
struct WindowSignal {
    /// The window the attempts count against.
    window: Arc<RequestWindow>,
}

impl std::fmt::Debug for WindowSignal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WindowSignal")
    }
}

/// The window's epoch when an attempt was sent.
#[derive(Clone, Copy, Debug)]
struct SentInEpoch(u64);

impl Storable for SentInEpoch {
    type Storer = StoreReplace<Self>;
}

/// 503 is S3's `SlowDown` (and `ServiceUnavailable`); 429 is what S3-compatible stores send.
fn is_throttle(status: u16) -> bool {
    status == 503 || status == 429
}

impl Intercept for WindowSignal {
    fn name(&self) -> &'static str {
        "PublishRequestWindow"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state()
            .store_put(SentInEpoch(self.window.epoch()));
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(status) = context.response().map(|r| r.status().as_u16()) else {
            // No answer (connection, timeout): says nothing about the bucket's rate.
            return Ok(());
        };
        if is_throttle(status) {
            let epoch = cfg.load::<SentInEpoch>().map(|e| e.0);
            self.window
                .throttled(epoch.unwrap_or_else(|| self.window.epoch()));
        } else {
            self.window.succeeded();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An attempt sent now, throttled later.
    fn sent(window: &RequestWindow) -> u64 {
        window.epoch()
    }

    #[tokio::test]
    async fn a_throttle_halves_the_window_once_per_burst() {
        let window = RequestWindow::new(16);
        let mut slots = Vec::new();
        for _ in 0..16 {
            slots.push(window.slot().await.unwrap());
        }
        let epoch = sent(&window);
        for _ in 0..6 {
            window.throttled(epoch);
        }
        assert_eq!(window.limit(), 8, "six throttles sent together cut once");
        drop(slots);
        assert_eq!(window.permits.available_permits(), 8);
        let report = window.report();
        assert_eq!((report.max, report.lowest, report.throttles), (16, 8, 6));
    }

    #[tokio::test]
    async fn throttles_after_a_cut_cut_again_down_to_one() {
        let window = RequestWindow::new(8);
        for expected in [4, 2, 1, 1] {
            let slot = window.slot().await.unwrap();
            window.throttled(sent(&window));
            drop(slot);
            assert_eq!(window.limit(), expected);
        }
        assert_eq!(window.permits.available_permits(), 1);
    }

    #[tokio::test]
    async fn the_window_grows_back_to_its_maximum_and_no_further() {
        let window = RequestWindow::new(4);
        let slot = window.slot().await.unwrap();
        window.throttled(sent(&window));
        drop(slot);
        assert_eq!(window.limit(), 2);
        for _ in 0..100 {
            let slot = window.slot().await.unwrap();
            window.succeeded();
            drop(slot);
        }
        assert_eq!(window.limit(), 4);
        assert_eq!(window.permits.available_permits(), 4);
    }

    proptest! {
        /// Whatever the order of requests, throttles and completions, the requests in flight
        /// never exceed the window once its debt is paid, and every permit is accounted for.
        #[test]
        fn permits_are_never_lost_or_invented(
            max in 1usize..40,
            ops in proptest::collection::vec((0u8..4, any::<u8>()), 0..300),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            runtime.block_on(async {
                let window = RequestWindow::new(max);
                let mut held: Vec<Slot> = Vec::new();
                for (op, pick) in ops {
                    match op {
                        0 if window.permits.available_permits() > 0 => {
                            held.push(window.slot().await.unwrap());
                        }
                        1 => {
                            // A throttle from this epoch or an older one.
                            let epoch = window.epoch().saturating_sub(u64::from(pick % 2));
                            window.throttled(epoch);
                        }
                        3 => window.succeeded(),
                        _ if !held.is_empty() => {
                            let i = pick as usize % held.len();
                            held.swap_remove(i);
                        }
                        _ => {}
                    }
                    let state = window.state();
                    let available = window.permits.available_permits();
                    prop_assert!(state.limit >= 1 && state.limit <= max);
                    prop_assert_eq!(available + held.len(), state.limit + state.debt);
                    prop_assert!(state.debt <= held.len());
                }
                drop(held);
                let state = window.state();
                prop_assert_eq!(state.debt, 0);
                prop_assert_eq!(window.permits.available_permits(), state.limit);
                Ok(())
            })?;
        }
    }
}
