//! How the AWS commands show their progress: on a terminal, each wait as a spinner with what is
//! being waited on and for how long; without one (CI logs), plain lines with the time of day.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use deployer::progress::Event;
use indicatif::{ProgressBar, ProgressStyle};

/// Without a terminal, a wait is reported when it starts and then every this often, not at
/// every poll: a CI log stays readable through a 15-minute Aurora creation.
const PLAIN_WAIT_EVERY: Duration = Duration::from_secs(30);

pub struct Reporter {
    spinner: Mutex<Option<ProgressBar>>,
    terminal: bool,
    /// The wait last reported as a plain line, and when.
    last_wait: Mutex<Option<(String, Instant)>>,
}

impl Reporter {
    pub fn new() -> Reporter {
        Reporter { spinner: Mutex::new(None), terminal: std::io::stderr().is_terminal(), last_wait: Mutex::new(None) }
    }

    pub fn report(&self, event: Event<'_>, took: Duration) {
        let Ok(mut spinner) = self.spinner.lock() else { return };
        match event {
            Event::Done(line) => {
                if let Some(bar) = spinner.take() {
                    bar.finish_and_clear();
                }
                if self.terminal {
                    eprintln!("  {line} ({took:.1?})");
                } else {
                    eprintln!("{} {line} ({took:.1?})", now());
                }
            }
            Event::Waiting(what) if self.terminal => {
                let bar = spinner.get_or_insert_with(|| {
                    let bar = ProgressBar::new_spinner();
                    if let Ok(style) = ProgressStyle::with_template("  {spinner} waiting for {msg}") {
                        bar.set_style(style);
                    }
                    bar.enable_steady_tick(Duration::from_millis(120));
                    bar
                });
                bar.set_message(format!("{what} ({})", elapsed(took)));
            }
            Event::Waiting(what) => {
                let Ok(mut last) = self.last_wait.lock() else { return };
                // The resource waited on, without its state: a new wait is reported at once.
                let subject = what.split(':').next().unwrap_or(what).to_owned();
                let due = match &*last {
                    Some((previous, at)) => *previous != subject || at.elapsed() >= PLAIN_WAIT_EVERY,
                    None => true,
                };
                if due {
                    eprintln!("{} waiting for {what} ({} so far)", now(), elapsed(took));
                    *last = Some((subject, Instant::now()));
                }
            }
        }
    }
}

fn now() -> String {
    chrono::Utc::now().format("%H:%M:%SZ").to_string()
}

fn elapsed(took: Duration) -> String {
    let seconds = took.as_secs();
    if seconds >= 60 { format!("{}m{:02}s", seconds / 60, seconds % 60) } else { format!("{seconds}s") }
}
