//! Waiting for AWS resources to reach a state, with a spinner showing the
//! elapsed time and the last state seen, and a timeout that says what to do.

use std::future::Future;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use super::{ProvisionError, Result};

#[derive(Debug, Clone)]
pub struct WaitOptions {
    pub timeout: Duration,
    pub interval: Duration,
    /// Draw a spinner (off in tests and when output is not a terminal).
    pub progress: bool,
}

impl Default for WaitOptions {
    fn default() -> Self {
        // MSK and MWAA take 20-40 minutes to create.
        Self { timeout: Duration::from_secs(60 * 60), interval: Duration::from_secs(15), progress: true }
    }
}

/// What one poll saw.
pub enum Poll<T> {
    Ready(T),
    /// Still going; the text is the current state.
    Pending(String),
    /// Will never get there (e.g. CREATE_FAILED); the text says why.
    Failed(String),
}

/// Poll until ready, failed or timed out.
pub async fn until<T, F, Fut>(options: &WaitOptions, what: &str, mut poll: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Poll<T>>>,
{
    let started = Instant::now();
    let bar = if options.progress { ProgressBar::new_spinner() } else { ProgressBar::hidden() };
    bar.set_style(ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("valid template"));
    bar.enable_steady_tick(Duration::from_millis(200));
    loop {
        let last = match poll().await? {
            Poll::Ready(v) => {
                bar.finish_and_clear();
                tracing::info!(what, waited = ?started.elapsed(), "ready");
                return Ok(v);
            }
            Poll::Failed(detail) => {
                bar.finish_and_clear();
                return Err(ProvisionError::Failed { what: what.to_string(), detail });
            }
            Poll::Pending(state) => {
                bar.set_message(format!("waiting for {what}: {state}"));
                state
            }
        };
        if started.elapsed() + options.interval > options.timeout {
            bar.finish_and_clear();
            return Err(ProvisionError::Timeout { what: what.to_string(), waited: started.elapsed(), last });
        }
        tokio::time::sleep(options.interval).await;
    }
}
