//! The deployer: a no-op deploy of `environments/emulator.yaml` against the emulator (moto's
//! server on loopback), after a first deploy made everything. Counts every AWS call by the
//! SDK interceptor the deployer's tests use.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use deployer::apply::{Zip, deploy};
use deployer::aws::Clients;

use super::Sizes;
use super::stats::Latencies;
use crate::build::Artifact;
use crate::environment::load;

pub struct NoOp {
    pub first: Duration,
    pub wall: Latencies,
    pub calls: usize,
    pub writes: usize,
}

pub async fn run(artifacts: &[Artifact], sizes: &Sizes) -> anyhow::Result<NoOp> {
    // On this worker thread, not a blocking-pool one: the emulator dies with the thread that
    // started it (parent-death signal), and an idle blocking thread ends after 10 s, mid-deploy.
    let emulator = tokio::task::block_in_place(crate::emulator::start)?;
    let (env, spec) = load("emulator")?;
    let zips: BTreeMap<String, Zip> = artifacts
        .iter()
        .map(|a| (a.function.clone(), Zip { path: a.zip.clone(), code_sha256: a.code_sha256() }))
        .collect();
    let quiet = deployer::progress::quiet;
    let clients = Clients::for_emulator(&spec.region, &emulator.url).await;
    let started = Instant::now();
    deploy(&clients, &env, &spec, &zips, &quiet).await.map_err(crate::environment::explained)?;
    let first = started.elapsed();

    let mut wall = Vec::new();
    let (mut calls, mut writes) = (0, 0);
    for _ in 0..sizes.noop_reps {
        let clients = Clients::for_emulator(&spec.region, &emulator.url).await;
        let started = Instant::now();
        let report = deploy(&clients, &env, &spec, &zips, &quiet).await.map_err(crate::environment::explained)?;
        wall.push(started.elapsed());
        anyhow::ensure!(report.plan.is_empty(), "a second deploy planned changes:\n{}", report.plan);
        (calls, writes) = (clients.log.calls().len(), clients.log.writes().len());
        anyhow::ensure!(writes == 0, "a no-op deploy wrote: {:?}", clients.log.writes());
    }
    let noop = NoOp { first, wall: Latencies::new(wall), calls, writes };
    println!(
        "    first deploy {:.2} s; no-op p50 {} ms, {} calls, {} writes",
        first.as_secs_f64(),
        super::stats::ms(noop.wall.p50()),
        noop.calls,
        noop.writes
    );
    drop(emulator);
    Ok(noop)
}
