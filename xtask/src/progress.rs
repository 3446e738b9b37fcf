//! How the AWS commands show their progress: on a terminal, each wait as a spinner with what is
//! being waited on and for how long; without one (CI logs), plain lines with the time of day.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use deployer::progress::Event;
use indicatif::{ProgressBar, ProgressStyle};

pub struct Reporter {
    spinner: Mutex<Option<ProgressBar>>,
    terminal: bool,
}

impl Reporter {
    pub fn new() -> Reporter {
        Reporter { spinner: Mutex::new(None), terminal: std::io::stderr().is_terminal() }
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
            Event::Waiting(what) => eprintln!("{} waiting for {what} ({} so far)", now(), elapsed(took)),
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
