//! Rank 0's side: the worker ranks as a [`Pool`], one run's conversation with them.

use super::raw::*;
use super::*;

/// The worker ranks of `MPI_COMM_WORLD`, reached from rank 0.
#[derive(Clone, Copy, Debug, Default)]
pub struct MpiTransport;

impl Transport for MpiTransport {
    fn info(&self) -> TransportInfo {
        crate::transport::MPI
    }

    fn job(&self) -> Option<crate::report::MpiJob> {
        let world = world()?;
        let mut hosts = vec![world.host.clone()];
        for w in &world.workers {
            if !hosts.contains(&w.host) {
                hosts.push(w.host.clone());
            }
        }
        Some(crate::report::MpiJob {
            library: world.library.clone(),
            ranks: world.workers.len() + 1,
            hosts,
            init_ms: crate::report::ms(world.init_ns),
            clock_offsets_us: world
                .workers
                .iter()
                .map(|w| w.clock.offset_ns as f64 / 1e3)
                .collect(),
            clock_uncertainty_us: world
                .workers
                .iter()
                .map(|w| w.clock.uncertainty_ns as f64 / 1e3)
                .collect(),
        })
    }

    fn init_ns(&self) -> Option<u64> {
        world().map(|w| w.init_ns)
    }

    fn start(&self, spec: &PoolSpec<'_>, setup: &MakeSetup<'_>) -> PoolResult {
        let started = Instant::now();
        let mpi_world = world().ok_or_else(|| SpawnError::Mpi("MPI is not initialised".into()))?;
        if !CLEAN.load(Ordering::SeqCst) {
            let stuck = STUCK.lock().map(|s| s.clone()).unwrap_or_default();
            let (was, is) = if stuck.contains(", ") { ("were", "are") } else { ("was", "is") };
            return Err(SpawnError::Mpi(format!(
                "{stuck} {was} written off in an earlier run (hung, stopped or cut off) and {is} \
                 still busy, and MPI cannot stop one rank: the job ends here"
            )));
        }
        if spec.count > mpi_world.workers.len() {
            return Err(SpawnError::Mpi(format!(
                "{} workers asked for, but the job has {} worker ranks",
                spec.count,
                mpi_world.workers.len()
            )));
        }
        let ranks = mpi_world.workers[..spec.count].to_vec();
        let comm = SimpleCommunicator::world();
        for (w, r) in ranks.iter().enumerate() {
            let frame = setup(w as u32).to_frame();
            check_size(frame.len()).map_err(|e| SpawnError::Mpi(e.to_string()))?;
            comm.process_at_rank(r.rank as i32).send_with_tag(&frame[..], TAG_TASK);
        }
        CLEAN.store(false, Ordering::SeqCst);
        Ok(Box::new(MpiPool {
            started: Started {
                workers: (0..spec.count)
                    .map(|w| WorkerInfo {
                        id: w as u32,
                        pid: ranks[w].pid,
                        started_at_ns: 0,
                        ready_at_ns: 0,
                        clock_offset_ns: ranks[w].clock.offset_ns,
                    })
                    .collect(),
                spawn_ns: started.elapsed().as_nanos() as u64,
            },
            ranks,
            done: vec![false; spec.count],
            closed: vec![false; spec.count],
            events: VecDeque::new(),
            gather: vec![None; spec.count],
            sends: Vec::new(),
            spare: Default::default(),
            collectives: Vec::new(),
            receiving: Vec::new(),
        }))
    }
}

/// A task frame on its way: the staging buffer must live until the send completes.
struct InFlight {
    worker: usize,
    buf: Vec<u8>,
    request: ffi::MPI_Request,
    start_ns: u64,
}

/// One run's conversation with the worker ranks.
struct MpiPool {
    started: Started,
    ranks: Vec<RankInfo>,
    done: Vec<bool>,
    closed: Vec<bool>,
    events: VecDeque<Event>,
    /// Announced lengths of the results coming by `MPI_Gatherv`.
    gather: Vec<Option<usize>>,
    sends: Vec<InFlight>,
    /// Staging buffers whose sends completed, for reuse.
    /// Sends that completed, for [`Pool::sent`].
    spare: std::collections::VecDeque<Sent>,
    /// Non-blocking collectives in flight, polled with everything else.
    collectives: Vec<Collective>,
    /// Matched messages still arriving (`MPI_Imrecv`), polled with everything else.
    receiving: Vec<Receiving>,
}

/// A matched message being received: its buffer must live until the request completes.
struct Receiving {
    request: ffi::MPI_Request,
    buf: Vec<u8>,
    source: i32,
    tag: i32,
}

/// A non-blocking collective in flight: its buffer and count arrays must live until it
/// completes.
struct Collective {
    request: ffi::MPI_Request,
    buf: Vec<u8>,
    counts: Vec<c_int>,
    displs: Vec<c_int>,
    /// A gather (its results become frames), else a scatter.
    gather: bool,
}

impl MpiPool {
    /// The worker behind `source`, a rank of this pool.
    fn worker_of(&self, source: i32) -> Option<usize> {
        self.ranks.iter().position(|r| r.rank as i32 == source)
    }

    /// Retires completed sends, keeping their buffers.
    fn progress_sends(&mut self) {
        let mut i = 0;
        while i < self.sends.len() {
            let mut flag: c_int = 0;
            // SAFETY: the request came from MPI_Isend and has not completed yet.
            unsafe {
                ffi::MPI_Test(&mut self.sends[i].request, &mut flag, ffi::RSMPI_STATUS_IGNORE);
            }
            if flag != 0 {
                let done = self.sends.swap_remove(i);
                self.spare.push_back(Sent {
                    worker: done.worker,
                    frame: done.buf,
                    result: Ok(()),
                    start_ns: done.start_ns,
                    end_ns: crate::trace::now_ns(),
                    threaded: false,
                });
            } else {
                i += 1;
            }
        }
    }

    /// Starts receiving one matched message; it becomes events once whole
    /// ([`MpiPool::progress_receives`]).
    fn take(&mut self, msg: Message, status: Status) {
        let (source, tag) = (status.source_rank(), status.tag());
        let len = status.count(u8::equivalent_datatype()).max(0) as usize;
        match imrecv(msg, len) {
            Ok((buf, request)) => self.receiving.push(Receiving { request, buf, source, tag }),
            Err(e) => {
                if let Some(worker) = self.worker_of(source) {
                    self.events.push_back(Event::Exited { worker, how: e.to_string() });
                }
            }
        }
    }

    /// Completes the receives that can complete. A rank's messages become events in the order
    /// they were matched: one that completes behind an earlier one still arriving (a done
    /// behind a big result) waits for it.
    fn progress_receives(&mut self) -> bool {
        let mut any = false;
        let mut waiting: Vec<i32> = Vec::new();
        let mut i = 0;
        while i < self.receiving.len() {
            let source = self.receiving[i].source;
            // SAFETY: the request came from MPI_Imrecv and has not completed yet.
            if waiting.contains(&source) || !unsafe { test(&mut self.receiving[i].request) } {
                waiting.push(source);
                i += 1;
                continue;
            }
            let done = self.receiving.remove(i);
            self.message(done.source, done.tag, done.buf);
            any = true;
        }
        any
    }

    /// One whole message from `source`, turned into events.
    fn message(&mut self, source: i32, tag: i32, bytes: Vec<u8>) {
        let Some(w) = self.worker_of(source) else {
            return; // a rank outside this pool has nothing to say
        };
        match tag {
            TAG_RESULT => self.events.push_back(Event::Frame(w, Frame::owned(bytes))),
            TAG_DONE => {
                self.done[w] = true;
                self.events.push_back(Event::Closed(w));
            }
            TAG_FAILED => self.events.push_back(Event::Exited {
                worker: w,
                how: format!(
                    "failed on rank {}: {}",
                    self.ranks[w].rank,
                    String::from_utf8_lossy(&bytes)
                ),
            }),
            TAG_GATHER => {
                self.gather[w] = length_of(&bytes);
                if self.gather.iter().all(Option::is_some) {
                    self.gatherv();
                }
            }
            tag => self.events.push_back(Event::Exited {
                worker: w,
                how: format!("sent an MPI message with tag {tag}"),
            }),
        }
    }

    /// Joins the `MPI_Igatherv` every worker announced; its results become frame events
    /// once it completes ([`MpiPool::progress_collectives`]).
    fn gatherv(&mut self) {
        let size = SimpleCommunicator::world().size() as usize;
        let mut counts = vec![0 as c_int; size];
        for (w, r) in self.ranks.iter().enumerate() {
            counts[r.rank as usize] = self.gather[w].take().unwrap_or(0) as c_int;
        }
        let failed = |how: String| Event::Exited { worker: 0, how };
        let displs = match displacements(&counts) {
            Ok(displs) => displs,
            Err(e) => return self.events.push_back(failed(e.to_string())),
        };
        let total = counts.iter().map(|&c| c as usize).sum();
        let mut buf = vec![0u8; total];
        // SAFETY: `buf`, `counts` and `displs` move into `self.collectives` with the request
        // and stay there (or are leaked) until it completes; rank 0 sends 0 bytes.
        let request = unsafe {
            igatherv([0u8; 0].as_ptr(), 0, buf.as_mut_ptr(), counts.as_ptr(), displs.as_ptr())
        };
        match request {
            Ok(request) => {
                self.collectives.push(Collective { request, buf, counts, displs, gather: true })
            }
            Err(e) => self.events.push_back(failed(e.to_string())),
        }
    }

    /// Completes the collectives in flight that can complete; a gather's results become
    /// frame events.
    fn progress_collectives(&mut self) {
        let mut i = 0;
        while i < self.collectives.len() {
            // SAFETY: the request came from a non-blocking collective and is not complete.
            if !unsafe { test(&mut self.collectives[i].request) } {
                i += 1;
                continue;
            }
            let done = self.collectives.swap_remove(i);
            if done.gather {
                for (w, r) in self.ranks.iter().enumerate() {
                    let (at, len) = (
                        done.displs[r.rank as usize] as usize,
                        done.counts[r.rank as usize] as usize,
                    );
                    self.events
                        .push_back(Event::Frame(w, Frame::owned(done.buf[at..at + len].to_vec())));
                }
            }
        }
    }

    /// Polls once; true if a message was taken or completed.
    fn poll(&mut self) -> bool {
        self.progress_sends();
        self.progress_collectives();
        let comm = SimpleCommunicator::world();
        let matched = match comm.any_process().immediate_matched_probe() {
            Some((msg, status)) => {
                self.take(msg, status);
                true
            }
            None => false,
        };
        self.progress_receives() || matched
    }
}

impl Pool for MpiPool {
    fn started(&self) -> &Started {
        &self.started
    }

    fn send(&mut self, worker: usize, frame: Vec<u8>) -> Result<(), LinkError> {
        check_size(frame.len())?;
        let rank = self.ranks.get(worker).ok_or(LinkError::Closed)?.rank as c_int;
        if self.closed[worker] {
            return Err(LinkError::Closed);
        }
        self.progress_sends();
        let (buf, start_ns) = (frame, crate::trace::now_ns());
        let mut request: ffi::MPI_Request = unsafe { std::mem::zeroed() };
        // SAFETY: `buf` stays alive (in `self.sends`, or leaked) until the request completes.
        let rc = unsafe {
            ffi::MPI_Isend(
                buf.as_ptr() as *const c_void,
                buf.len() as c_int,
                ffi::RSMPI_UINT8_T,
                rank,
                TAG_TASK,
                SimpleCommunicator::world().as_raw(),
                &mut request,
            )
        };
        if rc != 0 {
            return Err(LinkError::Channel(format!("MPI_Isend returned {rc}")));
        }
        self.sends.push(InFlight { worker, buf, request, start_ns });
        Ok(())
    }

    fn sent(&mut self) -> Option<Sent> {
        self.progress_sends();
        self.spare.pop_front()
    }

    fn next_event(&mut self, timeout: Duration) -> Option<Event> {
        let deadline = Instant::now() + timeout;
        let mut idle = 0u32;
        loop {
            if let Some(event) = self.events.pop_front() {
                return Some(event);
            }
            if self.poll() {
                idle = 0;
                continue;
            }
            if Instant::now() >= deadline {
                return None;
            }
            // Spin briefly (a result is usually microseconds away), then back off.
            idle += 1;
            if idle < 2_000 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
    }

    fn close(&mut self, worker: usize) {
        if let (Some(r), Some(false)) = (self.ranks.get(worker), self.closed.get(worker)) {
            self.closed[worker] = true;
            SimpleCommunicator::world()
                .process_at_rank(r.rank as i32)
                .send_with_tag(&[0u8; 0][..], TAG_CLOSE);
        }
    }

    /// MPI cannot stop one rank: it is closed and left to finish; if it never does, the job
    /// ends with `MPI_Abort`.
    fn kill(&mut self, worker: usize) {
        self.close(worker);
    }

    fn reap(&mut self, worker: usize, grace: Duration) -> String {
        let deadline = Instant::now() + grace;
        while !self.done[worker] && Instant::now() < deadline {
            if !self.poll() {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
        let r = &self.ranks[worker];
        match self.done[worker] {
            true => format!("finished (rank {} on {})", r.rank, r.host),
            false => format!(
                "still busy (rank {} on {}); MPI cannot stop one rank, so the job will be aborted",
                r.rank, r.host
            ),
        }
    }

    fn last_words(&self, _worker: usize) -> Option<String> {
        None // a rank's stderr goes to the launcher's terminal
    }

    fn placement(&self, worker: usize) -> Option<(u32, String)> {
        let r = self.ranks.get(worker)?;
        Some((r.rank, r.host.clone()))
    }

    fn scatter(&mut self, frames: Vec<u8>, lens: &[usize]) -> Result<(), LinkError> {
        let comm = SimpleCommunicator::world();
        if lens.len() != self.ranks.len() || self.ranks.len() + 1 != comm.size() as usize {
            return Err(LinkError::Channel(format!(
                "a collective needs every rank: {} parts for {} worker ranks",
                lens.len(),
                comm.size() - 1
            )));
        }
        let mut counts = vec![0 as c_int; comm.size() as usize];
        for (r, &len) in self.ranks.iter().zip(lens) {
            check_size(len)?;
            counts[r.rank as usize] = len as c_int;
        }
        let displs = displacements(&counts)?;
        for (r, &len) in self.ranks.iter().zip(lens) {
            comm.process_at_rank(r.rank as i32)
                .send_with_tag(&(len as u64).to_le_bytes()[..], TAG_SCATTER);
        }
        let mut own = Vec::new();
        // SAFETY: `frames`, `counts` and `displs` move into `self.collectives` with the request
        // and stay there (or are leaked) until it completes; `own` receives 0 bytes.
        let request = unsafe {
            iscatterv(frames.as_ptr(), counts.as_ptr(), displs.as_ptr(), own.as_mut_ptr(), 0)
        }?;
        self.collectives.push(Collective { request, buf: frames, counts, displs, gather: false });
        Ok(())
    }
}

impl Drop for MpiPool {
    /// Sends still in flight are waited for briefly, then given up (their buffers leaked,
    /// since MPI may still read them); the job is clean only if every worker said done.
    fn drop(&mut self) {
        // After a stop was asked for, the launcher kills every rank a second after its
        // SIGTERM: no waiting then, so this rank's line and clean-up come first.
        let wait = match crate::interrupt::requested() {
            Some(_) => Duration::ZERO,
            None => Duration::from_secs(1),
        };
        let until = Instant::now() + wait;
        while !self.sends.is_empty() && Instant::now() < until {
            self.progress_sends();
        }
        for stuck in self.sends.drain(..) {
            std::mem::forget(stuck.buf);
        }
        self.progress_collectives();
        for stuck in self.collectives.drain(..) {
            std::mem::forget((stuck.buf, stuck.counts, stuck.displs));
        }
        self.progress_receives();
        for stuck in self.receiving.drain(..) {
            std::mem::forget(stuck.buf); // MPI may still write into it
        }
        let stuck: Vec<String> = (self.ranks.iter().zip(&self.done).enumerate())
            .filter(|(_, (_, &done))| !done)
            .map(|(w, (r, _))| format!("worker {w} (rank {} on {})", r.rank, r.host))
            .collect();
        if let Ok(mut named) = STUCK.lock() {
            *named = stuck.join(", ");
        }
        CLEAN.store(stuck.is_empty(), Ordering::SeqCst);
    }
}
